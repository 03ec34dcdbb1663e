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
# # A quick tour: one hypernetwork, a family of models
#
# This chapter runs the whole method once, end to end, before the following chapters take it
# apart. A *hypernetwork* $G(\lambda)$ takes a complexity value $\lambda$ and returns the
# parameters of a model. Here the model is a small multilayer perceptron for MNIST whose weights
# are Gaussian, $q(\mathbf{w}) = \mathcal{N}(\boldsymbol\mu, \operatorname{diag}\boldsymbol\sigma^2)$.
# Training draws $\lambda$ at random (Algorithm 1 of {cite}`grebenkova2023`), so one training
# run yields a model for every $\lambda$ in the range. At inference we pick $\lambda$ and delete
# the weights with the smallest relative density $|\mu|/\sigma$ (Algorithm 2).

# %% [markdown]
# ## Settings
# One switch shrinks the work: `VARHYPER_QUICK=1` (set by `make test`) uses a smaller subset and
# fewer epochs. The code that runs is the same.

# %%
import matplotlib.pyplot as plt
import torch
from myst_nb import glue

import varhyper_mini as vh

QUICK = vh.quick_mode()
N_TRAIN = vh.pick(full=20_000, quick=2_000)
EPOCHS = vh.pick(full=10, quick=2)
LAM_RANGE = (1e-3, 1e2)
print(f"quick mode: {QUICK}; {N_TRAIN} training images, {EPOCHS} epochs")

# %% [markdown]
# ## Data, model and hypernetwork
# The data loaders hold the images as tensors in memory. The model is an ordinary `torch.nn`
# module; the hypernetwork generates its parameters by name.

# %%
torch.manual_seed(0)
train_data = vh.data.mnist(train=True, subset=N_TRAIN)
test_data = vh.data.mnist(train=False)
target = vh.models.mnist_mlp()
hyper = vh.PiecewiseLinearHypernet(target, n_pieces=5, lam_range=LAM_RANGE)
print(hyper)
params = hyper(1.0)
print({name: tuple(t.shape) for name, t in params.mean.items()})

# %% [markdown]
# ## Algorithm 1: train on sampled $\lambda$
# Each batch draws five values with $\log\lambda$ uniform on $\Lambda$ and minimises the average
# of the variational loss $L_1$: cross-entropy plus $\lambda\,\mathrm{KL}(q\,\|\,p)/N$.

# %%
history = vh.train(
    hyper, target, train_data, loss="variational",
    lam_prior=vh.LogUniform(*LAM_RANGE), epochs=EPOCHS, seed=0,
)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, EPOCHS + 1), history.nll, marker="o", label="cross-entropy")
ax.plot(range(1, EPOCHS + 1), history.penalty, marker="o", label=r"$\lambda$ KL / N")
ax.set_xlabel("epoch")
ax.set_yscale("log")
ax.legend()
plt.show()

# %% [markdown]
# ## One model per $\lambda$, and Algorithm 2
# Every $\lambda$ now gives a model. Larger $\lambda$ pulls the posterior towards the prior, so
# more weights carry little information and can be deleted.

# %%
lams = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
curve = vh.pruning_curve(hyper, target, test_data, lams, criterion="var")
table = curve.pivot(index="fraction", columns="lam", values="accuracy")
display(table.style.format("{:.3f}"))
fig, ax = plt.subplots(figsize=(5, 3))
for lam, grp in curve.groupby("lam"):
    ax.plot(100 * grp.fraction, grp.accuracy, marker="o", label=f"λ = {lam:g}")
ax.set_xlabel("% of weights deleted")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=8)
plt.show()
glue("tour_acc_0", float(table.loc[0.0, 1.0]), display=False)
glue("tour_acc_90", float(table.loc[0.9, 1.0]), display=False)

# %% [markdown]
# At $\lambda = 1$ the model reaches a test accuracy of {glue:text}`tour_acc_0:.3f` with all weights
# and {glue:text}`tour_acc_90:.3f` with 90 % of them deleted. The rest of the book explains why this
# works and how it compares with the paper.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-tour-linear
# Replace the piecewise-linear hypernetwork with `vh.LinearHypernet` and compare the pruning curves.
# ```
#
# ```{solution-start} ex-tour-linear
# :class: dropdown
# ```
# Build `hyper = vh.LinearHypernet(target, lam_range=LAM_RANGE)`, train it with the same call and
# rerun the pruning cell. The linear form stores two vectors per parameter instead of six, so it
# bends less with $\lambda$; its curves are usually close at moderate $\lambda$ and differ at the ends.
# ```{solution-end}
# ```
