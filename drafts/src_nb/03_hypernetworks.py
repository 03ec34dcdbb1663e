# %% tags=["remove-input"]
# Setup: install varhyper_mini when it is not importable (for example in Google Colab).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("varhyper_mini") is None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "varhyper_mini @ git+https://github.com/varhyper-book/varhyper-mini@v0.1.0",
        ],
        check=True,
    )

# %% [markdown]
# # Hypernetworks: one model for every $\lambda$
#
# The losses of the previous chapter have one optimum per value of $\lambda$: a model
# $G_1(\lambda) = \arg\min_q L_1(\lambda)$ for each $\lambda$ (eqs. (9)-(11) of
# {cite}`grebenkova2023`). Training one model per value is expensive, and it only covers the
# values one trained for. The paper instead trains a *hypernetwork*: a function $G$ from the
# complexity value $\lambda$ to a complete set of model parameters, fitted once, for all
# $\lambda$ in a range $\Lambda$ at the same time. This chapter builds the paper's two simple
# forms, the linear (12) and the piecewise-linear (13) hypernetwork, writes its training
# procedure (Algorithm 1) as code, and trains every form with every loss on the Wine data, next
# to models trained directly at fixed $\lambda$.

# %% [markdown]
# ## Settings
# `VARHYPER_QUICK=1` uses larger batches and fewer epochs and a coarser evaluation grid; the code
# that runs is the same. The paper trains on Wine with batches of one example for 200 epochs at
# learning rate $5\cdot10^{-4}$ (28 400 steps per model). We use batches of 16 (32 in quick mode)
# and a larger learning rate, so that each model needs about 1 800 steps (300 in quick mode).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from myst_nb import glue

import varhyper_mini as vh

torch.set_num_threads(1)  # small models: one thread avoids threading overhead
LAM_RANGE = (1e2, 1e6)  # the paper's Lambda for Wine
EPOCHS = vh.pick(full=200, quick=60)
BATCH = vh.pick(full=16, quick=32)
LR = vh.pick(full=5e-3, quick=2e-2)
N_PIECES = 5  # regions of the piecewise-linear form (6 stored knots)
DIRECT_LAMS = [1e2, 1e3, 1e4, 1e5, 1e6]  # the paper's grid for directly trained models
EVAL_LAMS = np.logspace(2, 6, vh.pick(full=41, quick=17))
SEED = 0
print(f"quick mode: {vh.quick_mode()}; {EPOCHS} epochs, batch {BATCH}, lr {LR}")
glue("hn_epochs", EPOCHS, display=False)

# %% [markdown]
# ## From $\lambda$ to parameters
#
# A variational model with $n$ parameters has $2n$ numbers: a mean and a log standard deviation
# per weight (the package stores $\log\sigma$, see the reproduction notes). A hypernetwork maps
# one number, $\lambda$, to these $2n$ numbers. The paper's two forms are deliberately small:
#
# - **linear**, eq. (12): $G(\lambda) = \lambda\,\mathbf{b}_1 + \mathbf{b}_2$;
# - **piecewise linear**, eq. (13): $G$ is continuous, linear on each of $N$ regions
#   $[t_i, t_{i+1}]$, and fixed by its values $\mathbf{b}(t_i)$ at the $N+1$ knots.
#
# Both are applied not to $\lambda$ itself but to its normalised logarithm, as in the authors'
# code:
#
# $$u = \frac{\ln\lambda - \ln\lambda_\text{lo}}{\ln\lambda_\text{hi} - \ln\lambda_\text{lo}} \in [0, 1]
#   \quad\text{for}\quad \lambda\in\Lambda = [\lambda_\text{lo}, \lambda_\text{hi}].$$
#
# On $\Lambda = [10^2, 10^6]$ a linear map in $\lambda$ would spend almost all of its range on the
# top decade; in $u$ each decade gets the same share. The package stores the linear form by its
# two end points, $G(u) = (1-u)\,\mathbf{B} + u\,\mathbf{A}$, the same family as
# $u\,\mathbf{b}_1 + \mathbf{b}_2$ with $\mathbf{b}_1 = \mathbf{A}-\mathbf{B}$, $\mathbf{b}_2 = \mathbf{B}$;
# the piecewise form puts its knots at $u = i/N$. Both forms compute $G(u) = \mathbf{W}(u)\,\mathbf{K}$,
# with $\mathbf{K}$ the stored vectors (one per row) and $\mathbf{W}(u)$ the interpolation weights.
# A directly trained model is the constant form (`ConstantHypernet`): one stored vector, the
# same for every $\lambda$.

