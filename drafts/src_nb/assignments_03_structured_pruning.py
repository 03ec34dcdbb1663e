# %% tags=["remove-input"]
# Setup: install varhyper_mini when it is not importable (for example in Google Colab).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("varhyper_mini") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "varhyper_mini @ git+https://github.com/varhyper-book/varhyper-mini@v0.1.0"],
        check=True,
    )

# %% [markdown]
# # Assignment 3: pruning whole neurons
#
# Algorithm 2 of {cite}`grebenkova2023` deletes single weights: it sets the means with the smallest
# relative density $|\mu|/\sigma$ to zero. A dense matrix product does the same work whether a
# weight is zero or not. So deleting 90 % of the weights saves time only with sparse kernels,
# which pay off at high sparsity and on some hardware only. Removing a whole hidden neuron is
# different. It deletes a row of the first layer's weights, its bias and a column of the second
# layer's weights. The dense layers then simply shrink, on any hardware. In this assignment you
# prune the hidden neurons of the MNIST network and measure accuracy against the share of
# multiply-accumulate operations (MACs) removed.
#
# **What to deliver**
#
# 1. The functions `neuron_scores`, `prune_neurons` and `count_macs`, in the cells marked
#    *TODO 1* to *TODO 3*.
# 2. The comparison at the end, run in full mode (with `VARHYPER_QUICK` unset), and your answers
#    in the cell *Your findings*.
#
# **How it is graded**
#
# - *Automatically.* The grader cell runs `check_neuron_pruning(prune_neurons, count_macs)` on
#   random parameters of networks with 50 and 20 hidden neurons. It checks that
#   `prune_neurons` removes exactly `round(fraction * hidden)` whole neurons and leaves the rest
#   alone, that it does not change its input, that the removed sets grow with the fraction, that it
#   removes unimportant neurons first, that it rejects bad fractions, and that `count_macs` counts
#   the work of the shrunk dense layers. All checks must pass. From a terminal, on a `.py` file
#   that defines the functions: `python -m varhyper_mini grade my_solution.py`.
# - *By hand.* Your findings answer the questions with numbers from your own run.
#
# Until you fill in the TODOs, the notebook still runs from top to bottom: the grader reports the
# failures and the comparison shows single-weight pruning only.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

import varhyper_mini as vh
from varhyper_mini import grading as vh_grading

QUICK = vh.quick_mode()
N_TRAIN = vh.pick(full=20_000, quick=2_000)
N_TEST = vh.pick(full=10_000, quick=2_000)
EPOCHS = vh.pick(full=10, quick=2)
LAM_RANGE = (1e-3, 1e2)
LAMS = [1e-2, 1.0, 100.0]
FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95)
print(f"quick mode: {QUICK}; {N_TRAIN} training images, {EPOCHS} epochs")

# %% [markdown]
# ## A family of models to prune
#
# A piecewise-linear hypernetwork, trained once with Algorithm 1 and the variational loss $L_1$,
# gives a model for every $\lambda$. Its parameters are `GaussianParams`: dictionaries of means and
# log standard deviations keyed by the names of the network's tensors.

# %%
torch.manual_seed(0)
train_data = vh.data.mnist(train=True, subset=N_TRAIN)
test_data = vh.data.mnist(train=False, subset=N_TEST)
target = vh.models.mnist_mlp()
hyper = vh.PiecewiseLinearHypernet(target, n_pieces=5, lam_range=LAM_RANGE)
vh.train(
    hyper,
    target,
    train_data,
    loss="variational",
    lam_prior=vh.LogUniform(*LAM_RANGE),
    epochs=EPOCHS,
    seed=0,
    progress=False,
)
params = hyper(1.0)
print({name: tuple(t.shape) for name, t in params.mean.items()})

# %% [markdown]
# ## TODO: structured pruning
#
# Hidden neuron $j$ owns row $j$ of `fc1.weight`, entry $j$ of `fc1.bias` and column $j$ of
# `fc2.weight`. *Removing* it sets all three to zero in the means.
#
# 1. `neuron_scores(params)` returns one relevance score per hidden neuron, a tensor of shape
#    `(hidden,)`; a larger score means a more relevant neuron. Design it yourself: for instance,
#    combine the relative densities $|\mu|/\sigma$ of the neuron's incoming and outgoing weights.
# 2. `prune_neurons(params, fraction)` returns new `GaussianParams` with the
#    `round(fraction * hidden)` neurons of lowest score removed and everything else unchanged.
#    It raises `ValueError` unless `0 <= fraction <= 1`, and leaves `params` unchanged
#    (`params.detach().clone()` gives a copy to edit).
# 3. `count_macs(params)` returns the MACs per image of a dense network that skips removed
#    neurons: each remaining hidden neuron costs 784 MACs in the first layer and 10 in the second
#    (biases are not counted).

