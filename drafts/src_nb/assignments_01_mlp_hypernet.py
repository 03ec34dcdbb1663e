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
# # Assignment 1: a hypernetwork of your own
#
# The package ships three forms of the hypernetwork $G(\lambda)$ of {cite}`grebenkova2023`: a
# constant one (a directly trained model), one linear in $u$ (eq. (12)) and one piecewise linear
# in $u$ (eq. (13)). Here $u = (\ln\lambda - \ln\lambda_{\min}) / (\ln\lambda_{\max} - \ln\lambda_{\min})$
# is $\lambda$ encoded on $[0, 1]$. In this assignment you write a fourth form, a small neural network
# of $u$. Then you compare it with the package's forms, each against a form that stores the same
# number of values.
#
# **What to deliver**
#
# 1. The class `MLPHypernet`, in the cell marked *TODO 1* and *TODO 2*.
# 2. The comparison at the end, run in full mode (with `VARHYPER_QUICK` unset), and your answers
#    in the cell *Your findings*.
#
# **How it is graded**
#
# - *Automatically.* The grader cell runs `check_hypernet(MLPHypernet)`. It checks the
#   output's names and shapes, finite values, gradients, determinism, continuity in $\lambda$,
#   the rejection of bad $\lambda$, a few training steps and the effect of $\lambda$. It prints
#   which checks pass. All of them must pass. From a terminal, on a `.py` file that holds your
#   class, the same checks run with `python -m varhyper_mini grade my_solution.py`.
# - *By hand.* Your findings answer the questions with numbers from your own run.
#
# Until you fill in the TODOs, the notebook still runs from top to bottom: the grader reports the
# failures and the comparison leaves your form out.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn

import varhyper_mini as vh
from varhyper_mini import grading as vh_grading

QUICK = vh.quick_mode()
N_TRAIN = vh.pick(full=20_000, quick=2_000)
N_TEST = vh.pick(full=10_000, quick=2_000)
EPOCHS = vh.pick(full=10, quick=2)
LAM_RANGE = (1e-3, 1e2)
LAMS = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
FRACTIONS = (0.0, 0.5, 0.7, 0.9)
print(f"quick mode: {QUICK}; {N_TRAIN} training images, {EPOCHS} epochs")

# %% [markdown]
# ## The contract of a hypernetwork form
#
# A form subclasses `vh.Hypernet` and implements one method, `flat_params(u)`. It receives a batch
# of encoded values `u` of shape `(k,)`. It returns the means, shape `(k, P)`, and the log standard
# deviations, shape `(k, P)`, or `None` for a deterministic model. $P$ is the number of the target's
# parameters. The base class does the rest: it encodes $\lambda$ and rejects bad values, names
# and reshapes the $P$ columns after the target's parameters, and counts the stored values. The linear
# form shows the shapes:

# %%
target = vh.models.mnist_mlp()
linear = vh.LinearHypernet(target, lam_range=LAM_RANGE)
u = torch.tensor([0.0, 0.5, 1.0])
mean, log_sigma = linear.flat_params(u)
print(f"u {tuple(u.shape)} -> mean {tuple(mean.shape)}, log_sigma {tuple(log_sigma.shape)}")
print(f"P = {linear.spec.total} parameters; the linear form stores {linear.n_stored()} values")
print({name: tuple(t.shape) for name, t in linear(1.0).mean.items()})

# %% [markdown]
# ## TODO: an MLP hypernetwork
#
# Your form passes $u$ through one hidden layer of $H$ tanh units and maps them linearly to the
# parameters:
#
# $$
# \boldsymbol\mu(u) = \mathbf c + \tanh(u\,\mathbf a + \mathbf b)\,\mathbf V, \qquad
# \log\boldsymbol\sigma(u) = \mathbf c' + \tanh(u\,\mathbf a + \mathbf b)\,\mathbf V',
# $$
#
# with $\mathbf a, \mathbf b \in \mathbb R^H$ shared, $\mathbf c, \mathbf c' \in \mathbb R^P$ and
# $\mathbf V, \mathbf V' \in \mathbb R^{H\times P}$. It stores $2P(H + 1) + 2H$ values. $H = 1$ has the
# budget of the linear form ($4P$), up to two values, and $H = 5$ that of the piecewise-linear form
# with 5 pieces ($12P$).
#
# Start it where the package's forms start, at the target's own parameters for every $\lambda$:
# $\mathbf c$ = `self.initial_mean(target)`, $\mathbf c'$ = `self.initial_log_sigma()`, and
# $\mathbf V = \mathbf V' = 0$. Spread the units over $[0, 1]$, so that each bends the curve at a
# different $\lambda$: $a_j = 2H$ and $b_j = -a_j\,(j + \tfrac12)/H$. When `self.variational` is
# false, store no $\mathbf c', \mathbf V'$ and return `None` for the log sigmas. Every stored
# tensor must be an `nn.Parameter`, so that it is trained and counted.

