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
# # Pruning: relative density and Algorithm 2
#
# A trained hypernetwork gives a posterior $q(\mathbf w \mid \lambda) = \mathcal N(\boldsymbol\mu,
# \operatorname{diag}\boldsymbol\sigma^2)$ for every λ. Algorithm 2 of {cite}`grebenkova2023` turns it into
# a small model: pick λ, generate the parameters, delete the least relevant weights, and predict with the
# mean weights of the rest. This chapter looks at the relevance criteria and at what λ does to them.
#
# ## Two criteria
# **Relative density (17).** Graves' idea: compare how likely the value 0 is under $q$ with how likely the
# mean itself is,
#
# $$
# g_{\text{var}}(w) = \frac{q(0)}{q(\mu)} = \exp\Big(-\frac{\mu^2}{2\sigma^2}\Big).
# $$
#
# If $g_{\text{var}}$ is close to 1, setting the weight to zero costs almost nothing under the
# posterior: the weight is irrelevant. Ranking by $g_{\text{var}}$ is ranking by $|\mu|/\sigma$, the
# weight's signal-to-noise ratio, and we delete the weights with the smallest ratio.
#
# **Simplified criterion (18).** A deterministic model has no σ; taking all σ equal gives
# $g_{\text{simple}}(w) = \exp(-w^2)$, i.e. ranking by magnitude $|w|$.
#
# Only weights are pruned; biases are kept (as in the authors' code). By default every weight matrix
# loses the same share of its weights (a per-layer threshold); `scope="global"` ranks all weights together.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

import varhyper_mini as vh
from varhyper_mini.prune import prunable_names

QUICK = vh.quick_mode()
N_TRAIN = vh.pick(full=20_000, quick=2_000)
EPOCHS = vh.pick(full=15, quick=2)
LAM_RANGE = (1e-3, 1e2)
LAMS = [1e-3, 1e-1, 10.0, 100.0]
FRACTIONS = vh.FRACTIONS
print(f"quick mode: {QUICK}; {N_TRAIN} training images, {EPOCHS} epochs")

# %% [markdown]
# ## One trained hypernetwork
# A variational piecewise-linear hypernetwork for the MNIST perceptron, trained with $L_1$ on a subset
# of the training set.

# %%
torch.manual_seed(0)
train_data = vh.data.mnist(train=True, subset=N_TRAIN)
test_data = vh.data.mnist(train=False)
target = vh.models.mnist_mlp()
hyper = vh.PiecewiseLinearHypernet(target, n_pieces=5, lam_range=LAM_RANGE)
history = vh.train(hyper, target, train_data, "variational", lam_prior=vh.LogUniform(*LAM_RANGE),
                   epochs=EPOCHS, seed=0, progress=False)
print(f"final epoch: cross-entropy {history.nll[-1]:.3f}, penalty {history.penalty[-1]:.3f}")

# %% [markdown]
# ## Algorithm 2, by hand and with the package
# The criterion is two lines of code; the package's `prune` does the same and also keeps the biases and
# handles both threshold scopes. We check the two against each other.

# %%
params = hyper(1.0)
name = "fc1.weight"
snr = params.mean[name].abs() / params.sigma[name]
k = round(0.7 * snr.numel())
by_hand = params.mean[name].clone().flatten()
by_hand[torch.argsort(snr.flatten(), stable=True)[:k]] = 0.0
pruned = vh.prune(params, 0.7, criterion="var", scope="layer")
assert torch.allclose(by_hand.view_as(snr), pruned.mean[name])
assert int((pruned.mean[name] == 0).sum()) == k
print(f"{k} of {snr.numel()} weights of {name} deleted; biases untouched:",
      torch.equal(pruned.mean["fc1.bias"], params.mean["fc1.bias"]))

# %% [markdown]
# ## How λ moves the means, the scales and the criterion
# A larger λ weighs the KL term more, pulling $q$ towards the prior $\mathcal N(0, 1)$: means shrink and
# scales grow for the weights the data do not need.

# %%
grid = np.logspace(np.log10(LAM_RANGE[0]), np.log10(LAM_RANGE[1]), 21)
rows = []
with torch.no_grad():
    for lam in grid:
        p = hyper(float(lam))
        for layer in ["fc1.weight", "fc2.weight"]:
            mu, sig = p.mean[layer], p.sigma[layer]
            rows.append({"lam": lam, "layer": layer, "mean |mu|": float(mu.abs().mean()),
                         "mean sigma": float(sig.mean()), "median |mu|/sigma": float((mu.abs() / sig).median())})
stats = pd.DataFrame(rows)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for ax, col in zip(axes, ["mean |mu|", "mean sigma", "median |mu|/sigma"]):
    for layer, g in stats.groupby("layer"):
        ax.plot(g.lam, g[col], marker="o", ms=3, label=layer)
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_title(col)
    ax.grid(alpha=0.3)
axes[0].legend()
plt.tight_layout()
plt.show()
lo, hi = stats[stats.lam == grid[0]], stats[stats.lam == grid[-1]]
glue("sigma_lo", float(lo[lo.layer == "fc1.weight"]["mean sigma"].iloc[0]), display=False)
glue("sigma_hi", float(hi[hi.layer == "fc1.weight"]["mean sigma"].iloc[0]), display=False)
glue("snr_lo", float(lo[lo.layer == "fc1.weight"]["median |mu|/sigma"].iloc[0]), display=False)
glue("snr_hi", float(hi[hi.layer == "fc1.weight"]["median |mu|/sigma"].iloc[0]), display=False)