# %%
train_data, test_data = vh.data.wine()
target = vh.models.wine_logreg()
forms = {
    "constant (direct)": vh.ConstantHypernet(target, lam_range=LAM_RANGE),
    "linear (12)": vh.LinearHypernet(target, lam_range=LAM_RANGE),
    f"piecewise (13), N={N_PIECES}": vh.PiecewiseLinearHypernet(target, n_pieces=N_PIECES, lam_range=LAM_RANGE),
}
for name, h in forms.items():
    print(f"{name:28s} {h}")

lams_plot = np.logspace(2, 6, 400)
u_plot = forms["linear (12)"].encode_batch(torch.tensor(lams_plot))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), sharey=True)
for ax, key in zip(axes, ["linear (12)", f"piecewise (13), N={N_PIECES}"]):
    weights = forms[key].knot_weights(u_plot.float())
    for j in range(weights.shape[1]):
        ax.semilogx(lams_plot, weights[:, j].numpy(), label=f"stored vector {j}")
    ax.set_title(key, fontsize=10)
    ax.set_xlabel(r"$\lambda$")
    ax.legend(fontsize=7, loc="center right")
axes[0].set_ylabel(r"interpolation weight $W_j(u(\lambda))$")
fig.tight_layout()
plt.show()

# %% [markdown]
# Each curve is the weight with which one stored vector enters $G(\lambda)$. For the linear form
# the two weights are straight lines in $\log\lambda$; for the piecewise form they are "hat"
# functions, so at any $\lambda$ at most two neighbouring knots are mixed. Every stored vector
# starts at the target module's initial parameters (and $\log\sigma = -3$), so before training all
# three forms give the same model at every $\lambda$.
#
# ## The prior over $\lambda$
#
# Training draws $\lambda$ at random: $\log\lambda \sim \mathcal{U}[\ln\lambda_\text{lo}, \ln\lambda_\text{hi}]$
# (`vh.LogUniform`), which is the same as $u\sim\mathcal{U}[0,1]$.

# %%
prior = vh.LogUniform(*LAM_RANGE)
draws = prior.sample(20_000, torch.Generator().manual_seed(0)).double()
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].hist(draws.numpy(), bins=np.logspace(2, 6, 41), color="C0")
axes[0].set_xscale("log")
axes[0].set_xlabel(r"sampled $\lambda$ (log axis)")
axes[0].set_ylabel("count")
axes[1].hist(forms["linear (12)"].encode_batch(draws).numpy(), bins=40, color="C1")
axes[1].set_xlabel(r"its encoding $u$")
fig.tight_layout()
plt.show()
top_decade_log = float((draws > 1e5).double().mean())
glue("hn_top_decade_log", 100 * top_decade_log, display=False)
glue("hn_top_decade_uniform", 100 * (1e6 - 1e5) / (1e6 - 1e2), display=False)

# %% [markdown]
# The histogram is flat on a log axis: {glue:text}`hn_top_decade_log:.1f` % of the draws fall in the
# top decade $[10^5, 10^6]$, as they should for one decade out of four. A uniform prior on
# $\lambda$ would put {glue:text}`hn_top_decade_uniform:.1f` % of its draws there and would barely
# train the hypernetwork at small $\lambda$.
#
# ## Algorithm 1 as code
#
# Algorithm 1 of the paper trains $G$ with one loop: for every batch, draw $\log\lambda$ from the
# prior, generate the parameters $G(\lambda)$, compute the loss on the batch, and update $G$.
# Written out for one hypernetwork, it is this:


