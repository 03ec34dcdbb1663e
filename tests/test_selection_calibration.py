"""varhyper_mini.selection.calibration: the expected calibration error on known cases."""

import pytest
import torch

from varhyper_mini.selection import expected_calibration_error


# -- expected calibration error ---------------------------------------------------------------------
def _two_class(conf: list[float], correct: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities whose top class (class 0) has confidence ``conf``; label 0 when correct."""
    c = torch.tensor(conf, dtype=torch.float64)
    probs = torch.stack([c, 1 - c], dim=1)
    labels = torch.tensor([0 if ok else 1 for ok in correct])
    return probs, labels


def test_ece_is_zero_when_confidence_equals_accuracy():
    # Confidence 0.75 everywhere and exactly 3 of 4 correct: perfectly calibrated.
    probs, labels = _two_class([0.75] * 8, [True, True, True, False] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_known_miscalibration():
    # Always 90 % sure, always right: under-confident by 0.1.
    probs, labels = _two_class([0.9] * 5, [True] * 5)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1)
    # Always 90 % sure, right half the time: over-confident by 0.4.
    probs, labels = _two_class([0.9] * 4, [True, False] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)


def test_ece_weights_bins_by_their_size():
    # Bin of 0.55: 2 examples, 1 right -> |0.5 - 0.55| = 0.05; bin of 0.95: 2 examples, both right
    # -> 0.05; bin of 0.85: 1 example, wrong -> 0.85. ECE = (2*0.05 + 2*0.05 + 0.85) / 5.
    probs, labels = _two_class([0.55, 0.55, 0.95, 0.95, 0.85], [True, False, True, True, False])
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx((0.1 + 0.1 + 0.85) / 5)
    # One bin pools everything: |accuracy - mean confidence| = |0.6 - 0.77|.
    assert expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(abs(0.6 - 0.77))


def test_ece_of_one_hot_correct_predictions_is_zero():
    labels = torch.tensor([0, 1, 2, 1])
    probs = torch.nn.functional.one_hot(labels, 3).float()
    assert expected_calibration_error(probs, labels) == 0.0


@pytest.mark.parametrize(
    "probs, labels, n_bins, match",
    [
        (torch.rand(4), torch.zeros(4, dtype=torch.long), 15, "shape"),
        (torch.full((4, 2), 0.5), torch.zeros(3, dtype=torch.long), 15, "labels"),
        (torch.full((4, 2), 0.5), torch.zeros(4, dtype=torch.long), 0, "n_bins"),
        (torch.full((4, 2), 2.0), torch.zeros(4, dtype=torch.long), 15, "probabilities"),
        (torch.zeros((0, 2)), torch.zeros(0, dtype=torch.long), 15, "empty"),
    ],
)
def test_ece_rejects_bad_input(probs, labels, n_bins, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(probs, labels, n_bins)
