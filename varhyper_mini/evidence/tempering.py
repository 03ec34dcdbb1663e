"""L1(lambda) as the ELBO of a tempered likelihood, checked exactly on Bayesian linear regression.

Chapter 2 shows that (N / lambda) L1(lambda) = -E_q log p(D | w)^(1/lambda) + KL(q || p): the
negative ELBO of the same model with its likelihood raised to the power 1/lambda. With Gaussian
noise of variance s^2, that likelihood is (up to a constant) the Gaussian likelihood with noise
variance lambda s^2, so the tempered posterior p_lambda is the posterior of the model with noise
lambda s^2. It is also the posterior with prior variance alpha_pr / lambda at temperature lambda:
the same mean, lambda times the covariance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from .linear import BayesianLinearRegression, FullGaussian, elbo

__all__ = ["tempering_checks"]


def tempering_checks(
    x: Tensor,
    y: Tensor,
    noise_var: float,
    prior_var: float,
    lams: Sequence[float],
    qs: Sequence[FullGaussian],
) -> pd.DataFrame:
    """Both readings of the tempered posterior p_lambda, for each lambda in ``lams``.

    Args:
        x, y: design matrix (n, d) and targets (n,) of the regression; float64 for rounding-level checks.
        noise_var: the known noise variance s^2.
        prior_var: alpha_pr, the prior variance of every weight.
        lams: the lambdas (positive).
        qs: Gaussians q of dimension d at which the ELBO identity is checked.

    Returns:
        Indexed by ``lambda``, columns: ``spread of the offset over q (nats)`` (the range over q of
        (N / lambda) L1(lambda) minus the tempered model's negative ELBO: 0 up to rounding when
        the identity holds), ``|mean - mean of prior alpha/lambda|`` (largest absolute
        difference), ``|cov - lambda cov| / |cov|`` (largest, relative to the largest entry),
        ``posterior sd / sd at lambda = 1`` (mean posterior standard deviation against lambda = 1).

    Raises:
        ValueError: for an empty ``qs`` or ``lams``, a non-positive lambda, or shapes that do not
            match (from ``BayesianLinearRegression`` and ``elbo``).
    """
    if len(qs) == 0 or len(lams) == 0:
        raise ValueError("tempering_checks needs at least one q and one lambda")
    if any(not float(lam) > 0 for lam in lams):
        raise ValueError(f"every lambda must be positive, got {list(lams)}")
    plain = BayesianLinearRegression(x, y, noise_var, prior_var)
    sd_1 = plain.posterior().cov.diagonal().sqrt().mean()
    rows = []
    for lam in lams:
        hot = BayesianLinearRegression(x, y, lam * noise_var, prior_var)  # the likelihood to the power 1/lambda
        # (N / lambda) L1(lambda) = (-E_q log p(D|w) + lambda KL) / lambda, against -ELBO of the tempered model.
        offsets = [float((-plain.expected_log_lik(q) + lam * plain.kl_to_prior(q)) / lam + elbo(q, hot)) for q in qs]
        wide = BayesianLinearRegression(x, y, noise_var, prior_var / lam).posterior()  # prior alpha / lambda, T = 1
        p_lam = hot.posterior()
        rows.append(
            {
                "lambda": lam,
                "spread of the offset over q (nats)": float(np.ptp(offsets)),
                "|mean - mean of prior alpha/lambda|": float((p_lam.mean - wide.mean).abs().max()),
                "|cov - lambda cov| / |cov|": float((p_lam.cov - lam * wide.cov).abs().max() / p_lam.cov.abs().max()),
                "posterior sd / sd at lambda = 1": float(p_lam.cov.diagonal().sqrt().mean() / sd_1),
            }
        )
    return pd.DataFrame(rows).set_index("lambda")