# %% [markdown]
# In the first layer the mean σ grows from {glue:text}`sigma_lo:.3f` at λ = 10⁻³ to
# {glue:text}`sigma_hi:.3f` at λ = 100, and the median signal-to-noise ratio $|\mu|/\sigma$ falls from
# {glue:text}`snr_lo:.2f` to {glue:text}`snr_hi:.2f`.
#
# The histograms of $|\mu|/\sigma$ show the same shift: at large λ most weights pile up at small ratios,
# ready to be deleted.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
with torch.no_grad():
    for lam in LAMS:
        p = hyper(lam)
        r = torch.cat([(p.mean[n].abs() / p.sigma[n]).flatten() for n in prunable_names(p)])
        ax.hist(np.log10(r.numpy() + 1e-6), bins=80, histtype="step", lw=1.5, label=f"λ = {lam:g}", density=True)
ax.set_xlabel("log10 |μ|/σ")
ax.set_ylabel("density")
ax.legend()
plt.show()

# %% [markdown]
# ## Per-layer or global threshold
# With one global threshold the layers lose different shares of their weights: the first layer, which
# sees mostly empty border pixels, gives up more.

# %%
rows = []
with torch.no_grad():
    for lam in [1e-2, 1.0]:
        p = hyper(lam)
        for scope in ["layer", "global"]:
            for f in FRACTIONS:
                q = vh.prune(p, f, "var", scope)
                rows.append({"lam": lam, "scope": scope, "fraction": f,
                             "accuracy": vh.accuracy(target, q, test_data),
                             "fc1 deleted": float((q.mean["fc1.weight"] == 0).float().mean()),
                             "fc2 deleted": float((q.mean["fc2.weight"] == 0).float().mean())})
scopes = pd.DataFrame(rows)
display(scopes[scopes.fraction == 0.9].round(3))
fig, ax = plt.subplots(figsize=(6, 3.5))
for (lam, scope), g in scopes.groupby(["lam", "scope"]):
    ax.plot(100 * g.fraction, g.accuracy, marker="o", ls="-" if scope == "layer" else "--",
            label=f"λ = {lam:g}, {scope}")
ax.set_xlabel("% of weights deleted")
ax.set_ylabel("test accuracy")
ax.legend()
ax.grid(alpha=0.3)
plt.show()
g90 = scopes[(scopes.fraction == 0.9) & (scopes.lam == 1.0)].set_index("scope")
glue("acc90_layer", float(g90.loc["layer", "accuracy"]), display=False)
glue("acc90_global", float(g90.loc["global", "accuracy"]), display=False)
glue("fc1_share_global", 100 * float(g90.loc["global", "fc1 deleted"]), display=False)

# %% [markdown]
# At λ = 1 and 90 % deleted, the per-layer threshold keeps an accuracy of {glue:text}`acc90_layer:.3f`
# and the global one {glue:text}`acc90_global:.3f`; the global threshold deletes
# {glue:text}`fc1_share_global:.1f` % of the first layer.
#
# ## Relative density against magnitude
# For a variational model both criteria apply. Does σ help choose what to delete?

# %%
rows = []
with torch.no_grad():
    for lam in LAMS:
        p = hyper(lam)
        for crit in ["var", "simple"]:
            for f in FRACTIONS:
                rows.append({"lam": lam, "criterion": crit, "fraction": f,
                             "accuracy": vh.accuracy(target, vh.prune(p, f, crit), test_data)})
crit = pd.DataFrame(rows).pivot_table(index=["lam", "criterion"], columns="fraction", values="accuracy")
display(crit.round(3))
gain = (crit.xs("var", level="criterion") - crit.xs("simple", level="criterion"))[0.9]
glue("crit_gain_mean", 100 * float(gain.mean()), display=False)

# %% [markdown]
# At 90 % deleted, ranking by $|\mu|/\sigma$ instead of $|\mu|$ changes the accuracy by
# {glue:text}`crit_gain_mean:+.2f` points on average over the four λ.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-prune-mc
# Algorithm 2 predicts with the mean weights. Use `vh.evaluate(target, params, test_data, mc_samples=10)`
# to average predictions over posterior samples instead, with and without pruning. What happens to a
# pruned weight's σ?
# ```
#
# ```{solution-start} ex-prune-mc
# :class: dropdown
# ```
# `prune` zeroes the means and leaves σ as it was, so Monte Carlo samples of a pruned weight are still
# noise around zero. For an honest sampled prediction also set the pruned weights' σ to (nearly) zero,
# e.g. `q.log_sigma[n][q.mean[n] == 0] = -20`. With mean weights nothing changes.
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-prune-structured
# Score whole hidden neurons of `fc1` by the sum of $|\mu|/\sigma$ over their incoming weights, delete the
# lowest 50 % of neurons, and compare the accuracy with deleting 50 % of single weights.
# ```
#
# ```{solution-start} ex-prune-structured
# :class: dropdown
# ```
# `score = (p.mean["fc1.weight"].abs() / p.sigma["fc1.weight"]).sum(1)`; zero the rows of `fc1.weight`,
# the entries of `fc1.bias` and the columns of `fc2.weight` of the lowest-scoring neurons. Removing neurons
# deletes many weights at once and costs more accuracy than the same share of single weights, but it
# shrinks the matrices, which is what saves time in practice.
# ```{solution-end}
# ```