# %%
class MLPHypernet(vh.Hypernet):
    """G(u) = c + tanh(u a + b) V for the means, and likewise for the log sigmas."""

    def __init__(self, target: nn.Module, hidden: int = 5, **kwargs) -> None:
        super().__init__(target, **kwargs)  # sets self.spec, self.lam_range, self.variational
        self.hidden = hidden
        # TODO 1: create the stored tensors as nn.Parameter: a and b, shape (hidden,); c, shape (P,),
        # and V, shape (hidden, P); and, when self.variational, c' and V'. P is self.spec.total.
        raise NotImplementedError("TODO 1: create the stored parameters of MLPHypernet")

    def flat_params(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # TODO 2: return (mean, log_sigma), each of shape (len(u), P), or (mean, None).
        raise NotImplementedError("TODO 2: compute G(u) in MLPHypernet.flat_params")

# %% [markdown]
# ## Check your class
#
# The grader builds `MLPHypernet(target, lam_range=...)` for the MNIST network. It then runs its
# checks on a few hundred training images and prints a report. A failed check says what went
# wrong, and shows your traceback when your code raised.

# %%
report = vh_grading.check_hypernet(MLPHypernet, target="mnist")

# %% [markdown]
# The next cell is folded. It runs the same checks, through the command-line entry point, on the
# course's reference solution, so that you can see what a passing report looks like.

# %% tags=["hide-cell"]
from pathlib import Path

reference = Path("solutions") / "mlp_hypernet.py"
if reference.exists():
    exit_status = vh_grading.grade_cli(reference, target="mnist")
else:
    print("The reference solution is not shipped with this copy of the notebook.")

# %% [markdown]
# ## Comparison at equal budgets
#
# Each form is trained with Algorithm 1 on the same images, with the variational loss $L_1$ and
# $\log\lambda$ uniform on $\Lambda$. Each is then pruned with the relative density $|\mu|/\sigma$
# (Algorithm 2). Your form enters the comparison once it passes the grader.

# %%
FORMS = {
    "linear": lambda t: vh.LinearHypernet(t, lam_range=LAM_RANGE),
    "MLP, 1 unit": lambda t: MLPHypernet(t, hidden=1, lam_range=LAM_RANGE),
    "piecewise linear, 5 pieces": lambda t: vh.PiecewiseLinearHypernet(t, n_pieces=5, lam_range=LAM_RANGE),
    "MLP, 5 units": lambda t: MLPHypernet(t, hidden=5, lam_range=LAM_RANGE),
}
if not report.passed:
    print("MLPHypernet does not pass the grader yet: the comparison runs the package's forms only.")
    FORMS = {name: make for name, make in FORMS.items() if not name.startswith("MLP")}

train_data = vh.data.mnist(train=True, subset=N_TRAIN)
test_data = vh.data.mnist(train=False, subset=N_TEST)
curves, stored = [], {}
for name, make in FORMS.items():
    torch.manual_seed(0)  # every form starts from the same target initialisation
    target = vh.models.mnist_mlp()
    hyper = make(target)
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
    curve = vh.pruning_curve(hyper, target, test_data, LAMS, FRACTIONS)
    curves.append(curve.assign(form=name))
    stored[name] = hyper.n_stored()
curves = pd.concat(curves, ignore_index=True)

# %% [markdown]
# The table gives the stored values of each form and its test accuracy for each share of deleted
# weights, averaged over the six values of $\lambda$. The figure shows the accuracy at each $\lambda$,
# with all weights and with 90 % of them deleted.

# %%
summary = curves.pivot_table(index="form", columns="fraction", values="accuracy", aggfunc="mean")
summary.columns = [f"acc. {100 * f:.0f} % deleted" for f in summary.columns]
summary.insert(0, "stored values", pd.Series(stored))
display(summary.loc[list(FORMS)].style.format("{:.3f}").format("{:,}", subset=["stored values"]))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, fraction in zip(axes, (0.0, 0.9)):
    for name, grp in curves[curves.fraction == fraction].groupby("form", sort=False):
        ax.plot(grp.lam, grp.accuracy, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$")
    ax.set_title(f"{100 * fraction:.0f} % of weights deleted")
axes[0].set_ylabel("test accuracy")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Your findings
#
# *TODO 3: replace this text with your answers, quoting the numbers of a full-mode run.*
#
# 1. At each budget, which form is more accurate with all weights, and which with 90 % of the
#    weights deleted? Is the difference larger than the change between two runs with different
#    seeds (try `seed=1`)?
# 2. Where in $\lambda$ do the forms differ most? The knots of the piecewise-linear form are fixed,
#    while the bends of your form can move during training. Does that help here?
# 3. A form could store $\mathbf V$ as a product of two thin matrices (a low-rank form). How many
#    values would it store for $H = 5$ and rank 2? Would you expect it to lose accuracy, and why?