# %%
def neuron_scores(params: vh.GaussianParams) -> torch.Tensor:
    """One relevance score per hidden neuron, shape (hidden,); larger is more relevant."""
    # TODO 1
    raise NotImplementedError("TODO 1: score the hidden neurons")


def prune_neurons(params: vh.GaussianParams, fraction: float) -> vh.GaussianParams:
    """Remove the round(fraction * hidden) hidden neurons of lowest score."""
    # TODO 2
    raise NotImplementedError("TODO 2: remove whole neurons")


def count_macs(params: vh.GaussianParams) -> int:
    """Multiply-accumulates per image of the dense network without the removed neurons."""
    # TODO 3
    raise NotImplementedError("TODO 3: count the multiply-accumulates")

# %% [markdown]
# ## Check your functions

# %%
report = vh_grading.check_neuron_pruning(prune_neurons, count_macs)

# %% [markdown]
# The next cell is folded. It runs the same checks, through the command-line entry point, on the
# course's reference solution, so that you can see what a passing report looks like.

# %% tags=["hide-cell"]
from pathlib import Path

reference = Path("solutions") / "neuron_pruning.py"
if reference.exists():
    exit_status = vh_grading.grade_cli(reference)
else:
    print("The reference solution is not shipped with this copy of the notebook.")

# %% [markdown]
# ## Comparison: single weights and whole neurons
#
# Single weights are deleted with `vh.prune` and the relative density $|\mu|/\sigma$. Their MACs
# removed are counted generously, as if a sparse kernel skipped every zero weight; a dense kernel
# would save none. Neurons are removed with your `prune_neurons` and counted with your `count_macs`.
# Your method enters the comparison once it passes the grader. The table gives the accuracy for
# each nominal fraction (of weights, or of neurons) removed.

# %%
rows = []
for lam in LAMS:
    params = hyper(lam)
    for fraction in FRACTIONS:
        pruned = vh.prune(params, fraction, criterion="var")
        acc = vh.accuracy(target, pruned, test_data)
        row = {"lam": lam, "fraction": fraction}
        rows.append({**row, "method": "single weights", "MACs removed": vh.sparsity(pruned), "accuracy": acc})
        if report.passed:
            pruned = prune_neurons(params, fraction)
            removed = 1 - count_macs(pruned) / count_macs(params)
            acc = vh.accuracy(target, pruned, test_data)
            rows.append({**row, "method": "whole neurons", "MACs removed": removed, "accuracy": acc})
if not report.passed:
    print("prune_neurons does not pass the grader yet: the comparison shows single weights only.")
results = pd.DataFrame(rows)

fig, axes = plt.subplots(1, len(LAMS), figsize=(10, 3.2), sharey=True)
for ax, lam in zip(axes, LAMS):
    for method, grp in results[results.lam == lam].groupby("method", sort=False):
        ax.plot(100 * grp["MACs removed"], grp.accuracy, marker="o", label=method)
    ax.set_title(rf"$\lambda = {lam:g}$")
    ax.set_xlabel("% of MACs removed")
axes[0].set_ylabel("test accuracy")
axes[-1].legend()
plt.show()
table = results.pivot_table(index=["lam", "method"], columns="fraction", values="accuracy")
display(table.style.format("{:.3f}").format_index("{:g}", axis=1).format_index("{:g}", axis=0, level=0))

# %% [markdown]
# ## Your findings
#
# *TODO 4: replace this text with your answers, quoting the numbers of a full-mode run.*
#
# 1. At 50 % and at 90 % of MACs removed, how much accuracy does each method keep, at each
#    $\lambda$? Remember that the single-weight curve assumes an ideal sparse kernel.
# 2. Does a larger $\lambda$ make the network easier to shrink by whole neurons? Count the
#    neurons whose incoming means are all near zero at each $\lambda$.
# 3. Compare two neuron scores of your choice (for example, incoming weights only against
#    incoming and outgoing). Which removes neurons with less loss of accuracy?
