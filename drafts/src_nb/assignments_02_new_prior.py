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
# # Assignment 2: a Laplace prior
#
# The variational loss $L_1$ of {cite}`grebenkova2023` charges each model
# $\lambda\,\mathrm{KL}(q\,\|\,p)/N$, with a Gaussian prior $p(w) = \mathcal N(0, 1)$ on every weight.
# The prior decides what "simple" means: a Gaussian prior favours weights that are small, but it
# barely cares whether they are exactly zero. A Laplace prior,
#
# $$
# p(w) = \frac{1}{2b}\exp\left(-\frac{|w|}{b}\right),
# $$
#
# has a sharp peak at zero and heavier tails. Its log density, $-|w|/b$ up to a constant, is the lasso
# penalty, known for setting many weights to zero. In this assignment you plug a Laplace prior into
# Algorithm 1 and compare the pruning curves with those of the Gaussian prior. The scale
# $b = 1/\sqrt 2$ gives the Laplace prior the same variance, $2b^2 = 1$, as $\mathcal N(0, 1)$.
#
# **What to deliver**
#
# 1. The functions `log_prior(w)` and `kl_penalty(mean, log_sigma)`, in the cell marked *TODO 1* and
#    *TODO 2*.
# 2. The comparison at the end, run in full mode (with `VARHYPER_QUICK` unset), and your answers
#    in the cell *Your findings*.
#
# **How it is graded**
#
# - *Automatically.* The grader cell runs `check_prior(kl_penalty, log_prior)`. It checks that
#   $e^{\log p}$ integrates to one, that the KL is elementwise, finite, non-negative and
#   differentiable, that it agrees with a Monte Carlo estimate, and that it charges more for larger
#   weights. All checks must pass. From a terminal, on a `.py` file that defines both functions:
#   `python -m varhyper_mini grade my_solution.py`.
# - *By hand.* Your findings answer the questions with numbers from your own run.
#
# Until you fill in the TODOs, the notebook still runs from top to bottom: the grader reports the
# failures and the comparison trains the Gaussian prior only.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F

import varhyper_mini as vh
from varhyper_mini import grading as vh_grading

QUICK = vh.quick_mode()
N_TRAIN = vh.pick(full=20_000, quick=2_000)
N_TEST = vh.pick(full=10_000, quick=2_000)
EPOCHS = vh.pick(full=10, quick=2)
LAM_RANGE = (1e-3, 1e2)
LAMS = [1e-2, 1.0, 100.0]
FRACTIONS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
SCALE = 1 / math.sqrt(2)  # b: the Laplace prior's variance 2 b^2 is 1, as for N(0, 1)
print(f"quick mode: {QUICK}; {N_TRAIN} training images, {EPOCHS} epochs")

# %% [markdown]
# ## TODO: the prior and its KL divergence
#
# `log_prior(w)` returns $\log p(w)$ for every entry of the tensor `w`. `kl_penalty(mean, log_sigma)`
# returns, for every weight, $\mathrm{KL}\big(\mathcal N(\mu, \sigma^2)\,\|\,p\big)$ with
# $\sigma = e^{\log\sigma}$, a tensor of the inputs' shape; the training loop sums it over the weights.
# Derive the closed form from
#
# $$
# \mathrm{KL}(q\,\|\,p) = \mathbb E_q[\log q(w)] - \mathbb E_q[\log p(w)],
# $$
#
# where the first term is minus the entropy of a Gaussian, $-\tfrac12\log(2\pi e\sigma^2)$, and the
# second needs $\mathbb E_q|w|$ for $w \sim \mathcal N(\mu, \sigma^2)$: the mean of a folded normal
# distribution. Write both with torch operations (`torch.erf` may help), so that the KL is
# differentiable.

# %%
def log_prior(w: torch.Tensor) -> torch.Tensor:
    """log p(w) of the Laplace prior with scale SCALE, for every entry of w."""
    # TODO 1
    raise NotImplementedError("TODO 1: the Laplace log density")