# %%
def algorithm1(hyper, target, data, loss, prior, epochs, lr, batch_size, seed=0):
    """Algorithm 1 of the paper, one lambda per batch; returns the mean loss of each epoch."""
    loss_fn = {"variational": vh.losses.variational, "covariance": vh.losses.covariance}[loss]
    opt = torch.optim.Adam(hyper.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(data), generator=gen).split(batch_size):  # 1: every batch
            lam = prior.sample(1, gen)  # 2: log lambda ~ U[ln lo, ln hi]
            params = hyper.params_batch(lam)[0]  # 3: G(lambda): means and log sigmas
            w = params.sample(gen)  # one reparametrised draw w = mu + sigma * eps
            nll = F.cross_entropy(vh.functional_forward(target, w, data.x[idx]), data.y[idx])
            value = loss_fn(nll, params, lam[0], len(data))  # 4: the loss on the batch
            opt.zero_grad()
            value.backward()  # 5: backpropagate and update G
            opt.step()
            total += float(value.detach()) * len(idx)
        history.append(total / len(data))
    return history


torch.manual_seed(SEED)
by_hand = vh.PiecewiseLinearHypernet(vh.models.wine_logreg(), n_pieces=N_PIECES, lam_range=LAM_RANGE)
hist_by_hand = algorithm1(by_hand, target, train_data, "variational", prior, EPOCHS, LR, BATCH, SEED)
acc_by_hand = {lam: vh.accuracy(target, by_hand(lam), test_data) for lam in DIRECT_LAMS}
print("mean L1 per epoch (first, last):", round(hist_by_hand[0], 3), round(hist_by_hand[-1], 3))
print("test accuracy at each lambda:", acc_by_hand)
glue("hn_hand_first", hist_by_hand[0], display=False)
glue("hn_hand_last", hist_by_hand[-1], display=False)

# %% [markdown]
# Over {glue:text}`hn_epochs` epochs the mean loss falls from {glue:text}`hn_hand_first:.4g` to
# {glue:text}`hn_hand_last:.4g`. The loss at each step is for a different $\lambda$, so this is an
# average over the prior, and it is large because on $\Lambda=[10^2,10^6]$ the KL term is
# multiplied by $\lambda/N$, up to $10^6/142$. `vh.train` is the package's version of the same loop, with three
# additions taken from the authors' code: each batch draws several $\lambda$ values (5 by default)
# and averages their losses, which evaluates the $\lambda$ samples as one vectorised batch;
# gradients are clipped by value at 1; and `vh.train_many` trains several independent models
# (for example, direct models at several $\lambda$) in one vectorised loop.
#
# ## Every form, every loss
#
# We now train, for each of the three losses, a linear and a piecewise-linear hypernetwork over
# $\Lambda = [10^2, 10^6]$, and directly trained models (the constant form) at
# $\lambda\in\{10^2,\dots,10^6\}$, with the same data order, epochs and learning rate. For $L_3$
# the hypernetworks are deterministic (`variational=False`).

