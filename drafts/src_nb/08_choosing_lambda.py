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
# # Choosing λ: cost, selection, budgets and calibration
#
# The paper trains one hypernetwork $G(\lambda)$ and shows that it replaces a family of directly
# trained models {cite}`grebenkova2023`. It leaves two practical questions open. What does the one
# hypernetwork cost compared with the $K$ models it replaces? And once it is trained, which
# $\lambda$ should one use? This chapter goes beyond the paper and answers both on MNIST, with
# numbers:
#
# 1. **Cost.** The time to train one variational piecewise-linear hypernetwork against the time
#    to train directly optimised models at $K = 6$ and $K = 20$ values of $\lambda$, measured in one
#    run on one machine.
# 2. **The gap.** Accuracy, negative log-likelihood (NLL), calibration and the share of weights
#    that can be deleted, across $\lambda$, for the hypernetwork and the direct models.
# 3. **Selection.** Three ways to pick $\lambda$ without the test set (validation accuracy,
#    validation NLL, the evidence lower bound), judged against the test-set optimum.
# 4. **A budget.** Turning "at most this many weights" or "at least this accuracy" into a
#    $(\lambda, \text{fraction})$ pair and a ready, pruned `torch.nn` model.
#
# The reusable pieces live in `varhyper_mini.selection`.

# %% [markdown]
# ## Settings
# The cost study is read from committed results (see below). The chapter also trains one
# hypernetwork live, for the selection and budget sections: with the committed study's settings in
# full mode (about a quarter of a CPU minute), on a small subset in quick mode (`VARHYPER_QUICK=1`).
# The code is the same.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from myst_nb import glue

import varhyper_mini as vh
from varhyper_mini import selection

QUICK = vh.quick_mode()
RECOMPUTE = False  # True: rerun the cost study into results/choosing (about 3 CPU minutes)
LIVE = selection.COST_PRESETS[vh.pick(full="cpu", quick="quick")]  # the hypernetwork trained live
TOL = 0.01  # "deletable": at most one percentage point below the unpruned accuracy
torch.set_num_threads(1)
print(f"quick mode: {QUICK}; live hypernetwork: {LIVE.train_subset - LIVE.n_val} images, {LIVE.epochs} epochs")

# %% [markdown]
# ## The committed cost study and where it comes from
# `selection.run_cost_study` trains, in one process and one after another: one hypernetwork
# ($N = 5$ pieces, five $\lambda$ samples per batch, $\log\lambda$ uniform on
# $[\ln 10^{-3}, \ln 10^{2}]$, as in the MNIST study), then, for $K = 6$ and $K = 20$
# log-spaced values of $\lambda$ over the same range, $K$ directly trained variational models,
# once in a plain loop (`vh.train` per model) and once batched (`vh.train_many`). Every model has
# the same architecture (784-50-10), optimiser (Adam, learning rate $5\cdot10^{-4}$, batch 256) and
# number of epochs. It then evaluates all of them. The book's machine has two CPU cores, shared
# with the long MNIST study, so this study runs at a reduced scale, stated in its provenance:

# %%
if RECOMPUTE:
    selection.run_cost_study()
res = selection.load_choosing_results()
prov = res.provenance
cfg = prov["config"]
print(f"data: {prov['data']}")
print(f"command: {prov['command']}")
print(f"torch {prov['torch_version']}, package {prov['package_version']}, commit {prov['git_commit']}")
print(f"hardware: {prov['hardware']}")
print(f"load average at start / end: {prov['load_average_start']} / {prov['load_average_end']}")
print(f"started {prov['started']}, ended {prov['ended']}")
print(f"timing: {prov['timing']}")
glue("ch_n_fit", prov["data"]["n_fit"], display=False)
glue("ch_n_val", prov["data"]["n_val"], display=False)
glue("ch_n_test", prov["data"]["n_test"], display=False)
glue("ch_epochs", cfg["epochs"], display=False)
glue("ch_study_minutes", prov["wall_seconds"] / 60, display=False)
glue("ch_study_cpu_minutes", prov["cpu_seconds"] / 60, display=False)

