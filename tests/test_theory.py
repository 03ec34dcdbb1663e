import math

import pytest
import torch

import varhyper_mini as vh


def _g(mu, sigma):
    return vh.GaussianParams({"w": torch.tensor(mu)}, {"w": torch.log(torch.tensor(sigma))})


def test_sym_kl_closed_form_1d():
    p, q = _g([0.5], [1.0]), _g([-0.5], [2.0])
    kl_pq = math.log(2.0 / 1.0) + (1.0 + 1.0) / (2 * 4.0) - 0.5
    kl_qp = math.log(1.0 / 2.0) + (4.0 + 1.0) / (2 * 1.0) - 0.5
    assert float(vh.theory.sym_kl(p, q)) == pytest.approx(kl_pq + kl_qp, rel=1e-5)
    assert float(vh.theory.sym_kl(p, q)) == pytest.approx(float(vh.theory.sym_kl(q, p)))


def test_sym_kl_zero_for_equal():
    p = _g([0.1, 2.0], [0.3, 0.5])
    assert abs(float(vh.theory.sym_kl(p, p))) < 1e-6


def test_sym_kl_rejects_deterministic():
    with pytest.raises(ValueError, match="deterministic"):
        vh.theory.sym_kl(_g([0.0], [1.0]), vh.GaussianParams({"w": torch.zeros(1)}))