# %%
LOSS_NAMES = {"variational": "L1 (variational)", "covariance": "L2 (covariance)", "base": "L3 (base)"}
hypers, directs = {}, {}
for loss in LOSS_NAMES:
    var = loss != "base"
    for form, cls, kw in [
        ("linear", vh.LinearHypernet, {}),
        ("piecewise", vh.PiecewiseLinearHypernet, {"n_pieces": N_PIECES}),
    ]:
        torch.manual_seed(SEED)
        h = cls(vh.models.wine_logreg(), lam_range=LAM_RANGE, variational=var, **kw)
        vh.train(
            h,
            target,
            train_data,
            loss=loss,
            lam_prior=prior,
            epochs=EPOCHS,
            lr=LR,
            batch_size=BATCH,
            seed=SEED,
            progress=False,
        )
        hypers[loss, form] = h
    torch.manual_seed(SEED)
    ds = [vh.ConstantHypernet(vh.models.wine_logreg(), lam_range=LAM_RANGE, variational=var) for _ in DIRECT_LAMS]
    vh.train_many(
        ds,
        target,
        train_data,
        loss=loss,
        lams=DIRECT_LAMS,
        seeds=[SEED] * len(DIRECT_LAMS),
        epochs=EPOCHS,
        lr=LR,
        batch_size=BATCH,
        progress=False,
    )
    directs[loss] = ds


def describe(params: vh.GaussianParams) -> dict:
    """Test accuracy, complexity and mean sigma of one generated model."""
    row = {"accuracy": vh.accuracy(target, params, test_data)}
    if params.variational:
        p64 = vh.GaussianParams(
            {k: v.double() for k, v in params.mean.items()}, {k: v.double() for k, v in params.log_sigma.items()}
        )
        row["complexity"] = float(p64.kl(1.0))
        row["mean sigma"] = float(torch.cat([torch.exp(v).flatten() for v in params.log_sigma.values()]).mean())
    else:
        row["complexity"] = float(params.sq_norm())
        row["mean sigma"] = float("nan")
    return row


rows = []
with torch.no_grad():
    for (loss, form), h in hypers.items():
        for lam in EVAL_LAMS:
            rows.append({"loss": loss, "form": form, "lambda": lam, **describe(h(float(lam)))})
    for loss, ds in directs.items():
        for lam, h in zip(DIRECT_LAMS, ds):
            rows.append({"loss": loss, "form": "direct", "lambda": lam, **describe(h(lam))})
results = pd.DataFrame(rows)

fig, axes = plt.subplots(3, 3, figsize=(13, 10), sharex=True)
styles = {"linear": dict(color="C0", ls="-"), "piecewise": dict(color="C1", ls="-")}
for r, loss in enumerate(LOSS_NAMES):
    sub = results[results.loss == loss]
    for c, col in enumerate(["accuracy", "complexity", "mean sigma"]):
        ax = axes[r, c]
        if col == "mean sigma" and loss == "base":
            ax.text(0.5, 0.5, "deterministic model:\nno $\\sigma$", ha="center", va="center", transform=ax.transAxes)
            ax.set_xscale("log")
            continue
        for form, st in styles.items():
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
        ax.set_ylabel(f"{LOSS_NAMES[loss]}\n{ylabel}" if c == 0 else ylabel)
        if r == 2 or (r == 1 and col == "mean sigma"):
            ax.set_xlabel(r"$\lambda$")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Each row is one loss; the lines are the models that one trained hypernetwork generates as
# $\lambda$ sweeps $\Lambda$, the squares are separately trained models. The table below gives
# the gap between the two at the five $\lambda$ of the direct models: the mean absolute
# difference in test accuracy and, for the variational losses, the paper's symmetrised KL
# divergence $D(q_1,q_2) = \KL(q_1\|q_2) + \KL(q_2\|q_1)$ between the generated and the directly
# trained posterior (`vh.theory.sym_kl`), averaged over the five $\lambda$.

# %%
gap_rows = []
with torch.no_grad():
    for (loss, form), h in hypers.items():
        accs, skl = [], []
        for lam, d in zip(DIRECT_LAMS, directs[loss]):
            q_h, q_d = h(lam), d(lam)
            accs.append(abs(vh.accuracy(target, q_h, test_data) - vh.accuracy(target, q_d, test_data)))
            if q_h.variational:
                skl.append(float(vh.theory.sym_kl(q_h, q_d)))
        gap_rows.append(
            {
                "loss": LOSS_NAMES[loss],
                "form": form,
                "mean |accuracy difference|": np.mean(accs),
                "mean symmetrised KL": np.mean(skl) if skl else float("nan"),
            }
        )
