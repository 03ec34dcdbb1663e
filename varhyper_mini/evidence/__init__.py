"""The evidence (eq. 2) and its lower bound (eq. 3), checked where both are exact (chapter 1).

For Bayesian linear regression with a Gaussian prior and known noise, everything the paper
estimates is available in closed form, so the identity log p(y) - ELBO(q) = KL(q || posterior)
can be checked to rounding error, and a q fitted by gradient ascent can be compared with the
exact evidence. Work in float64 for the precision checks.

- ``linear``: the model (``BayesianLinearRegression``), ``FullGaussian``, ``kl_gaussian``, ``elbo``;
- ``fits``: the ELBO maximised over full-covariance and mean-field q (``fit_full_cov``,
  ``fit_mean_field``, ``optimal_mean_field``, ``sweep_prior_var``);
- ``checks``: chapter 1's checks of the bound, the fits and the scan, as tables and numbers;
- ``tempering``: chapter 2's tempered likelihood (L1 as the ELBO of a likelihood to the power 1/lambda).
"""

from .checks import BOUND_REL_TOL, FIT_ROWS, bound_checks, bound_findings, compare_fits, fit_findings, scan_findings
from .fits import FitResult, fit_full_cov, fit_mean_field, optimal_mean_field, random_gaussian, sweep_prior_var
from .linear import BayesianLinearRegression, FullGaussian, elbo, kl_gaussian
from .tempering import tempering_checks

__all__ = [
    "FullGaussian",
    "BayesianLinearRegression",
    "kl_gaussian",
    "elbo",
    "FitResult",
    "fit_full_cov",
    "fit_mean_field",
    "optimal_mean_field",
    "random_gaussian",
    "sweep_prior_var",
    "bound_checks",
    "bound_findings",
    "BOUND_REL_TOL",
    "FIT_ROWS",
    "compare_fits",
    "fit_findings",
    "scan_findings",
    "tempering_checks",
]