# %% [markdown]
# Every model was trained on {glue:text}`ch_n_fit` MNIST images for {glue:text}`ch_epochs` epochs;
# {glue:text}`ch_n_val` further training images are held out for choosing $\lambda$ and the
# {glue:text}`ch_n_test` test images are used only to judge the choices. This is a reduced scale:
# the paper trains on all 60,000 images for 50 epochs and repeats every run five times; here every
# model is trained once, so a single direct model carries its seed's noise. The whole study took
# {glue:text}`ch_study_minutes:.1f` minutes of wall time and {glue:text}`ch_study_cpu_minutes:.1f`
# minutes of CPU time on one thread. To rerun it, set `RECOMPUTE = True` or call
# `selection.run_cost_study()`.

# %% [markdown]
# ### A live slice (quick mode)
# In quick mode the same function runs on a tiny configuration in a temporary folder (the
# committed results are never overwritten). Its numbers mean little; it shows the pipeline runs.

# %%
if QUICK:
    live_dir = Path(tempfile.mkdtemp(prefix="choosing-live-"))
    selection.run_cost_study(live_dir / "choosing", selection.COST_PRESETS["quick"])
    live = selection.load_choosing_results(live_dir)
    display(live.cost.round(3))

# %% [markdown]
# ## What one hypernetwork costs
# `seconds` is wall time, `cpu_seconds` the CPU time of the (single-threaded) process. On a busy
# machine the wall clock also counts the time spent waiting for a core, so the CPU time is the fairer
# measure of the work; we report both and quote the CPU ratios.

# %%
cost = res.cost.copy()
view = cost[
    [
        "method",
        "k_lams",
        "models",
        "seconds",
        "cpu_seconds",
        "ratio_to_hypernetwork",
        "cpu_ratio_to_hypernetwork",
        "max_accuracy_diff_loop_vs_batched",
    ]
]
display(view.round(3))
hyper_row = cost[cost.method == "hypernetwork"].iloc[0]
loop = cost[cost.method == "direct-loop"].set_index("k_lams")
many = cost[cost.method == "direct-batched"].set_index("k_lams")
per_model_cpu = (loop.cpu_seconds / loop.index).mean()
glue("ch_hyper_cpu", float(hyper_row.cpu_seconds), display=False)
glue("ch_hyper_wall", float(hyper_row.seconds), display=False)
for k in loop.index:
    glue(f"ch_loop{k}_cpu", float(loop.cpu_seconds[k]), display=False)
    glue(f"ch_loop{k}_ratio", float(loop.cpu_ratio_to_hypernetwork[k]), display=False)
    glue(f"ch_loop{k}_wall_ratio", float(loop.ratio_to_hypernetwork[k]), display=False)
    glue(f"ch_many{k}_ratio", float(many.cpu_ratio_to_hypernetwork[k]), display=False)
    glue(f"ch_many{k}_wall_ratio", float(many.ratio_to_hypernetwork[k]), display=False)
glue("ch_break_even", float(hyper_row.cpu_seconds / per_model_cpu), display=False)
glue("ch_loop_batched_diff", float(many.max_accuracy_diff_loop_vs_batched.max()), display=False)

fig, ax = plt.subplots(figsize=(6, 2.8))
labels = [m if m == "hypernetwork" else f"{m}, K = {k}" for m, k in zip(cost.method, cost.k_lams)]
ax.barh(labels, cost.cpu_seconds, color=["C0"] + ["C1"] * (len(cost) - 1))
ax.set_xlabel("CPU seconds to train")
ax.invert_yaxis()
plt.show()