gaps = pd.DataFrame(gap_rows).set_index(["loss", "form"])
display(gaps.style.format("{:.3f}", na_rep="-"))

hn = results[results.form != "direct"]
l1 = hn[hn.loss == "variational"]
l2 = hn[hn.loss == "covariance"]
glue("hn_l1_acc_lo", float(l1[l1.form == "piecewise"].accuracy.iloc[0]), display=False)
glue("hn_l1_acc_hi", float(l1[l1.form == "piecewise"].accuracy.iloc[-1]), display=False)
l1_pw = l1[l1.form == "piecewise"]
l1_direct = results[(results.form == "direct") & (results.loss == "variational")]
glue("hn_l1_kl_lo", float(l1_pw.complexity.iloc[0]), display=False)
glue("hn_l1_kl_hi", float(l1_pw.complexity.iloc[-1]), display=False)
glue("hn_l1_kl_lin_lo", float(l1[l1.form == "linear"].complexity.iloc[0]), display=False)
glue("hn_l1_kl_direct_lo", float(l1_direct.complexity.iloc[0]), display=False)
glue("hn_l1_kl_direct_hi", float(l1_direct.complexity.iloc[-1]), display=False)
glue("hn_l1_sigma_hi", float(l1[l1.form == "piecewise"]["mean sigma"].iloc[-1]), display=False)
glue("hn_l2_sigma_hi", float(l2[l2.form == "piecewise"]["mean sigma"].iloc[-1]), display=False)
skl_l1 = gaps.loc[LOSS_NAMES["variational"], "mean symmetrised KL"]
glue("hn_skl_l1_linear", float(skl_l1["linear"]), display=False)
glue("hn_skl_l1_piecewise", float(skl_l1["piecewise"]), display=False)
closer = "closer to" if skl_l1["piecewise"] < skl_l1["linear"] else "not closer to"
glue("hn_piecewise_closer", closer, display=False)

# %% [markdown]
# What the figure shows:
#
# - **One training run gives a whole family.** For $L_1$, the piecewise hypernetwork's models
#   range from test accuracy {glue:text}`hn_l1_acc_lo:.2f` at $\lambda = 10^2$ to
#   {glue:text}`hn_l1_acc_hi:.2f` at $\lambda = 10^6$, and their KL divergence from the prior
#   goes from {glue:text}`hn_l1_kl_lo:.3g` to {glue:text}`hn_l1_kl_hi:.3g` nats (the direct models: from
#   {glue:text}`hn_l1_kl_direct_lo:.3g` to {glue:text}`hn_l1_kl_direct_hi:.3g`).
# - **The losses use the variances differently** (eq. (8) of the previous chapter): at
#   $\lambda = 10^6$ the mean $\sigma$ of the piecewise $L_1$ family is
#   {glue:text}`hn_l1_sigma_hi:.3f` and that of the $L_2$ family {glue:text}`hn_l2_sigma_hi:.4f`. Both
#   started at $e^{-3}\approx 0.050$: $L_1$ pushes $\sigma$ up towards the prior's 1, $L_2$ pulls it
#   down towards $\sqrt{\alpha_\text{pr}/\lambda} = 10^{-3}$.
# - **Linear against piecewise.** With $L_1$ the piecewise-linear hypernetwork is
#   {glue:text}`hn_piecewise_closer` the direct models than the linear one in symmetrised KL
#   ({glue:text}`hn_skl_l1_piecewise:.2f` against {glue:text}`hn_skl_l1_linear:.2f`, averaged over the
#   five $\lambda$). The paper reports that the piecewise form is closer (its Figure 3); the table
#   gives the comparison for every loss in this run. A straight line in $\log\lambda$ cannot follow
#   a KL that changes by orders of magnitude within $\Lambda$: at $\lambda = 10^2$ the linear
#   $L_1$ family has a KL of {glue:text}`hn_l1_kl_lin_lo:.2g` nats, against
#   {glue:text}`hn_l1_kl_direct_lo:.2g` for the direct model there.
# - **Accuracy at the strongly regularised end is fragile.** Where the KL is close to zero the mean
#   weights are close to zero too, and the predicted class is decided by small differences
#   between the three outputs; accuracies there scatter between forms and losses (the paper
#   reports 53 % for its most regularised Wine models).
#
# ## One weight as a function of $\lambda$
#
# To see the shape of each form, we follow one weight: the mean of the weight whose directly
# trained value changes most across the five $\lambda$ (with $L_1$).

