"""Evaluation of a model run with external weights: class probabilities, accuracy, NLL.

``predict``, ``evaluate`` and ``accuracy`` run any ``nn.Module`` with the mean weights of a
``GaussianParams`` (or a plain dict of tensors), or average predictions over Monte Carlo draws
from q(w). Training (``training``) and pruning (``pruning``) both use them; they import nothing
from either.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import as_int, check_has_values
from .data import TensorData, batches
from .gaussian import GaussianParams, ParamSpec
from .hypernets import call_with, evaluation

__all__ = ["predict", "evaluate", "accuracy", "check_data", "check_data_dtype"]


def check_data(data: TensorData, what: str = "data") -> None:
    """Check that ``data`` is a ``TensorData`` with at least one example (``what`` names it in the error).

    Raises:
        ValueError: ``data`` is not a ``TensorData``, or it is empty.
    """
    if not isinstance(data, TensorData):
        raise ValueError(f"{what} must be a TensorData held in memory, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{what} is empty: it holds no examples")


def check_data_dtype(data: TensorData, dtype: torch.dtype) -> None:
    """Check that floating-point inputs have the model's ``dtype`` and labels are integers.

    Raises:
        ValueError: the inputs are floating point of another dtype than ``dtype``, or the labels are
            floating point, complex or bool.
    """
    if data.x.is_floating_point() and data.x.dtype != dtype:
        raise ValueError(
            f"the data's inputs are {data.x.dtype} but the model's parameters are {dtype}; convert one of them, "
            f"e.g. TensorData(data.x.to({dtype}), data.y) or target.to({dtype}) before building the hypernetwork"
        )
    if data.y.is_floating_point() or data.y.is_complex() or data.y.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got {data.y.dtype}; use data.y.long()")


def _as_weights(params: GaussianParams | dict[str, Tensor], target: nn.Module, data: TensorData) -> dict[str, Tensor]:
    """The weights to run ``target`` with on ``data``, after the checks every evaluation makes."""
    if isinstance(params, GaussianParams):
        if params.batch_shape:
            raise ValueError("pass the parameters of one model (params[i] picks one from a batch)")
        weights = params.mean
    elif isinstance(params, dict) and params:
        weights = params
    else:
        raise ValueError(f"params must be GaussianParams or a non-empty dict, got {type(params).__name__}")
    ParamSpec.from_module(target).check_names(weights.keys())
    check_data(data)
    check_has_values(weights.values())
    finite = torch.stack([torch.isfinite(w).all() for w in weights.values()]).cpu()
    if not bool(finite.all()):
        bad = [n for n, ok in zip(weights, finite.tolist()) if not ok]
        raise ValueError(
            f"the parameters {bad} contain NaN or inf (a diverged model); its predictions would be meaningless. "
            "Retrain it (a smaller lr or lambda range), or evaluate another model."
        )
    first = next(iter(weights.values()))
    check_data_dtype(data, first.dtype)
    return weights


def _batched_inputs(params, target: nn.Module, data: TensorData, batch_size):
    """The checked weights, then each batch's (indices, inputs on the weights' device), in order.

    The one batch loop behind ``predict`` and ``accuracy``.
    """
    weights = _as_weights(params, target, data)
    batch_size = as_int(batch_size, "batch_size")
    dev = next(iter(weights.values())).device
    return weights, ((idx, data.x[idx].to(dev)) for idx in batches(len(data), batch_size, shuffle=False))


@torch.no_grad()
def predict(
    target: nn.Module,
    params: GaussianParams | dict[str, Tensor],
    data: TensorData,
    batch_size: int = 4096,
    mc_samples: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Class probabilities, (N, C): with the mean weights, or averaged over ``mc_samples`` draws.

    The target runs in eval mode (its own mode is restored after), so evaluation never changes
    its buffers. Raises ``ValueError`` for names that do not match the target, parameters on
    the meta device or with NaN/inf means, or floating-point data of another dtype than the
    parameters.
    """
    weights, inputs = _batched_inputs(params, target, data, batch_size)
    mc_samples = as_int(mc_samples, "mc_samples", minimum=0)
    out = []
    with evaluation(target):
        for _, x in inputs:
            if mc_samples and isinstance(params, GaussianParams) and params.variational:
                prob = 0
                for _ in range(mc_samples):
                    w = params.sample(generator)
                    prob = prob + torch.softmax(call_with(target, w, x), -1)
                out.append(prob / mc_samples)
            else:
                out.append(torch.softmax(call_with(target, weights, x), -1))
    return torch.cat(out)


@torch.no_grad()
def evaluate(
    target: nn.Module,
    params: GaussianParams | dict[str, Tensor],
    data: TensorData,
    batch_size: int = 4096,
    mc_samples: int = 0,
) -> dict[str, float]:
    """Accuracy and mean negative log-likelihood on ``data`` (mean weights by default); see ``predict``."""
    prob = predict(target, params, data, batch_size, mc_samples)
    y = data.y.to(prob.device)
    acc = (prob.argmax(1) == y).float().mean()
    nll = -torch.log(prob.gather(1, y[:, None]).clamp_min(1e-12)).mean()
    return {"accuracy": float(acc), "nll": float(nll)}


def accuracy(
    target: nn.Module, params: GaussianParams | dict[str, Tensor], data: TensorData, batch_size: int = 4096
) -> float:
    """Test accuracy of ``target`` run with the **mean** weights of ``params`` (eval mode; see ``predict``)."""
    weights, inputs = _batched_inputs(params, target, data, batch_size)
    correct = 0
    with torch.no_grad(), evaluation(target):
        for idx, x in inputs:
            logits = call_with(target, weights, x)  # no softmax: the argmax is the same
            correct += int((logits.argmax(1) == data.y[idx].to(logits.device)).sum())
    return correct / len(data)