# %% [markdown]
# One hypernetwork took {glue:text}`ch_hyper_cpu:.1f` CPU seconds. Six direct models trained in a
# loop took {glue:text}`ch_loop6_ratio:.2f` times as much CPU time and twenty took
# {glue:text}`ch_loop20_ratio:.2f` times as much. So one hypernetwork costs as much as about
# {glue:text}`ch_break_even:.1f` direct models, fewer than the five $\lambda$ samples it draws per
# batch suggest: the five generated models run as one vectorised batch, which shares the per-step
# overhead. Training the direct models batched with `vh.train_many` narrows the advantage: $K = 6$
# batched models cost {glue:text}`ch_many6_ratio:.2f` hypernetworks and $K = 20$ cost
# {glue:text}`ch_many20_ratio:.2f`. The batched and the looped direct models are the same models:
# their test accuracies differ by at most {glue:text}`ch_loop_batched_diff:.4f`. The wall-clock
# ratios ({glue:text}`ch_loop6_wall_ratio:.2f` and {glue:text}`ch_loop20_wall_ratio:.2f` for the loops,
# {glue:text}`ch_many6_wall_ratio:.2f` and {glue:text}`ch_many20_wall_ratio:.2f` batched) tell the same
# story; the machine had little other work during this run (see the load averages above). On a busy
# machine only the CPU times stay comparable.

# %% [markdown]
# ## How close are the hypernetwork's models to direct training?
# For each $\lambda$ the hypernetwork produces a posterior; we measure, on the test set, its accuracy,
# its NLL and its expected calibration error (ECE, 15 bins, mean weights), and the largest share of
# weights that Algorithm 2 deletes with at most one percentage point of accuracy lost
# (`selection.deletable_fraction`, to the nearest 1 %). The line is the hypernetwork, evaluated at
# every $\lambda$ of both grids; the points are the direct models.

# %%
curves = res.curves
selection.plot_gap(curves)
plt.show()
gap = selection.gap_table(curves)
display(
    gap[
        [
            "lam",
            "grids",
            "test_accuracy_hyper",
            "test_accuracy_direct",
            "test_accuracy_gap",
            "test_nll_gap",
            "test_ece_gap",
            "deletable_hyper",
            "deletable_direct",
        ]
    ].round(4)
)
low = gap[gap.lam <= 1.0 + 1e-9]
high = gap[gap.lam > 1.0 + 1e-9]
glue("ch_gap_mean", 100 * float(gap.test_accuracy_gap.mean()), display=False)
glue("ch_gap_low", 100 * float(low.test_accuracy_gap.mean()), display=False)
glue("ch_gap_high", 100 * float(high.test_accuracy_gap.mean()), display=False)
glue("ch_gap_min", 100 * float(gap.test_accuracy_gap.min()), display=False)
glue("ch_gap_max", 100 * float(gap.test_accuracy_gap.max()), display=False)
glue("ch_gap_min_lam", float(gap.lam[gap.test_accuracy_gap.idxmin()]), display=False)
glue("ch_del_direct_more", -100 * float(gap.deletable_gap.mean()), display=False)
glue("ch_nll_lower", -float(gap.test_nll_gap.mean()), display=False)
glue("ch_ece_gap_mean", float(gap.test_ece_gap.mean()), display=False)
glue("ch_n_gap", len(gap), display=False)
glue("ch_n_better", int((gap.test_accuracy_gap > 0).sum()), display=False)
glue("ch_nll_better", int((gap.test_nll_gap < 0).sum()), display=False)
dd = curves[curves.model == "direct"].deletable
glue("ch_direct_del_min", 100 * float(dd.min()), display=False)
glue("ch_direct_del_max", 100 * float(dd.max()), display=False)
hd = curves[curves.model == "hypernetwork"].deletable
glue("ch_hyper_del_min", 100 * float(hd.min()), display=False)
glue("ch_hyper_del_max", 100 * float(hd.max()), display=False)