# %%
spec = vh.ParamSpec.from_module(target)


def flat_mean(params: vh.GaussianParams) -> torch.Tensor:
    return spec.flatten({k: v.detach() for k, v in params.mean.items()})


direct_means = torch.stack([flat_mean(d(lam)) for lam, d in zip(DIRECT_LAMS, directs["variational"])])
j = int((direct_means.max(0).values - direct_means.min(0).values).argmax())
name_j = f"{spec.names[0]}[{divmod(j, spec.shapes[0][1])}]" if j < spec.numels[0] else f"parameter {j}"
fig, ax = plt.subplots(figsize=(6, 3.6))
with torch.no_grad():
    for form in ("linear", "piecewise"):
        h = hypers["variational", form]
        means = h.params_batch(torch.tensor(lams_plot)).mean
        flat = spec.flatten(means, batch_dims=1)[:, j]
        ax.semilogx(lams_plot, flat.numpy(), label=f"{form} hypernetwork", **styles[form])
    knots = LAM_RANGE[0] * (LAM_RANGE[1] / LAM_RANGE[0]) ** (np.arange(N_PIECES + 1) / N_PIECES)
    for k in knots:
        ax.axvline(k, color="C1", lw=0.5, ls=":")
ax.plot(DIRECT_LAMS, direct_means[:, j].numpy(), "ks", mfc="none", label="directly trained")
ax.set_xlabel(r"$\lambda$ (dotted: the piecewise form's knots)")
ax.set_ylabel(f"mean of {name_j}")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The linear form can only draw a straight line in $\log\lambda$ through the family of optima;
# the piecewise form bends at its knots (dotted) and can follow an optimum that changes quickly
# in one part of $\Lambda$ and slowly in another.
#
# ## What each form stores
#
# The price of the piecewise form's flexibility is storage: it keeps $N+1$ copies of the model's
# $2n$ numbers. The table counts the values each form stores (`hypernet.n_stored()`) for the
# Wine model and for the paper's MNIST network, next to the cost of training and keeping $K$
# separate models, one per $\lambda$ of a grid (the paper's grids have $K=5$ for Wine and $K=6$
# for MNIST).

# %%
storage = []
for dataset, make, k in [
    ("Wine, logistic regression", vh.models.wine_logreg, 5),
    ("MNIST, 784-50-10 MLP", vh.models.mnist_mlp, 6),
]:
    t = make()
    n = vh.ParamSpec.from_module(t).total
    row = {"model": dataset, "parameters n": n}
    for label, h in [
        ("constant (one model)", vh.ConstantHypernet(t)),
        ("linear (12)", vh.LinearHypernet(t)),
        (f"piecewise (13), N={N_PIECES}", vh.PiecewiseLinearHypernet(t, n_pieces=N_PIECES)),
    ]:
        row[label] = h.n_stored()
    row["K separate models"] = k * vh.ConstantHypernet(t).n_stored()
    row["K"] = k
    storage.append(row)
storage = pd.DataFrame(storage).set_index("model")
display(storage)
glue("hn_store_pw_mnist", int(storage.iloc[1][f"piecewise (13), N={N_PIECES}"]), display=False)
glue("hn_store_k_mnist", int(storage.iloc[1]["K separate models"]), display=False)
glue("hn_store_lin_mnist", int(storage.iloc[1]["linear (12)"]), display=False)

