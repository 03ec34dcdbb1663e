"""Quantities from the paper's theory, and chapter 2's numerical checks of Theorem 1.

- ``kl``: the symmetrised KL D(q1, q2) of section 4.1 (``sym_kl``, ``kl_between``);
- ``estimates``: L1, L2, L3 as deterministic functions of q (antithetic noise), ``fit_at_lams``;
- ``theorem1``: statements 1 and 2, mu-gradients of L1 / L2 against L3 (``theorem1_gap``, ``theorem1_gaps``);
- ``eq8``: eq. (8), the exact difference L1 - L2 (``l1_minus_l2``) and its check against the losses;
- ``complexity``: the KL term at the optimum as lambda grows (``kl_vs_lambda``);
- ``subsample``: statement 3, L1 with lambda = m / m0 against subsample ELBOs (``subsample_elbos``).

The ``*_findings`` functions return the numbers the chapter quotes, keyed by short names.
"""

from .complexity import is_monotone, kl_findings, kl_vs_lambda
from .eq8 import eq8_checks, eq8_findings, l1_minus_l2, l1_minus_l2_from_losses, log_det_cov
from .estimates import (
    LamFit,
    antithetic_noise,
    expected_nll,
    fit_at_lams,
    loss_table,
    loss_value,
    mu_gradient,
    same_sigma,
)
from .kl import kl_between, sym_kl
from .subsample import expected_loglik, scaled_l1_objective, statement3_findings, statement3_table, subsample_elbos
from .theorem1 import NAIVE_SCALING, THEOREM_SCALING, theorem1_findings, theorem1_gap, theorem1_gaps

__all__ = [
    "sym_kl",
    "kl_between",
    "log_det_cov",
    "l1_minus_l2",
    "l1_minus_l2_from_losses",
    "eq8_checks",
    "eq8_findings",
    "antithetic_noise",
    "same_sigma",
    "expected_nll",
    "loss_value",
    "loss_table",
    "mu_gradient",
    "theorem1_gap",
    "theorem1_gaps",
    "theorem1_findings",
    "THEOREM_SCALING",
    "NAIVE_SCALING",
    "LamFit",
    "fit_at_lams",
    "kl_vs_lambda",
    "is_monotone",
    "kl_findings",
    "expected_loglik",
    "scaled_l1_objective",
    "subsample_elbos",
    "statement3_table",
    "statement3_findings",
]