# %% [markdown]
# Averaged over the {glue:text}`ch_n_gap` values of $\lambda$ where a direct model exists, the
# hypernetwork's test accuracy differs from the direct model's by {glue:text}`ch_gap_mean:+.2f`
# percentage points ({glue:text}`ch_gap_low:+.2f` for $\lambda \le 1$, {glue:text}`ch_gap_high:+.2f`
# above); it is higher at {glue:text}`ch_n_better` of the {glue:text}`ch_n_gap` values. The gap ranges
# from {glue:text}`ch_gap_min:+.2f` points (at $\lambda$ = {glue:text}`ch_gap_min_lam:.3g`, the
# lower end of the range) to {glue:text}`ch_gap_max:+.2f`. This agrees with the paper's claim that
# models from a hypernetwork are at least as accurate as directly trained ones {cite}`grebenkova2023`,
# here at a reduced scale. The NLL tells the same story: the hypernetwork's is lower at
# {glue:text}`ch_nll_better` of the {glue:text}`ch_n_gap` values, by {glue:text}`ch_nll_lower:.3f` nats
# on average; its ECE differs by {glue:text}`ch_ece_gap_mean:+.4f` on average (hypernetwork minus direct).
#
# Pruning is where the direct models do better: on average they can lose
# {glue:text}`ch_del_direct_more:.1f` percentage points more of their weights than the hypernetwork's
# models within one point of accuracy. Their deletable share also jumps from one $\lambda$ to the next,
# between {glue:text}`ch_direct_del_min:.0f` % and {glue:text}`ch_direct_del_max:.0f` %, while the
# hypernetwork's stays between {glue:text}`ch_hyper_del_min:.0f` % and {glue:text}`ch_hyper_del_max:.0f` %:
# a single direct model carries its own seed's noise, and the hypernetwork shares its knots
# across neighbouring values of $\lambda$.

# %% [markdown]
# ## Calibration against λ and the share deleted
# Pruning changes more than the accuracy. Below, the ECE on the test set of the hypernetwork's
# models against the share of deleted weights, one line per $\lambda$, with the mean weights (as
# the paper evaluates) and with class probabilities averaged over Monte Carlo draws from the
# posterior (`vh.predict(..., mc_samples=n)`; deleted weights stay at zero in every draw, see
# `selection.delete`).

# %%
cal = res.calibration
selection.plot_calibration(cal, "ece")
plt.show()
selection.plot_calibration(cal, "nll")
plt.show()
pivot = cal.pivot_table(index=["lam", "fraction"], columns="prediction", values=["ece", "nll", "accuracy"])
display(pivot.round(4))
c0 = cal[cal.fraction == 0]
glue("ch_ece_mean0", float(c0[c0.prediction == "mean"].ece.mean()), display=False)
glue("ch_ece_mc0", float(c0[c0.prediction == "mc"].ece.mean()), display=False)
glue("ch_mc_samples", int(cal.mc_samples.max()), display=False)
hc = curves[curves.model == "hypernetwork"]
glue("ch_ece_max_lam", float(hc.lam[hc.test_ece.idxmax()]), display=False)
glue("ch_ece_max", float(hc.test_ece.max()), display=False)
glue("ch_ece_min_lam", float(hc.lam[hc.test_ece.idxmin()]), display=False)
glue("ch_ece_min", float(hc.test_ece.min()), display=False)
c0m = c0[c0.prediction == "mean"].set_index("lam")
c0c = c0[c0.prediction == "mc"].set_index("lam")
glue("ch_mc_worse", int(((c0c.ece > c0m.ece) & (c0c.nll > c0m.nll)).sum()), display=False)
glue("ch_cal_lams", len(c0m), display=False)
c9 = cal[(cal.fraction == cal.fraction.max()) & (cal.prediction == "mean")]
glue("ch_ece_90_min", float(c9.ece.min()), display=False)
glue("ch_ece_90_max", float(c9.ece.max()), display=False)
glue("ch_frac_max", 100 * float(cal.fraction.max()), display=False)

# %% [markdown]
# With all weights kept, the mean ECE over the {glue:text}`ch_cal_lams` values of $\lambda$ is
# {glue:text}`ch_ece_mean0:.4f` with the mean weights and {glue:text}`ch_ece_mc0:.4f` with the average
# of {glue:text}`ch_mc_samples` draws. Monte Carlo averaging does not help here: it raises both the
# ECE and the NLL at {glue:text}`ch_mc_worse` of the {glue:text}`ch_cal_lams` values. The posteriors
# are far from converged at this scale (see the KL below); a likely reason is that a draw perturbs every
# weight by noise that the model has not learnt to tolerate. Across the hypernetwork's grid the ECE of the mean weights is
# lowest, {glue:text}`ch_ece_min:.4f`, at $\lambda$ = {glue:text}`ch_ece_min_lam:.3g` and highest,
# {glue:text}`ch_ece_max:.4f`, at $\lambda$ = {glue:text}`ch_ece_max_lam:.3g`. Heavy pruning ruins
# calibration whatever $\lambda$ is: with {glue:text}`ch_frac_max:.0f` % of the weights deleted the ECE
# lies between {glue:text}`ch_ece_90_min:.3f` and {glue:text}`ch_ece_90_max:.3f`.