# %% [markdown]
# For MNIST the piecewise hypernetwork stores {glue:text}`hn_store_pw_mnist` values, as many as
# $N+1 = 6$ separate models ({glue:text}`hn_store_k_mnist` for the paper's six $\lambda$), and the
# linear one {glue:text}`hn_store_lin_mnist`, as many as two. The difference is what they deliver: the
# separate models exist at six $\lambda$ only and each needs its own training run, while one run
# of a hypernetwork gives a model at every $\lambda\in\Lambda$, including values nobody trained
# for. The following chapters test how good those models are on MNIST and CIFAR-10, and how
# they behave under pruning (Algorithm 2).
#
# ## Exercises

# %% tags=["remove-cell"]
# Numbers quoted in the exercise solutions.
cifar = vh.models.cifar_cnn()
n_cifar = vh.ParamSpec.from_module(cifar).total
glue("hn_ex_cifar_n", n_cifar, display=False)
glue("hn_ex_cifar_pw", 2 * (N_PIECES + 1) * n_cifar, display=False)
glue("hn_ex_cifar_mb", 2 * (N_PIECES + 1) * n_cifar * 4 / 2**20, display=False)
del cifar

# %% [markdown]
# ```{exercise}
# :label: ex-hn-pieces
# Train piecewise hypernetworks with $N = 1, 2, 5, 10$ regions on Wine with $L_1$ and plot the
# mean symmetrised KL to the directly trained models against $N$. What does $N = 1$ correspond to?
# ```
#
# ```{solution-start} ex-hn-pieces
# :class: dropdown
# ```
# $N = 1$ has two knots at $u = 0$ and $u = 1$ and is exactly the linear form (12): the same
# interpolation weights $(1-u, u)$. Reuse the training cell with
# `vh.PiecewiseLinearHypernet(vh.models.wine_logreg(), n_pieces=N, lam_range=LAM_RANGE)` and the
# gap cell's `vh.theory.sym_kl`. More regions give the family more freedom, but each knot is
# trained only by the $\lambda$ draws that fall next to it, so with a fixed budget of epochs the
# knots of a finely divided $\Lambda$ see fewer samples each.
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-hn-cifar
# How many values does a variational piecewise hypernetwork with $N = 5$ store for the CIFAR-10
# network `vh.models.cifar_cnn()`, and how much memory is that in float32?
# ```
#
# ```{solution-start} ex-hn-cifar
# :class: dropdown
# ```
# The network has $n =$ {glue:text}`hn_ex_cifar_n` parameters. The hypernetwork stores a mean and
# a $\log\sigma$ per parameter at each of the $N+1 = 6$ knots: $2\cdot 6\cdot n =$
# {glue:text}`hn_ex_cifar_pw` values, {glue:text}`hn_ex_cifar_mb:.0f` MiB in float32. Count it with
# `sum(p.numel() for p in vh.models.cifar_cnn().parameters())` without building the hypernetwork.
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-hn-extrapolate
# Train a hypernetwork with the prior on $[10^3, 10^5]$ only and evaluate it on all of
# $[10^2, 10^6]$. What does it generate outside the training range?
# ```
#
# ```{solution-start} ex-hn-extrapolate
# :class: dropdown
# ```
# Outside $[0, 1]$ in $u$ both forms continue their end segments linearly
# (`PiecewiseLinearHypernet.knot_weights` clamps the segment index, not $u$), so the generated
# models are extrapolations that no loss evaluation ever saw. Compare them with the directly
# trained models at $10^2$ and $10^6$: no training loss was ever evaluated there, so nothing
# ties the extrapolated means and $\log\sigma$ values to an optimum. Train on the range you intend
# to use.
# ```{solution-end}
# ```
