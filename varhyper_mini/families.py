"""Families of models: hypernetwork forms trained once for all lambda, against directly trained models.

One trained hypernetwork G gives a model at every lambda of its range (Algorithm 1 of Grebenkova,
Bakhteev and Strijov 2023). This module trains the forms side by side and measures how the
families they generate compare, as chapter 3 ("Hypernetworks") and assignment 1 do:

- ``train_families``: for each loss, the linear (12) and piecewise-linear (13) hypernetworks with
  Algorithm 1 (``training.train``), and directly trained models (the constant form) at fixed
  lambdas (``training.train_many``), all from the same initialisation;
- ``describe``, ``family_table``: test accuracy, complexity and mean sigma of the generated models;
- ``gap_table``: their distance to the direct models, in accuracy and in the paper's symmetrised
  KL of section 4.1 (``theory.sym_kl``); ``findings``: the numbers chapter 3 quotes;
- ``plot_families``: chapter 3's figure (matplotlib is imported when it is drawn);
- ``compare_forms``: any forms (a student's among them) trained with one loss and pruned with
  Algorithm 2 (``pruning.pruning_curve``), for a comparison at equal storage budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import as_positive, check_lam_range
from .data import TensorData
from .evaluation import accuracy, check_data
from .gaussian import GaussianParams
from .hypernets import ConstantHypernet, Hypernet, LinearHypernet, PiecewiseLinearHypernet, evaluation, lambda_key
from .losses import LOSSES, check_loss_name
from .pruning import FRACTIONS, pruning_curve
from .theory import sym_kl
from .training import LogUniform, train, train_many

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "LOSS_NAMES",
    "FORM_STYLES",
    "Families",
    "train_families",
    "describe",
    "family_table",
    "gap_table",
    "findings",
    "plot_families",
    "compare_forms",
]

#: The paper's names of the three losses (eqs. (4)-(6)), keyed by the package's loss names.
LOSS_NAMES = {"variational": "L1 (variational)", "covariance": "L2 (covariance)", "base": "L3 (base)"}
#: Line styles of the two hypernetwork forms in chapter 3's figures.
FORM_STYLES = {"linear": {"color": "C0", "ls": "-"}, "piecewise": {"color": "C1", "ls": "-"}}


@dataclass
class Families:
    """What ``train_families`` trained.

    ``hypers[loss, form]`` is the hypernetwork of form "linear" or "piecewise" trained with
    ``loss``; ``directs[loss]`` the directly trained models (``ConstantHypernet``), one per
    ``direct_lams[i]``.
    """

    hypers: dict[tuple[str, str], Hypernet] = field(default_factory=dict)
    directs: dict[str, list[ConstantHypernet]] = field(default_factory=dict)
    direct_lams: list[float] = field(default_factory=list)


def _check_fits(target: nn.Module, data: TensorData) -> None:
    """Refuse empty data or data that do not fit ``target``: one forward pass on two examples (ValueError)."""
    check_data(data)
    x = data.x[:2]
    first = next(iter(target.parameters()), None)
    if first is not None:
        x = x.to(first.device)
    try:
        with torch.no_grad(), evaluation(target):
            out = target(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"the data do not fit the target: inputs of shape {tuple(data.x.shape[1:])} ({data.x.dtype}) per "
            f"example failed in {type(target).__name__}: {err}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the target must return class logits of shape (batch, classes), got {shape}")
    if int(data.y.min()) < 0 or int(data.y.max()) >= out.shape[1]:
        raise ValueError(
            f"the labels run from {int(data.y.min())} to {int(data.y.max())} but the target has {out.shape[1]} "
            f"outputs; the labels must lie in [0, {out.shape[1] - 1}]"
        )


def train_families(
    make_target: Callable[[], nn.Module],
    data: TensorData,
    lam_range: tuple[float, float],
    direct_lams: Sequence[float],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    n_pieces: int = 5,
    seed: int = 0,
    losses: Sequence[str] = LOSSES,
    target: nn.Module | None = None,
    progress: bool = False,
) -> Families:
    """Every form with every loss: Algorithm 1 for two hypernetworks, and direct models at fixed lambdas.

    For each loss, in order: a ``LinearHypernet`` (eq. 12) and a ``PiecewiseLinearHypernet``
    with ``n_pieces`` regions (eq. 13) over ``lam_range``, each trained by ``train`` with log
    lambda uniform on ``lam_range`` (``LogUniform``); then one ``ConstantHypernet`` per lambda of
    ``direct_lams``, trained together by ``train_many``. The global torch seed is set to ``seed``
    before each hypernetwork and before the direct models are built, so every model starts from
    the same ``make_target()`` initialisation; each trains with its own stream seeded by ``seed``.
    The "base" loss (L3) trains deterministic models (``variational=False``).

    Args:
        make_target: builds the target module (called once per model, after seeding).
        data: the training data.
        lam_range: (lo, hi), the range Lambda of the hypernetworks and of their lambda prior.
        direct_lams: the lambdas of the directly trained models: at least one, each inside
            ``lam_range``.
        epochs, lr, batch_size: passed to ``train`` and ``train_many``.
        n_pieces: regions of the piecewise-linear form.
        seed: the torch seed of the initialisations and the seed of every training run.
        losses: the loss names to train with, a non-empty subset of ``losses.LOSSES`` without
            repeats; one name as a str means that loss alone.
        target: the module the models run in (its own weights are not used); ``make_target()``
            when None.
        progress: show tqdm progress bars.
    Returns:
        ``Families`` with ``2 * len(losses)`` hypernetworks and ``len(losses)`` lists of direct models.
    Raises:
        ValueError: before anything is trained: for a ``make_target`` that is not a callable
            returning an ``nn.Module`` (a module itself included), no losses, an unknown or
            repeated loss name, a bad ``lam_range``, no ``direct_lams`` or one outside
            ``lam_range``, empty data or data that do not fit the target (one forward pass on
            two examples, the shapes named); and whatever ``train``, ``train_many`` or the
            hypernetworks' constructors raise for bad arguments (before their first step).
    """
    if isinstance(make_target, nn.Module) or not callable(make_target):
        raise ValueError(
            f"make_target must be a function that builds the target module (e.g. models.wine_logreg), "
            f"got {type(make_target).__name__}; pass the factory, not a module"
        )
    losses = (losses,) if isinstance(losses, str) else tuple(losses)
    if not losses:
        raise ValueError(f"losses is empty; name at least one of {list(LOSSES)}")
    for loss in losses:
        check_loss_name(loss)
    if len(set(losses)) != len(losses):
        raise ValueError(f"losses {list(losses)} names a loss twice; name each once")
    lo, hi = check_lam_range(lam_range)
    if isinstance(direct_lams, (str, bytes, Mapping)) or not isinstance(direct_lams, Iterable):
        raise ValueError(f"direct_lams must be a sequence of lambdas, got {direct_lams!r}")
    direct_lams = [as_positive(v, "a lambda of direct_lams", f32=True) for v in direct_lams]
    if not direct_lams:
        raise ValueError("direct_lams is empty: train_families needs at least one directly trained model")
    outside = [v for v in direct_lams if not lambda_key(lo) <= lambda_key(v) <= lambda_key(hi)]
    if outside:
        raise ValueError(f"direct_lams {outside} lie outside lam_range [{lo:g}, {hi:g}]; use lambdas inside it")
    probe = make_target()
    if not isinstance(probe, nn.Module):
        raise ValueError(f"make_target() must return an nn.Module, got {type(probe).__name__}")
    target = probe if target is None else target
    _check_fits(target, data)
    prior = LogUniform(*lam_range)
    out = Families(direct_lams=direct_lams)
    forms = [("linear", LinearHypernet, {}), ("piecewise", PiecewiseLinearHypernet, {"n_pieces": n_pieces})]
    for loss in losses:
        var = loss != "base"  # L3 regularises the weights themselves: a deterministic model
        for form, cls, kw in forms:
            torch.manual_seed(seed)
            h = cls(make_target(), lam_range=lam_range, variational=var, **kw)
            train(h, target, data, loss=loss, lam_prior=prior, epochs=epochs, lr=lr, batch_size=batch_size,
                  seed=seed, progress=progress)  # fmt: skip
            out.hypers[loss, form] = h
        torch.manual_seed(seed)
        ds = [ConstantHypernet(make_target(), lam_range=lam_range, variational=var) for _ in direct_lams]
        train_many(ds, target, data, loss=loss, lams=direct_lams, seeds=[seed] * len(direct_lams), epochs=epochs,
                   lr=lr, batch_size=batch_size, progress=progress)  # fmt: skip
        out.directs[loss] = ds
    return out


@torch.no_grad()
def describe(target: nn.Module, params: GaussianParams, data: TensorData) -> dict[str, float]:
    """Test accuracy, complexity and mean sigma of one model.

    The complexity is KL(q || N(0, I)) in nats, computed in float64, for a variational model, and
    the squared norm of the weights ||w||^2 (the L3 penalty) for a deterministic one, whose mean
    sigma is NaN. Accuracy uses the mean weights (``evaluation.accuracy``).

    Returns:
        ``{"accuracy", "complexity", "mean sigma"}`` as Python floats.
    Raises:
        ValueError: for data that do not fit ``target`` (see ``evaluation.accuracy``).
    """
    row = {"accuracy": accuracy(target, params, data)}
    if params.variational:
        # float64: near the prior the KL is a small difference of large sums
        p64 = GaussianParams(
            {k: v.double() for k, v in params.mean.items()}, {k: v.double() for k, v in params.log_sigma.items()}
        )
        row["complexity"] = float(p64.kl(1.0))
        row["mean sigma"] = float(torch.cat([torch.exp(v).flatten() for v in params.log_sigma.values()]).mean())
    else:
        row["complexity"] = float(params.sq_norm())
        row["mean sigma"] = float("nan")
    return row


def family_table(families: Families, target: nn.Module, data: TensorData, lams: Sequence[float]) -> pd.DataFrame:
    """``describe`` for every hypernetwork at each of ``lams``, then for every direct model at its own lambda.

    Returns:
        A tidy table with columns ``loss, form, lambda, accuracy, complexity, mean sigma``;
        ``form`` is "linear", "piecewise" or "direct".
    Raises:
        ValueError: for a lambda outside the float32 range or data that do not fit ``target``.
    """
    _check_fits(target, data)
    rows = []
    with torch.no_grad():
        for (loss, form), h in families.hypers.items():
            for lam in lams:
                rows.append({"loss": loss, "form": form, "lambda": lam, **describe(target, h(float(lam)), data)})
        for loss, ds in families.directs.items():
            for lam, h in zip(families.direct_lams, ds):
                rows.append({"loss": loss, "form": "direct", "lambda": lam, **describe(target, h(lam), data)})
    return pd.DataFrame(rows)


def gap_table(
    families: Families, target: nn.Module, data: TensorData, loss_names: Mapping[str, str] = LOSS_NAMES
) -> pd.DataFrame:
    """How far each hypernetwork's models are from the direct ones, averaged over the direct models' lambdas.

    At each lambda of ``families.direct_lams``: the absolute difference in test accuracy (mean
    weights) and, for variational models, the symmetrised KL D(q1, q2) = KL(q1||q2) + KL(q2||q1)
    of the paper's section 4.1 (``theory.sym_kl``) between the generated and the direct posterior.

    Returns:
        A table indexed by (loss as named in ``loss_names``, form) with columns
        ``mean |accuracy difference|`` and ``mean symmetrised KL`` (NaN for deterministic models).
    Raises:
        KeyError: for a loss missing from ``loss_names``.
    """
    rows = []
    with torch.no_grad():
        for (loss, form), h in families.hypers.items():
            accs, skl = [], []
            for lam, d in zip(families.direct_lams, families.directs[loss]):
                q_h, q_d = h(lam), d(lam)
                accs.append(abs(accuracy(target, q_h, data) - accuracy(target, q_d, data)))
                if q_h.variational:
                    skl.append(float(sym_kl(q_h, q_d)))
            rows.append({
                "loss": loss_names[loss],
                "form": form,
                "mean |accuracy difference|": np.mean(accs),
                "mean symmetrised KL": np.mean(skl) if skl else float("nan"),
            })  # fmt: skip
    return pd.DataFrame(rows).set_index(["loss", "form"])


def findings(results: pd.DataFrame, gaps: pd.DataFrame, loss_names: Mapping[str, str] = LOSS_NAMES) -> dict:
    """The numbers chapter 3 quotes, from ``family_table`` and ``gap_table`` (both losses L1 and L2 trained).

    "lo"/"hi" are the first and last lambda of the tables (the ends of the evaluation grid, or of
    the direct models' lambdas). Keys: ``l1_acc_lo``, ``l1_acc_hi`` (accuracy of the piecewise L1
    family), ``l1_kl_lo``, ``l1_kl_hi`` (its KL, nats), ``l1_kl_lin_lo`` (the linear L1 family's),
    ``l1_kl_direct_lo``, ``l1_kl_direct_hi`` (the direct L1 models'), ``l1_sigma_hi``,
    ``l2_sigma_hi`` (mean sigma of the piecewise L1 and L2 families at the top lambda),
    ``skl_l1_linear``, ``skl_l1_piecewise`` (mean symmetrised KL to the direct models) and
    ``piecewise_closer``: "closer to" or "not closer to".

    Returns:
        A dict of Python floats and one str.
    Raises:
        KeyError or IndexError: when the tables lack the L1 or L2 rows.
    """
    hn = results[results.form != "direct"]
    l1, l2 = hn[hn.loss == "variational"], hn[hn.loss == "covariance"]
    l1_pw, l1_lin = l1[l1.form == "piecewise"], l1[l1.form == "linear"]
    l1_direct = results[(results.form == "direct") & (results.loss == "variational")]
    skl_l1 = gaps.loc[loss_names["variational"], "mean symmetrised KL"]
    return {
        "l1_acc_lo": float(l1_pw.accuracy.iloc[0]),
        "l1_acc_hi": float(l1_pw.accuracy.iloc[-1]),
        "l1_kl_lo": float(l1_pw.complexity.iloc[0]),
        "l1_kl_hi": float(l1_pw.complexity.iloc[-1]),
        "l1_kl_lin_lo": float(l1_lin.complexity.iloc[0]),
        "l1_kl_direct_lo": float(l1_direct.complexity.iloc[0]),
        "l1_kl_direct_hi": float(l1_direct.complexity.iloc[-1]),
        "l1_sigma_hi": float(l1_pw["mean sigma"].iloc[-1]),
        "l2_sigma_hi": float(l2[l2.form == "piecewise"]["mean sigma"].iloc[-1]),
        "skl_l1_linear": float(skl_l1["linear"]),
        "skl_l1_piecewise": float(skl_l1["piecewise"]),
        "piecewise_closer": "closer to" if skl_l1["piecewise"] < skl_l1["linear"] else "not closer to",
    }


def plot_families(results: pd.DataFrame, loss_names: Mapping[str, str] = LOSS_NAMES) -> Figure:
    """Chapter 3's figure: one row per loss, columns accuracy, complexity and mean sigma against lambda.

    Lines are the families the hypernetworks generate, squares the directly trained models
    (``results`` from ``family_table``). Returns the matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    losses = [loss for loss in loss_names if loss in set(results.loss)]
    fig, axes = plt.subplots(len(losses), 3, figsize=(13, 10 * len(losses) / 3), sharex=True, squeeze=False)
    for r, loss in enumerate(losses):
        sub = results[results.loss == loss]
        for c, col in enumerate(["accuracy", "complexity", "mean sigma"]):
            ax = axes[r, c]
            if col == "mean sigma" and loss == "base":
                ax.text(
                    0.5, 0.5, "deterministic model:\nno $\\sigma$", ha="center", va="center", transform=ax.transAxes
                )
                ax.set_xscale("log")
                continue
            for form, st in FORM_STYLES.items():
                g = sub[sub.form == form]
                ax.plot(g["lambda"], g[col], label=f"{form} hypernetwork", **st)
            g = sub[sub.form == "direct"]
            ax.plot(g["lambda"], g[col], "ks", ms=6, mfc="none", label="directly trained")
            ax.set_xscale("log")
            if col != "accuracy":
                ax.set_yscale("log")
            ylabel = {
                "accuracy": "test accuracy",
                "complexity": r"$\|\mu\|^2$" if loss == "base" else r"KL($q\,\|\,N(0, \alpha_{pr})$)",
                "mean sigma": r"mean $\sigma$",
            }[col]
            ax.set_ylabel(f"{loss_names[loss]}\n{ylabel}" if c == 0 else ylabel)
            # the bottom row's panels, and the panel above the deterministic row's empty one, get the axis label
            if r == len(losses) - 1 or (r == len(losses) - 2 and col == "mean sigma" and losses[-1] == "base"):
                ax.set_xlabel(r"$\lambda$")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def compare_forms(
    forms: Mapping[str, Callable[[nn.Module], Hypernet]],
    make_target: Callable[[], nn.Module],
    train_data: TensorData,
    test_data: TensorData,
    lams: Sequence[float],
    fractions: Sequence[float] = FRACTIONS,
    *,
    lam_prior: LogUniform,
    epochs: int,
    loss: str = "variational",
    seed: int = 0,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Train each form with Algorithm 1, then prune its models with Algorithm 2 over a grid.

    For each form, in order: the global torch seed is set to ``seed``, so every form starts from
    the same ``make_target()`` initialisation; ``forms[name](target)`` builds the hypernetwork,
    ``training.train`` trains it (``loss``, ``lam_prior``, ``epochs``, ``seed``, the other
    arguments at their defaults) and ``pruning.pruning_curve`` measures the test accuracy at each
    lambda of ``lams`` and share of ``fractions`` deleted by |mu|/sigma (criterion (17)).

    Returns:
        (curves, stored): the pruning curves of all forms in one table (columns ``lam, fraction,
        accuracy, form``) and the number of values each form stores (``Hypernet.n_stored``).
    Raises:
        ValueError: for no forms, and whatever the forms' constructors, ``train`` or
            ``pruning_curve`` raise for bad arguments.
    """
    if not forms:
        raise ValueError("compare_forms needs at least one form")
    curves, stored = [], {}
    for name, make in forms.items():
        torch.manual_seed(seed)  # every form starts from the same target initialisation
        target = make_target()
        hyper = make(target)
        train(hyper, target, train_data, loss=loss, lam_prior=lam_prior, epochs=epochs, seed=seed, progress=progress)
        curves.append(pruning_curve(hyper, target, test_data, lams, fractions).assign(form=name))
        stored[name] = hyper.n_stored()
    return pd.concat(curves, ignore_index=True), stored