# %% [markdown]
# ## Choosing λ without the test set
# `selection.select_lambda` sweeps $\lambda$ on one trained hypernetwork and returns the best value
# with the curve it chose from. Three criteria need no test data:
#
# - **validation accuracy** or **validation NLL** on a split carved from the training set
#   (`TensorData.split`); sweeping $\lambda$ costs one forward pass over the split per value;
# - the **evidence lower bound at $\lambda = 1$** of the produced posterior,
#   $\mathrm{ELBO}(q_\lambda) = \mathbb{E}_{q_\lambda}\log p(\mathfrak{D}\mid\mathbf{w}) - \mathrm{KL}(q_\lambda\,\|\,\mathcal{N}(0, I))$,
#   which the variational loss $L_1$ with $\lambda = 1$ bounds. We estimate the expected
#   log-likelihood on the training data with a few Monte Carlo weight draws.
#
# The committed curves hold all three for every $\lambda$; `selection.selection_table` applies each
# criterion, then looks up the test accuracy of the chosen model, the best test accuracy over the
# grid (an oracle), and the direct model trained at the chosen $\lambda$. Its last row is the
# classical recipe: train $K = 20$ direct models and keep the one with the best validation accuracy.

# %%
print(prov["elbo_estimate"])
table = selection.selection_table(curves)
display(table.round(4))
sel = table.set_index(["approach", "criterion"])
hyp = sel.loc["hypernetwork"]
for crit, key in [("accuracy", "acc"), ("nll", "nll"), ("elbo", "elbo"), ("test accuracy (oracle)", "oracle")]:
    glue(f"ch_sel_{key}_lam", float(hyp.loc[crit, "lam"]), display=False)
    glue(f"ch_sel_{key}_test", 100 * float(hyp.loc[crit, "test_accuracy"]), display=False)
    glue(f"ch_sel_{key}_regret", 100 * float(hyp.loc[crit, "regret"]), display=False)
    glue(f"ch_sel_{key}_direct", 100 * float(hyp.loc[crit, "direct_test_accuracy"]), display=False)
    glue(f"ch_sel_{key}_del", 100 * float(hyp.loc[crit, "deletable"]), display=False)
classical = table[table.approach.str.startswith("direct")].iloc[0]
glue("ch_classical_lam", float(classical.lam), display=False)
glue("ch_classical_test", 100 * float(classical.test_accuracy), display=False)
glue("ch_n_near_top", int((hc.val_accuracy >= hc.val_accuracy.max() - 0.002 - 1e-9).sum()), display=False)
glue("ch_n_grid", len(hc), display=False)
at1 = hc.iloc[(hc.lam - 1.0).abs().argmin()]
kl_init = float(vh.PiecewiseLinearHypernet(vh.models.mnist_mlp(), lam_range=tuple(cfg["lam_range"]))(1.0).kl())
glue("ch_kl_init", kl_init, display=False)
glue("ch_kl_1", float(at1.kl), display=False)
glue("ch_nll_term_1", prov["data"]["n_fit"] * float(at1.train_nll), display=False)
glue("ch_kl_elbo", float(hc.kl[hc.lam == hyp.loc["elbo", "lam"]].iloc[0]), display=False)

fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
for ax, (col, label) in zip(
    axes, [("val_accuracy", "validation accuracy"), ("val_nll", "validation NLL"), ("elbo", "ELBO at λ = 1 (nats)")]
):
    ax.plot(hc.lam, hc[col], "-o", ms=3)
    crit = {"val_accuracy": "accuracy", "val_nll": "nll", "elbo": "elbo"}[col]
    ax.axvline(hyp.loc[crit, "lam"], color="C3", ls="--", lw=1, label="chosen")
    ax.axvline(hyp.loc["test accuracy (oracle)", "lam"], color="C2", ls=":", lw=1, label="test optimum")
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_title(label, fontsize=10)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# Validation NLL comes closest: it picks $\lambda$ = {glue:text}`ch_sel_nll_lam:.3g`, whose test
# accuracy, {glue:text}`ch_sel_nll_test:.2f` %, is {glue:text}`ch_sel_nll_regret:.2f` points below the
# oracle ($\lambda$ = {glue:text}`ch_sel_oracle_lam:.3g`, {glue:text}`ch_sel_oracle_test:.2f` %).
# Validation accuracy picks $\lambda$ = {glue:text}`ch_sel_acc_lam:.3g` (regret
# {glue:text}`ch_sel_acc_regret:.2f` points): on {glue:text}`ch_n_val` images the accuracy moves in
# steps of 0.1 points and is flat near its top ({glue:text}`ch_n_near_top` of the
# {glue:text}`ch_n_grid` values lie within two images of the best), while the NLL varies smoothly. The classical recipe,
# twenty direct models with the best validation accuracy kept, reaches {glue:text}`ch_classical_test:.2f` %
# at $\lambda$ = {glue:text}`ch_classical_lam:.3g`, below the hypernetwork chosen by validation NLL,
# at {glue:text}`ch_loop20_ratio:.1f` times its CPU time. The direct model trained at the $\lambda$ that
# validation NLL picks reaches {glue:text}`ch_sel_nll_direct:.2f` %.
#
# The ELBO picks $\lambda$ = {glue:text}`ch_sel_elbo_lam:.3g` (regret {glue:text}`ch_sel_elbo_regret:.2f`
# points), a poor choice here, and the reason is the training scale, not the ELBO. At $\lambda = 1$
# the KL term is {glue:text}`ch_kl_1:.0f` nats, close to its value at initialisation
# ({glue:text}`ch_kl_init:.0f`: every $\sigma$ starts at $e^{-3}$, far below the prior's 1), while the
# likelihood term $N\cdot\mathrm{nll}$ is only {glue:text}`ch_nll_term_1:.0f`. After
# {glue:text}`ch_epochs` epochs with a learning rate of $5\cdot10^{-4}$ the standard deviations have
# barely moved, so the bound rewards whichever $\lambda$ shrinks the KL most (at the ELBO's choice it
# is {glue:text}`ch_kl_elbo:.0f`). A model trained to convergence at $\lambda = 1$ would maximise its
# own ELBO; these have not been.

# %% [markdown]
# ### The same, live, with the package
# Here the chapter trains a hypernetwork with the settings of the committed study (a small one in
# quick mode) and calls `select_lambda` with each criterion, on the committed study's grid of
# $\lambda$. In full mode it repeats the committed training run (and, with the study's seeds, the
# ELBO's Monte Carlo draws), so the cell also prints how far its curves are from the committed ones.

# %%
fit, val, test = selection.cost_data(LIVE)
hyper, target = selection.train_cost_hypernet(LIVE, fit)
grid = sorted(hc.lam)
choices = {
    "accuracy": selection.select_lambda(hyper, target, val, "accuracy", lams=grid),
    "nll": selection.select_lambda(hyper, target, val, "nll", lams=grid),
    "elbo": selection.select_lambda(
        hyper,
        target,
        None,
        "elbo",
        train_data=fit,
        lams=grid,
        elbo_samples=cfg["elbo_samples"],
        seed=selection.EVAL_SEEDS["hypernetwork"],
    ),
}
for name, s in choices.items():
    acc = vh.accuracy(target, hyper(s.best_lam), test)
    print(f"{name:>8}: λ = {s.best_lam:.3g}, test accuracy {acc:.4f}  ({s.note})")
committed = hc.sort_values("lam")
for name, col in [("nll", "val_nll"), ("elbo", "elbo")]:
    diff = abs(choices[name].curve[col].to_numpy() - committed[col].to_numpy()).max()
    print(f"largest |{col}, live - committed| over the grid: {diff:.3g}")