def kl_penalty(mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_sigma)^2) || Laplace(0, SCALE)), for every weight."""
    # TODO 2
    raise NotImplementedError("TODO 2: the KL divergence to the Laplace prior")

# %% [markdown]
# ## Check your functions

# %%
report = vh_grading.check_prior(kl_penalty, log_prior)

# %% [markdown]
# The next cell is folded. It runs the same checks, through the command-line entry point, on the
# course's reference solution, so that you can see what a passing report looks like.

# %% tags=["hide-cell"]
from pathlib import Path

reference = Path("solutions") / "laplace_prior.py"
if reference.exists():
    exit_status = vh_grading.grade_cli(reference)
else:
    print("The reference solution is not shipped with this copy of the notebook.")

# %% [markdown]
# ## A training loop with a pluggable prior
#
# `vh.train` knows the paper's three losses only. The loop below is Algorithm 1 again, written out,
# with the KL term passed in as a function. Each batch draws `lam_samples` values of $\lambda$ with
# $\log\lambda$ uniform on $\Lambda$ and one weight sample per $\lambda$. It minimises the mean of
# cross-entropy $+\;\lambda \sum_i \mathrm{KL}_i / N$. It trains both priors, so that the comparison
# differs in the prior only. You need not change it.

# %%
def train_with_penalty(hyper, target, data, kl, epochs, lr=1e-3, batch_size=256, lam_samples=5, seed=0):
    """Algorithm 1 with the penalty lambda * sum(kl(mean, log_sigma)) / N; returns the epoch losses."""
    gen = torch.Generator().manual_seed(seed)
    prior = vh.LogUniform(*hyper.lam_range)
    opt = torch.optim.Adam(hyper.parameters(), lr=lr)
    run = torch.func.vmap(lambda w, x: torch.func.functional_call(target, w, (x,)), in_dims=(0, None))
    history = []
    for _ in range(epochs):
        total = 0.0
        for idx in vh.data.batches(len(data), batch_size, gen):
            x, y = data.x[idx], data.y[idx]
            lam = prior.sample(lam_samples, gen)
            mean, log_sigma = hyper.flat_params(hyper.encode_batch(lam))  # (k, P) each
            w = mean + torch.exp(log_sigma) * torch.randn(mean.shape, generator=gen)
            logits = run(hyper.spec.unflatten(w), x)  # (k, batch, classes)
            nll = F.cross_entropy(logits.flatten(0, 1), y.repeat(lam_samples))
            loss = nll + (lam * kl(mean, log_sigma).sum(-1)).mean() / len(data)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(hyper.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(data))
    return history

# %% [markdown]
# ## Comparison: Gaussian and Laplace priors
#
# One piecewise-linear hypernetwork per prior, trained on the same images from the same
# initialisation. Your prior enters the comparison once it passes the grader.

# %%
PRIORS = {"Gaussian": lambda mean, log_sigma: vh.gaussian.kl_to_prior(mean, log_sigma, 1.0)}
if report.passed:
    PRIORS["Laplace"] = kl_penalty
else:
    print("kl_penalty does not pass the grader yet: the comparison trains the Gaussian prior only.")

train_data = vh.data.mnist(train=True, subset=N_TRAIN)
test_data = vh.data.mnist(train=False, subset=N_TEST)
curves, shares = [], []
for name, kl in PRIORS.items():
    torch.manual_seed(0)
    target = vh.models.mnist_mlp()
    hyper = vh.PiecewiseLinearHypernet(target, n_pieces=5, lam_range=LAM_RANGE)
    train_with_penalty(hyper, target, train_data, kl, EPOCHS)
    curves.append(vh.pruning_curve(hyper, target, test_data, LAMS, FRACTIONS).assign(prior=name))
    with torch.no_grad():
        for lam in LAMS:
            w = hyper(lam).mean["fc1.weight"]
            shares.append({"prior": name, "lam": lam, "share |mu| < 0.01": float((w.abs() < 0.01).float().mean())})
curves = pd.concat(curves, ignore_index=True)

# %% [markdown]
# The figure shows the test accuracy against the share of deleted weights, one panel per $\lambda$.
# The table gives the share of first-layer means below 0.01 in absolute value, a rough count of
# the weights that the prior has switched off.

# %%
fig, axes = plt.subplots(1, len(LAMS), figsize=(10, 3.2), sharey=True)
for ax, lam in zip(axes, LAMS):
    for name, grp in curves[curves.lam == lam].groupby("prior", sort=False):
        ax.plot(100 * grp.fraction, grp.accuracy, marker="o", label=name)
    ax.set_title(rf"$\lambda = {lam:g}$")
    ax.set_xlabel("% of weights deleted")
axes[0].set_ylabel("test accuracy")
axes[-1].legend()
plt.show()
shares = pd.DataFrame(shares).pivot(index="lam", columns="prior", values="share |mu| < 0.01")
display(shares.style.format("{:.3f}").format_index("{:g}"))

# %% [markdown]
# ## Your findings
#
# *TODO 3: replace this text with your answers, quoting the numbers of a full-mode run.*
#
# 1. At which $\lambda$ does the prior make a difference, and at which share of deleted weights?
#    Which prior keeps the accuracy higher when 90 % of the weights are deleted?
# 2. Does the Laplace prior switch off more weights (the table)? Relate that to the shape of its
#    density at zero.
# 3. The relative density $|\mu|/\sigma$ of eq. (17) was derived for a Gaussian posterior, whatever
#    the prior. Is it still a sensible pruning score under a Laplace prior? Propose an alternative.
