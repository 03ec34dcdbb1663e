"""A pruned model as a plain ``nn.Module``, saved as a state dict and loaded back with ``weights_only``.

After Algorithm 2 of the paper (pick lambda, generate the model, prune) the model to deploy is
the mean weights of the pruned posterior; these functions put them into a copy of the target
architecture and store them as tensors only, which ``torch.load(..., weights_only=True)`` reads
without running pickled code.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from .._checks import check_has_values
from ..gaussian import GaussianParams, ParamSpec
from ..pruning import prunable_names

__all__ = ["pruned_module", "save_pruned", "load_pruned"]


def _effective_state(module: nn.Module) -> dict[str, Tensor]:
    """The state dict with pruning reparametrisations folded in, as the bare module would have it."""
    state = {k: v.detach() for k, v in module.state_dict().items()}
    out = {}
    for k, v in state.items():
        if k.endswith("_mask") and k[: -len("_mask")] + "_orig" in state:
            continue
        if k.endswith("_orig") and k[: -len("_orig")] + "_mask" in state:
            base = k[: -len("_orig")]
            out[base] = v * state[base + "_mask"]
        else:
            out[k] = v
    return out


def pruned_module(target: nn.Module, params: GaussianParams, masks: bool = False) -> nn.Module:
    """A plain copy of ``target`` holding the (pruned) mean weights of ``params``, in eval mode.

    ``target`` itself is not changed; each parameter of the copy takes the mean of the same
    name, on the copy's device and dtype. With ``masks=True`` every weight tensor (two or more
    dimensions; biases are never masked) gets a ``torch.nn.utils.prune`` mask over its zeros,
    so further training keeps the deleted weights at zero.

    Raises:
        ValueError: for batched or non-``GaussianParams`` ``params``, parameters on the meta
            device, or names that do not match ``target``.
    """
    if not isinstance(params, GaussianParams) or params.batch_shape:
        raise ValueError("pruned_module takes the GaussianParams of one model")
    check_has_values(params.mean.values())
    model = copy.deepcopy(target)
    ParamSpec.from_module(model).check_names(params.mean.keys())
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(params.mean[n].detach().to(p.device, p.dtype))
    if masks:
        from torch.nn.utils import prune as tprune

        modules = dict(model.named_modules())
        for n in prunable_names(params):
            mod_name, _, attr = n.rpartition(".")
            mod = modules[mod_name]
            tprune.custom_from_mask(mod, attr, mask=(getattr(mod, attr) != 0).to(torch.float32))
    return model.eval()


def save_pruned(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model``'s weights as a plain state dict that ``load_pruned`` (weights_only) reads.

    Pruning masks are folded in, so the file loads into the bare architecture; the tensors are
    copied to the CPU. Missing parent folders are created. Written atomically: a temporary file
    in the same folder, then renamed. Returns the path written.

    Raises:
        ValueError: when ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in _effective_state(model).items()}
    # provenance.atomic_write writes text; this is the same temporary-then-rename for torch.save's bytes.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_pruned(path: str | os.PathLike, architecture: nn.Module) -> nn.Module:
    """Load a file written by ``save_pruned`` into ``architecture`` (a fresh module of the same kind).

    Uses ``torch.load(map_location="cpu", weights_only=True)``: the file holds tensors only.
    ``architecture`` is filled in place (strictly: every name, every shape) and returned in eval
    mode.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        ValueError: when the names or shapes do not fit ``architecture``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        architecture.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit this architecture: {err}") from None
    return architecture.eval()