display(choices["nll"].curve.round(4))

# %% [markdown]
# ## Hitting a budget
# A deployment rarely asks for "the best λ"; it asks for a model that fits. `selection.fit_budget`
# takes a budget, searches $(\lambda, \text{fraction deleted})$ on the trained hypernetwork against
# the validation split, and returns a plain, pruned `torch.nn` module. Here: the smallest model
# within one point of the best validation accuracy, and the most accurate model with at most 5 % of
# the parameters non-zero.

# %%
with torch.no_grad():
    best_val = max(vh.accuracy(target, hyper(lam), val) for lam in selection.lambda_grid(hyper.lam_range, 11))
small = selection.fit_budget(hyper, target, val, min_accuracy=best_val - TOL)
n_params = small.total
tight = selection.fit_budget(hyper, target, val, max_nonzero=n_params // 20)
for name, b in [("within 1 point of the best", small), ("at most 5 % non-zero", tight)]:
    test_acc = vh.accuracy(target, dict(b.model.named_parameters()), test)
    print(
        f"{name}: λ = {b.lam:.3g}, {100 * b.fraction:.0f} % deleted, validation accuracy {b.accuracy:.4f}, "
        f"test accuracy {test_acc:.4f}, {b.nonzero} of {b.total} non-zero, compression {b.compression:.1f}x"
    )
glue("ch_budget_lam", small.lam, display=False)
glue("ch_budget_fraction", 100 * small.fraction, display=False)
glue("ch_budget_compression", small.compression, display=False)
glue("ch_budget_nonzero", small.nonzero, display=False)
glue("ch_tight_acc", tight.accuracy, display=False)
glue("ch_tight_fraction", 100 * tight.fraction, display=False)

# %% [markdown]
# The first budget is met at $\lambda$ = {glue:text}`ch_budget_lam:.3g` with
# {glue:text}`ch_budget_fraction:.0f` % of the weights deleted: {glue:text}`ch_budget_nonzero` non-zero
# parameters, {glue:text}`ch_budget_compression:.1f` times fewer than the dense model. The second shows
# what a tight budget costs: with {glue:text}`ch_tight_fraction:.0f` % deleted the best validation
# accuracy on the grid is {glue:text}`ch_tight_acc:.3f`.
#
# The chosen model is an ordinary module. `save` writes its weights as a plain state dict, which
# loads back with `torch.load(weights_only=True)` into a fresh copy of the architecture:

# %%
path = Path(tempfile.mkdtemp(prefix="budget-")) / "mnist_pruned.pt"
small.save(path)
restored = selection.load_pruned(path, vh.models.mnist_mlp())
with torch.no_grad():
    same = torch.equal(restored(test.x[:256]), small.model(test.x[:256]))
print(
    f"saved {path.stat().st_size / 1024:.0f} KiB; reloaded outputs identical: {same}; "
    f"compression {selection.compression_ratio(restored):.1f}x"
)

# %% [markdown]
# A budget that no point of the grid meets is an error that names the closest point, so one knows
# how far off it is:

# %%
try:
    selection.fit_budget(hyper, target, val, min_accuracy=0.999, max_nonzero=n_params // 100)
except ValueError as err:
    print(err)

# %% [markdown]
# ## A recipe
#
# :::{admonition} Recommendation
# :class: tip
# 1. **Train one hypernetwork** over a range of $\lambda$ that brackets every value you might want.
#    Here it cost as much CPU time as {glue:text}`ch_break_even:.1f` direct models and stood in for
#    twenty of them, which cost {glue:text}`ch_loop20_ratio:.1f` times as much in a loop and
#    {glue:text}`ch_many20_ratio:.1f` times as much batched.
# 2. **Hold out a validation split of the training data and pick $\lambda$ by validation NLL.**
#    It landed {glue:text}`ch_sel_nll_regret:.2f` points of test accuracy below the test-set optimum,
#    against {glue:text}`ch_sel_acc_regret:.2f` for validation accuracy and
#    {glue:text}`ch_sel_elbo_regret:.2f` for the ELBO. Each value of $\lambda$ costs one forward pass
#    over the split, so sweep a fine grid.
# 3. **Trust the ELBO only for a converged posterior.** Here the KL term
#    ({glue:text}`ch_kl_1:.0f` nats at $\lambda = 1$) dwarfed the likelihood term
#    ({glue:text}`ch_nll_term_1:.0f`), and the ELBO chose $\lambda$ = {glue:text}`ch_sel_elbo_lam:.3g`.
# 4. **For a deployment budget, let `fit_budget` search $(\lambda, \text{fraction})$ on the same
#    validation split**, check the chosen model once on the test set, and ship it with `save_pruned`.
#    Expect the budget to bind: the hypernetwork's models lost at most one point with
#    {glue:text}`ch_hyper_del_min:.0f` % to {glue:text}`ch_hyper_del_max:.0f` % of their weights deleted;
#    beyond that, accuracy and calibration fall quickly (ECE {glue:text}`ch_ece_90_min:.3f` or worse at
#    {glue:text}`ch_frac_max:.0f` % deleted).
# 5. **Predict with the mean weights** unless the posterior is well trained: averaging
#    {glue:text}`ch_mc_samples` draws raised the mean ECE from {glue:text}`ch_ece_mean0:.4f` to
#    {glue:text}`ch_ece_mc0:.4f` here.
# :::

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-choose-breakeven
# From `res.cost`, compute how many directly trained models cost as much CPU time as one
# hypernetwork, for the loop and for the batched direct training. How would the number change with
# `lam_samples=1`?
# ```
#
# ```{solution-start} ex-choose-breakeven
# :class: dropdown
# ```
# Divide the hypernetwork's `cpu_seconds` by the per-model CPU time of each direct row,
# `cpu_seconds / models`. Each λ sample runs the whole network on the batch, yet five samples cost far
# less than five direct models here, because they run as one vectorised batch and share the
# per-step overhead. With one sample, expect a cost close to one direct model. Measure it:
# `selection.train_cost_hypernet(dataclasses.replace(LIVE, lam_samples=1), fit)` under
# `time.process_time()`, and compare with the committed `cpu_seconds`.
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-choose-elbo
# Show that the ELBO at $\lambda = 1$ is $-N$ times the variational loss $L_1$ at $\lambda = 1$
# (up to the Monte Carlo noise of the likelihood term), and check it numerically with
# `vh.losses.variational` and `selection.elbo` on the live hypernetwork.
# ```
#
# ```{solution-start} ex-choose-elbo
# :class: dropdown
# ```
# $L_1 = \overline{\mathrm{nll}} + \lambda\,\mathrm{KL}/N$ with $\overline{\mathrm{nll}}$ the mean
# cross-entropy, so $-N L_1(\lambda = 1) = -N\,\overline{\mathrm{nll}} - \mathrm{KL}$, the ELBO.
# Numerically: `p = hyper(1.0)`; `e = selection.elbo(target, p, fit, samples=0)`; with
# `nll = F.cross_entropy(vh.functional_forward(target, p, fit.x), fit.y)`,
# `-len(fit) * vh.losses.variational(nll, p, 1.0, len(fit))` equals `e["elbo"]`.
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-choose-budget
# Use `fit_budget` with `objective="accuracy"` and `min_fraction_deleted=0.9`. Which λ does it pick,
# and how does the result compare with `scope="global"` pruning?
# ```
#
# ```{solution-start} ex-choose-budget
# :class: dropdown
# ```
# `b = selection.fit_budget(hyper, target, val, min_fraction_deleted=0.9)` returns the most accurate
# model with at least 90 % of the weights deleted; `b.lam` shows which λ wins under that constraint,
# which need not be the λ that validation NLL prefers for the dense model. With `scope="global"` one
# threshold covers both layers, so the share deleted can differ between them: compare `b.accuracy`
# and `b.nonzero` of the two fits, and the per-layer shares
# `(b.model.fc1.weight == 0).float().mean()` and `(b.model.fc2.weight == 0).float().mean()`.
# ```{solution-end}
# ```
