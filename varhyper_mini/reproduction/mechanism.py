"""The mechanism behind Table 1's heavy-pruning gap: what deleting first-layer weights does to the hidden units.

A hidden unit computes a = b + sum_j w_j x_j. Under [-1, 1] pixel scaling a background pixel is
-1 in every image, so a weight on it acts as part of the unit's bias, and deleting it shifts the
unit on every input; under [0, 1] the pixel is 0 and deleting the weight changes nothing. These
functions train the small model that shows it (chapter 06), measure the shift and draw the weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..data import TensorData
from ..gaussian import GaussianParams
from ..hypernets import ConstantHypernet
from ..pruning import apply_masks, correct_biases, layer_input_means, prune, pruning_masks
from ..training import train

__all__ = ["background_pixels", "hidden_shift", "fit_direct", "plot_unit_weights"]


def background_pixels(data: TensorData, share: float = 0.99) -> torch.Tensor:
    """Pixels at their dataset-wide minimum in at least ``share`` of the images, shape (H*W,).

    On MNIST these are the border pixels that are (almost) always background: 0 under [0, 1]
    scaling, -1 under [-1, 1].
    """
    x = data.x.flatten(1)
    at_min = x <= x.min() + 1e-6
    return at_min.float().mean(0) >= share


@torch.no_grad()
def hidden_shift(
    target: nn.Module,
    params: GaussianParams,
    train_data: TensorData,
    test_data: TensorData,
    fraction: float,
    layer: str = "fc1",
    criterion: str = "var",
    scope: str = "layer",
) -> dict[str, torch.Tensor]:
    """What pruning does to the pre-activations of ``layer`` (a linear layer), per unit.

    Returns, each of shape (units,): ``shift`` = mean over ``test_data`` of the change in each
    unit's pre-activation when the weights are deleted; ``shift_corrected`` = the same after
    ``correct_biases`` (mean inputs from ``train_data``); ``spread`` = the standard deviation
    of the unit's unpruned pre-activation, the scale to read the shift against. Needs the layer
    to be the first one (its input is the flattened image).

    Raises:
        ValueError: ``params`` have no ``<layer>.weight`` and ``<layer>.bias``; or what
            ``pruning_masks`` raises for ``fraction``, ``criterion`` or ``scope``.
    """
    w, b = f"{layer}.weight", f"{layer}.bias"
    if w not in params.mean or b not in params.mean:
        raise ValueError(f"{layer!r} is not a linear layer with a bias in these parameters")
    masks = pruning_masks(params, fraction, criterion, scope)
    pruned = apply_masks(params, masks)
    fixed = correct_biases(params, pruned, masks, layer_input_means(target, params, train_data))
    inputs = test_data.x.flatten(1).to(params.mean[w].dtype)

    def pre(p: GaussianParams) -> torch.Tensor:
        return inputs @ p.mean[w].T + p.mean[b]

    full = pre(params)
    return {
        "shift": (pre(pruned) - full).mean(0),
        "shift_corrected": (pre(fixed) - full).mean(0),
        "spread": full.std(0),
    }


def fit_direct(
    target: nn.Module,
    data: TensorData,
    lam: float = 1.0,
    loss: str = "variational",
    epochs: int = 50,
    seed: int = 0,
) -> tuple[nn.Module, GaussianParams]:
    """One directly trained model at one lambda (Algorithm 1 with lambda fixed), as the study trains it.

    A ``ConstantHypernet`` starts at ``target``'s own initialisation and is trained with
    ``training.train`` (Adam, the study's defaults) for ``epochs`` on ``data`` with ``loss`` (L1
    "variational", L2 "covariance" or L3 "base"). Returns ``target`` and the trained parameters at
    ``lam``, detached (``GaussianParams`` with the target's parameter shapes). Source: Algorithm 1
    with a fixed lambda, the paper's "direct" implementations (a), (d), (g).

    Raises:
        ValueError: a bad argument (see ``training.train_many``).
        FloatingPointError: the training loss became inf or NaN.
    """
    hyper = ConstantHypernet(target)
    train(hyper, target, data, loss, lam=lam, epochs=epochs, seed=seed, progress=False)
    return target, hyper(lam).detach()


def plot_unit_weights(
    fits: Mapping[str, tuple[nn.Module, GaussianParams]],
    fraction: float = 0.9,
    units: Iterable[int] = range(6),
    layer: str = "fc1.weight",
    image_shape: tuple[int, int] = (28, 28),
) -> plt.Figure:
    """The first layer's weights of a few hidden units drawn as images: all, then those kept after pruning.

    ``fits`` maps a label (the input scaling) to ``(target, params)`` (``fit_direct``'s output).
    For each label two rows: every weight of ``layer`` into each of ``units`` reshaped to
    ``image_shape`` (red positive, blue negative, one colour scale per label: the 99th percentile
    of |mu|), then the weights kept when ``fraction`` of them are deleted per layer by |mu|/sigma
    (Algorithm 2, eq. 17), the deleted ones grey. Returns the figure (2 x len(fits) rows of
    len(units) panels).

    Raises:
        KeyError: ``layer`` is not among the parameters.
        RuntimeError: a row of ``layer`` does not have ``image_shape``'s size.
        ValueError: ``fraction`` is not in [0, 1] (from ``prune``).
    """
    units = list(units)
    fig, axes = plt.subplots(2 * len(fits), len(units), figsize=(2 * len(units), 2.15 * 2 * len(fits)), squeeze=False)
    for block, (label, (_, params)) in enumerate(fits.items()):
        deleted = prune(params, fraction, "var", "layer").mean[layer] == 0
        w = params.mean[layer]
        lim = float(w.abs().quantile(0.99))
        rows = (("all weights", torch.zeros_like(deleted)), (f"kept at {100 * fraction:.0f} %", deleted))
        for sub, (what, mask) in enumerate(rows):
            for j, u in enumerate(units):
                ax = axes[2 * block + sub, j]
                img = np.ma.masked_array(w[u].reshape(image_shape).numpy(), mask[u].reshape(image_shape).numpy())
                ax.imshow(np.zeros(image_shape), cmap="Greys", vmin=-1, vmax=1)  # deleted weights show grey
                ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(f"{label}\n{what}", fontsize=8)
                if block == 0 and sub == 0:
                    ax.set_title(f"unit {u}", fontsize=8)
    fig.suptitle(
        f"{layer.split('.')[0]} weights of {len(units)} hidden units (red +, blue −), per input scaling: "
        f"all, and kept at {100 * fraction:.0f} % per layer"
    )
    return fig
