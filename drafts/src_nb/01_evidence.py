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
# # The evidence and its lower bound
#
# Every loss in {cite}`grebenkova2023` is built from one quantity: the *evidence lower bound*
# (ELBO). This chapter derives it from the evidence, then checks the derivation numerically on a
# model where nothing has to be approximated: Bayesian linear regression. There the evidence, the
# posterior and the ELBO of any Gaussian $q$ all have closed forms, so every inequality and every
# identity below can be checked to rounding error. We also use the evidence for what it was made
# for: choosing the prior variance.

# %% [markdown]
# ## Settings
# `VARHYPER_QUICK=1` shortens the optimisation and coarsens the grid of prior variances; the code
# that runs is the same. Everything in this chapter runs in double precision (float64) because
# we compare quantities to about $10^{-6}$ and closer.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue
from sklearn.datasets import load_diabetes

import varhyper_mini as vh
from varhyper_mini import evidence as ev

torch.set_num_threads(1)  # the tensors here are tiny: one thread avoids threading overhead
STEPS = vh.pick(full=2000, quick=1000)  # gradient-ascent steps per fit
N_RANDOM_Q = vh.pick(full=2000, quick=300)  # random q's checked against the bound
GRID = vh.pick(full=41, quick=13)  # prior variances in the scan
PRIOR_VAR = 1.0  # alpha_pr of the fits below (the paper's value)
DT = torch.float64
print(f"quick mode: {vh.quick_mode()}; {STEPS} steps, {N_RANDOM_Q} random q, {GRID} prior variances")

# %% [markdown]
# ## From the evidence to the ELBO
#
# A model with parameters $\mathbf{w}\in\mathbb{R}^n$ gives the data $\mathfrak{D}$ a likelihood
# $p(\mathfrak{D}\mid\mathbf{w})$. The paper puts a Gaussian prior on the parameters, eq. (1),
#
# $$p(\mathbf{w}\mid\alpha_\text{pr}) = \mathcal{N}(\mathbf{0}, \alpha_\text{pr}\mathbf{I}),$$
#
# where $\alpha_\text{pr} > 0$ is a **variance** (the package calls it `prior_var`). The
# *evidence* of the model is the probability of the data with the parameters integrated out,
# eq. (2):
#
# $$p(\mathfrak{D}\mid\alpha_\text{pr}) = \int p(\mathfrak{D}\mid\mathbf{w})\,
#   p(\mathbf{w}\mid\alpha_\text{pr})\,d\mathbf{w}.$$
#
# It rewards a model that explains the data and penalises one that spreads its prior mass over
# parameter values the data rule out. For a neural network the integral is intractable. The
# variational approach brings in any distribution $q(\mathbf{w})$ whose support covers the
# prior's and writes the integral as an expectation under $q$:
#
# $$\log p(\mathfrak{D}\mid\alpha_\text{pr})
#   = \log \mathbb{E}_{q}\!\left[\frac{p(\mathfrak{D}\mid\mathbf{w})\,p(\mathbf{w}\mid\alpha_\text{pr})}{q(\mathbf{w})}\right]
#   \;\ge\; \mathbb{E}_{q}\!\left[\log\frac{p(\mathfrak{D}\mid\mathbf{w})\,p(\mathbf{w}\mid\alpha_\text{pr})}{q(\mathbf{w})}\right].$$
#
# The inequality is Jensen's: $\log$ is concave, so the log of a mean is at least the mean of
# the log. Splitting the logarithm gives the paper's eq. (3), the ELBO:
#
# $$\log p(\mathfrak{D}\mid\alpha_\text{pr}) \;\ge\;
#   \operatorname{ELBO}(q) = \mathbb{E}_{q}\log p(\mathfrak{D}\mid\mathbf{w})
#   - \KL\big(q(\mathbf{w})\,\|\,p(\mathbf{w}\mid\alpha_\text{pr})\big).$$
#
# (The paper's extracted text lost the minus sign in front of the KL term; the bound above is
# the standard one.) The first term rewards fitting the data; the second charges $q$ for
# moving away from the prior, which is why the paper reads it as a *complexity* term.
#
# How loose is the bound? Bayes' rule, $p(\mathfrak{D}\mid\mathbf{w})\,p(\mathbf{w}\mid\alpha_\text{pr})
# = p(\mathbf{w}\mid\mathfrak{D},\alpha_\text{pr})\,p(\mathfrak{D}\mid\alpha_\text{pr})$, turns the
# expectation inside the ELBO into an exact identity:
#
# $$\log p(\mathfrak{D}\mid\alpha_\text{pr}) - \operatorname{ELBO}(q)
#   = \KL\big(q(\mathbf{w})\,\|\,p(\mathbf{w}\mid\mathfrak{D},\alpha_\text{pr})\big) \;\ge\; 0.$$
#
# So maximising the ELBO over $q$ is the same as moving $q$ towards the posterior, and the bound
# is tight exactly when $q$ *is* the posterior. If the family of $q$ cannot represent the
# posterior, the gap that remains is the KL divergence from the best member of the family to the
# posterior. The rest of the chapter checks these three statements numerically.

# %% [markdown]
# ## A model where everything is exact
#
# Take linear regression with known noise variance $s^2$:
# $y = \mathbf{x}^\top\mathbf{w} + \varepsilon$, $\varepsilon\sim\mathcal{N}(0, s^2)$, and the prior
# above. With the design matrix $\mathbf{X}$ ($m\times n$) and targets $\mathbf{y}$:
#
# - **evidence**: $\mathbf{y}$ is Gaussian, $\mathbf{y}\sim\mathcal{N}(\mathbf{0},\,
#   \alpha_\text{pr}\mathbf{X}\mathbf{X}^\top + s^2\mathbf{I})$, so $\log p(\mathfrak{D}\mid\alpha_\text{pr})$
#   is one Gaussian log density;
# - **posterior**: $\mathcal{N}(\mathbf{m},\boldsymbol\Sigma)$ with
#   $\boldsymbol\Sigma^{-1} = \mathbf{X}^\top\mathbf{X}/s^2 + \mathbf{I}/\alpha_\text{pr}$ and
#   $\mathbf{m} = \boldsymbol\Sigma\mathbf{X}^\top\mathbf{y}/s^2$;
# - **ELBO** of $q = \mathcal{N}(\boldsymbol\mu, \mathbf{S})$: the expected log-likelihood is
#   $-\tfrac{m}{2}\log(2\pi s^2) - \big(\lVert\mathbf{y}-\mathbf{X}\boldsymbol\mu\rVert^2
#   + \operatorname{tr}(\mathbf{X}^\top\mathbf{X}\mathbf{S})\big)/(2s^2)$, and the KL divergence
#   between two Gaussians has its usual closed form.
#
# Because the ELBO is an explicit function of $(\boldsymbol\mu, \mathbf{S})$, gradient ascent on
# it uses exact gradients: no Monte Carlo noise. The package module `varhyper_mini.evidence`
# implements all of this (`BayesianLinearRegression`, `elbo`, `kl_gaussian`, `fit_full_cov`,
# `fit_mean_field`).
#
# The data are scikit-learn's diabetes set, which ships with the library: 442 patients, 10
# baseline measurements (age, sex, body-mass index, blood pressure and six blood-serum values),
# and a measure of disease progression one year later as the target. We standardise the
# features and the target, and fix the noise variance at the residual variance of least squares;
# from then on it is treated as known.

# %%
raw = load_diabetes()
x = torch.tensor(raw.data, dtype=DT)
y = torch.tensor(raw.target, dtype=DT)
x = (x - x.mean(0)) / x.std(0)
y = (y - y.mean()) / y.std()
w_ls = torch.linalg.lstsq(x, y.unsqueeze(-1)).solution.squeeze(-1)
resid = y - x @ w_ls
NOISE_VAR = float(resid @ resid / (len(y) - x.shape[1]))
model = ev.BayesianLinearRegression(x, y, noise_var=NOISE_VAR, prior_var=PRIOR_VAR)
log_ev = float(model.log_evidence())
print(f"m = {model.n} examples, n = {model.dim} weights, noise variance s^2 = {NOISE_VAR:.4f}")
print(f"log evidence at alpha_pr = {PRIOR_VAR}: {log_ev:.6f}")
print(f"the same from Bayes' rule at w = m:  {float(model.log_evidence_via_posterior()):.6f}")
glue("ev_noise_var", NOISE_VAR, display=False)
glue("ev_log_ev", log_ev, display=False)
glue("ev_log_ev_check", abs(log_ev - float(model.log_evidence_via_posterior())), display=False)

# %% [markdown]
# The noise variance is $s^2 =$ {glue:text}`ev_noise_var:.3f` (in units of the target's
# variance). The log evidence at $\alpha_\text{pr}=1$ is {glue:text}`ev_log_ev:.4f`; computing it a
# second way, from Bayes' rule at the posterior mean, agrees to {glue:text}`ev_log_ev_check:.1e`.
#
# ## The bound holds for every $q$
#
# First the inequality, with no optimisation at all: random Gaussians $q$, some far from the
# posterior and some close to it (the posterior with its mean and covariance perturbed by a
# factor $\varepsilon$ between $10^{-6}$ and $1$). For each we compute the gap
# $\log p(\mathfrak{D}) - \operatorname{ELBO}(q)$ and, separately, $\KL(q\,\|\,\text{posterior})$.

# %%
gen = torch.Generator().manual_seed(0)
post = model.posterior()
post_chol = torch.linalg.cholesky(post.cov)
rows = []
for i in range(N_RANDOM_Q):
    if i % 2 == 0:  # an arbitrary Gaussian
        q = ev.random_gaussian(model.dim, gen)
        kind = "random"
    else:  # the posterior, perturbed by a factor eps
        eps = 10 ** (-6 * torch.rand((), generator=gen, dtype=DT))
        a = torch.eye(model.dim, dtype=DT) + eps * torch.randn(model.dim, model.dim, generator=gen, dtype=DT) / 4
        chol = post_chol @ a
        mean = post.mean + eps * (post_chol @ torch.randn(model.dim, generator=gen, dtype=DT))
        q = ev.FullGaussian(mean, chol @ chol.T)
        kind = "near the posterior"
    gap = log_ev - float(ev.elbo(q, model))
    kl = float(ev.kl_gaussian(q, post))
    rows.append({"kind": kind, "gap": gap, "kl": kl, "rel_diff": abs(gap - kl) / kl})
checks = pd.DataFrame(rows)
display(
    checks.groupby("kind").agg(
        n=("gap", "size"), smallest_gap=("gap", "min"), largest_gap=("gap", "max"), largest_rel_diff=("rel_diff", "max")
    )
)
glue("ev_n_random", len(checks), display=False)
glue("ev_min_gap", float(checks.gap.min()), display=False)
glue("ev_n_positive", int((checks.gap > 0).sum()), display=False)
glue(
    "ev_bound_verdict",
    "no ELBO exceeded the log evidence"
    if bool((checks.gap > 0).all())
    else f"the others are within {float(-checks.gap.min()):.1e} of zero, rounding error",
    display=False,
)
glue("ev_max_rel_identity", float(checks.rel_diff[checks.kind == "random"].max()), display=False)

fig, ax = plt.subplots(figsize=(5, 3.5))
for kind, grp in checks.groupby("kind"):
    ax.loglog(grp.kl, grp.gap, ".", ms=3, label=kind)
lim = [checks.kl.min(), checks.kl.max()]
ax.plot(lim, lim, "k-", lw=0.7, label="gap = KL")
ax.set_xlabel(r"KL($q\,\|\,$posterior)")
ax.set_ylabel(r"log evidence $-$ ELBO($q$)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Of the {glue:text}`ev_n_random` gaps, {glue:text}`ev_n_positive` are positive (the smallest is
# {glue:text}`ev_min_gap:.2e`): {glue:text}`ev_bound_verdict`. For the arbitrary $q$'s the gap equals
# $\KL(q\,\|\,\text{posterior})$ to a relative {glue:text}`ev_max_rel_identity:.1e`, which is rounding
# error: the identity of the previous section holds. Close to the posterior the gap is small and
# is computed as the difference of two numbers near {glue:text}`ev_log_ev:.1f`, so its relative
# accuracy drops (the table's last column); this is cancellation in float64, not a failure of the
# identity.
#
# ## Maximising the ELBO: a full and a mean-field $q$
#
# Now we optimise $q$ by gradient ascent on the ELBO (Adam with a learning rate that decays to
# zero along a cosine). Two families:
#
# - **full covariance**: $q = \mathcal{N}(\boldsymbol\mu, \mathbf{L}\mathbf{L}^\top)$ with
#   $\mathbf{L}$ lower triangular. The posterior belongs to this family, so the gap should close.
# - **mean-field**: $q = \mathcal{N}(\boldsymbol\mu, \operatorname{diag}\boldsymbol\sigma^2)$, the
#   family the paper uses for neural networks ($\mathbf{A}_\text{ps}^{-1} = \operatorname{diag}(\boldsymbol\alpha_\text{ps})$).
#   It cannot represent correlations between weights, so a gap should remain, equal to
#   $\KL(q\,\|\,\text{posterior})$ at its optimum.
#
# Both start from $\mathcal{N}(\mathbf{0}, 0.01\,\mathbf{I})$.

# %%
fit_full = ev.fit_full_cov(model, steps=STEPS, lr=0.05)
fit_mf = ev.fit_mean_field(model, steps=STEPS, lr=0.05)
best_mf = ev.optimal_mean_field(model)  # closed form, for comparison
table = []
for name, q in [
    ("full covariance (fitted)", fit_full.q),
    ("mean-field (fitted)", fit_mf.q),
    ("mean-field (closed-form optimum)", best_mf),
]:
    e = float(ev.elbo(q, model))
    kl = float(ev.kl_gaussian(q, post))
    table.append(
        {
            "q": name,
            "ELBO": e,
            "log evidence": log_ev,
            "gap": log_ev - e,
            "KL(q || posterior)": kl,
            "|gap - KL| / KL": abs(log_ev - e - kl) / max(kl, 1e-300),
        }
    )
table = pd.DataFrame(table).set_index("q")
display(
    table.style.format("{:.3e}", subset=["gap", "KL(q || posterior)", "|gap - KL| / KL"]).format(
        "{:.6f}", subset=["ELBO", "log evidence"]
    )
)
glue("ev_gap_full", abs(float(table["gap"].iloc[0])), display=False)
glue("ev_gap_mf", float(table["gap"].iloc[1]), display=False)
excess = max(float(fit_full.elbo_trace.max()), float(fit_mf.elbo_trace.max())) - log_ev
glue("ev_trace_excess", max(excess, 0.0), display=False)
glue("ev_kl_mf", float(table["KL(q || posterior)"].iloc[1]), display=False)
glue("ev_rel_mf", float(table["|gap - KL| / KL"].iloc[1]), display=False)
glue("ev_mf_vs_exact", float(table["ELBO"].iloc[2] - table["ELBO"].iloc[1]), display=False)

# %%
steps = np.arange(1, STEPS + 1)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
ax = axes[0]
ax.plot(steps, fit_full.elbo_trace.numpy(), label="full covariance")
ax.plot(steps, fit_mf.elbo_trace.numpy(), label="mean-field")
ax.axhline(log_ev, color="k", ls="--", lw=1, label="log evidence")
ax.set_ylim(log_ev - 60, log_ev + 10)
ax.set_xscale("log")
ax.set_xlabel("optimisation step")
ax.set_ylabel("ELBO")
ax.legend(fontsize=8)
ax = axes[1]
# Gaps at rounding level can come out as tiny negative numbers; clip them for the log axis.
ax.loglog(steps, np.clip(log_ev - fit_full.elbo_trace.numpy(), 1e-13, None), label="full covariance")
ax.loglog(steps, np.clip(log_ev - fit_mf.elbo_trace.numpy(), 1e-13, None), label="mean-field")
ax.axhline(float(ev.kl_gaussian(best_mf, post)), color="C1", ls=":", lw=1, label="KL(best mean-field q || posterior)")
ax.set_xlabel("optimisation step")
ax.set_ylabel("log evidence $-$ ELBO (clipped at $10^{-13}$)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The ELBO of both fits rises towards the log evidence and never exceeds it by more than rounding
# error (the largest excess over all steps is {glue:text}`ev_trace_excess:.1e` nats). The
# full-covariance fit closes the gap to within {glue:text}`ev_gap_full:.1e` nats: its optimum is the posterior, and the
# ELBO there *is* the log evidence. The mean-field fit stops {glue:text}`ev_gap_mf:.4f` nats short,
# and that gap equals $\KL(q\,\|\,\text{posterior}) =$ {glue:text}`ev_kl_mf:.4f` to a relative
# {glue:text}`ev_rel_mf:.1e`. The fitted mean-field $q$ is also the exact mean-field optimum
# (its ELBO is below the closed-form optimum's by {glue:text}`ev_mf_vs_exact:.1e`); that optimum has
# the posterior mean and variances $\sigma_i^2 = 1/(\boldsymbol\Sigma^{-1})_{ii}$ (exercise 1).
#
# Where does the mean-field gap come from? From the correlations of the posterior, which a
# diagonal $q$ cannot express. The diabetes serum measurements are strongly correlated, and so
# are the weights that multiply them:

# %%
post_sd = post.cov.diagonal().sqrt()
corr = post.cov / torch.outer(post_sd, post_sd)
off = corr - torch.eye(model.dim, dtype=DT)
i, j = divmod(int(off.abs().argmax()), model.dim)
names = raw.feature_names
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
im = axes[0].imshow(corr.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].set_xticks(range(model.dim), names, rotation=90, fontsize=8)
axes[0].set_yticks(range(model.dim), names, fontsize=8)
axes[0].set_title("posterior correlation of the weights", fontsize=10)
fig.colorbar(im, ax=axes[0])
xs = np.arange(model.dim)
axes[1].bar(xs - 0.2, post_sd.numpy(), 0.4, label="posterior marginal sd")
axes[1].bar(xs + 0.2, fit_mf.q.cov.diagonal().sqrt().numpy(), 0.4, label="mean-field sd")
axes[1].set_xticks(xs, names, rotation=90, fontsize=8)
axes[1].set_ylabel("standard deviation")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
glue("ev_max_corr", float(corr[i, j]), display=False)
glue("ev_corr_pair", f"{names[i]} and {names[j]}", display=False)
glue("ev_sd_ratio", float((post_sd / fit_mf.q.cov.diagonal().sqrt()).max()), display=False)

# %% [markdown]
# The strongest correlation, between the weights of {glue:text}`ev_corr_pair`, is
# {glue:text}`ev_max_corr:.2f`. The mean-field $q$ matches each weight's *conditional* spread rather
# than its marginal spread, so it underestimates the uncertainty of correlated weights (by up to
# a factor {glue:text}`ev_sd_ratio:.1f` here). This is the price the paper pays for a diagonal
# covariance on a network with tens of thousands of weights, and it is why the ELBO it
# optimises is a strict lower bound.
#
# ## Choosing $\alpha_\text{pr}$ by the evidence
#
# The evidence is a function of the prior variance, so it can choose it: the best
# $\alpha_\text{pr}$ maximises $\log p(\mathfrak{D}\mid\alpha_\text{pr})$. Too small a variance
# pins the weights near zero and the model cannot fit; too large a variance spreads the prior
# over weights the data rule out, and the evidence pays for that spread (the "Occam factor").
# Below, the exact log evidence and the optimised ELBOs of both families are scanned over a grid
# of $\alpha_\text{pr}$; all the fits run at once, as one batch.

# %%
prior_vars = np.logspace(-3, 2, GRID)
scan = ev.sweep_prior_var(model, prior_vars, steps=STEPS, lr=0.05)
best = scan.loc[scan.log_evidence.idxmax()]
best_mf_row = scan.loc[scan.elbo_mean_field.idxmax()]
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.semilogx(scan.prior_var, scan.log_evidence, "k-", lw=2, label="exact log evidence")
ax.semilogx(scan.prior_var, scan.elbo_full, "C0--", label="ELBO, full covariance (optimised)")
ax.semilogx(scan.prior_var, scan.elbo_mean_field, "C1-", marker=".", label="ELBO, mean-field (optimised)")
ax.plot(
    best.prior_var, best.log_evidence, "k*", ms=14, label=rf"evidence maximum, $\alpha_{{pr}}$={best.prior_var:.3g}"
)
ax.plot(
    best_mf_row.prior_var,
    best_mf_row.elbo_mean_field,
    "C1*",
    ms=14,
    label=rf"mean-field maximum, $\alpha_{{pr}}$={best_mf_row.prior_var:.3g}",
)
ax.set_ylim(scan.log_evidence.max() - 50, scan.log_evidence.max() + 5)
ax.set_xlabel(r"prior variance $\alpha_\mathrm{pr}$")
ax.set_ylabel("nats")
ax.legend(fontsize=8)
plt.show()
display(
    scan.iloc[:: max(1, GRID // 8)]
    .style.format("{:.4g}", subset=["prior_var"])
    .format(
        "{:.4f}", subset=["log_evidence", "elbo_full", "elbo_mean_field", "elbo_mean_field_exact", "gap_mean_field"]
    )
)
glue("ev_best_alpha", float(best.prior_var), display=False)
glue("ev_best_alpha_mf", float(best_mf_row.prior_var), display=False)
glue(
    "ev_mf_moved",
    "the same grid point as the evidence"
    if best_mf_row.prior_var == best.prior_var
    else f"{abs(math.log10(best_mf_row.prior_var / best.prior_var)):.2f} decades away from the evidence's choice",
    display=False,
)
glue("ev_scan_full_gap", float((scan.log_evidence - scan.elbo_full).abs().max()), display=False)
glue("ev_gain_vs_one", float(best.log_evidence - log_ev), display=False)
glue("ev_gap_small", float(scan.gap_mean_field.iloc[0]), display=False)
glue("ev_gap_large", float(scan.gap_mean_field.iloc[-1]), display=False)

# %% [markdown]
# The exact log evidence peaks at $\alpha_\text{pr} \approx$ {glue:text}`ev_best_alpha:.3g` (on this
# grid), {glue:text}`ev_gain_vs_one:.2f` nats above its value at the paper's $\alpha_\text{pr}=1$.
# The optimised full-covariance ELBO lies on top of the evidence over the whole scan (largest
# difference {glue:text}`ev_scan_full_gap:.1e`), so maximising it chooses the same prior. The
# mean-field ELBO lies below, and its gap is not constant: it grows from
# {glue:text}`ev_gap_small:.2f` nats at the smallest prior variance to {glue:text}`ev_gap_large:.2f` nats
# at the largest. The posterior precision is $\mathbf{X}^\top\mathbf{X}/s^2 + \mathbf{I}/\alpha_\text{pr}$:
# a small prior variance makes its diagonal part dominate, so the posterior is closer to
# mean-field; a large one leaves the correlated $\mathbf{X}^\top\mathbf{X}$ in charge. A gap that depends on $\alpha_\text{pr}$ can move the maximum;
# here the mean-field ELBO peaks at $\alpha_\text{pr} \approx$ {glue:text}`ev_best_alpha_mf:.3g`,
# {glue:text}`ev_mf_moved`.
#
# The paper keeps $\alpha_\text{pr} = 1$ fixed and controls complexity in another way: a
# coefficient $\lambda$ in front of the KL term. The next chapter defines those losses and shows
# how they relate to the ELBO we have just checked.

# %% tags=["remove-cell"]
# Numbers quoted in the exercise solutions.
_, _, vt = torch.linalg.svd(x, full_matrices=False)
rotated = ev.BayesianLinearRegression(x @ vt.T, y, NOISE_VAR, PRIOR_VAR)
fit_rot = ev.fit_mean_field(rotated, steps=STEPS, lr=0.05)
glue("ev_ex_rot_ev", abs(float(rotated.log_evidence()) - log_ev), display=False)
glue("ev_ex_rot_gap", abs(float(rotated.log_evidence() - ev.elbo(fit_rot.q, rotated))), display=False)
noise_grid = NOISE_VAR * np.logspace(-0.5, 0.5, 21)
pv_t = torch.tensor(prior_vars, dtype=DT)
grid = torch.stack([ev.BayesianLinearRegression(x, y, s2, pv_t).log_evidence() for s2 in noise_grid])
k = int(grid.argmax())
glue("ev_ex_best_noise", float(noise_grid[k // len(prior_vars)]), display=False)
glue("ev_ex_best_noise_alpha", float(prior_vars[k % len(prior_vars)]), display=False)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-ev-meanfield
# Show that the ELBO over mean-field Gaussians $q=\mathcal{N}(\boldsymbol\mu,\operatorname{diag}\boldsymbol\sigma^2)$
# is maximised at $\boldsymbol\mu = \mathbf{m}$ (the posterior mean) and
# $\sigma_i^2 = 1/(\boldsymbol\Sigma^{-1})_{ii}$, and check it against `ev.optimal_mean_field(model)`
# and `fit_mf.q`.
# ```
#
# ```{solution-start} ex-ev-meanfield
# :class: dropdown
# ```
# With $\mathbf{P} = \boldsymbol\Sigma^{-1}$, the ELBO is $\log p(\mathfrak{D}) - \KL(q\,\|\,\mathcal{N}(\mathbf{m},\boldsymbol\Sigma))$,
# and for a diagonal $q$
#
# $$\KL = \tfrac12\Big[\textstyle\sum_i P_{ii}\sigma_i^2 + (\boldsymbol\mu-\mathbf{m})^\top\mathbf{P}(\boldsymbol\mu-\mathbf{m})
#   - n + \log\det\boldsymbol\Sigma - \sum_i\log\sigma_i^2\Big].$$
#
# The quadratic term is minimised at $\boldsymbol\mu=\mathbf{m}$ (it is zero there and $\mathbf{P}$ is
# positive definite). Each $\sigma_i^2$ appears in $\tfrac12(P_{ii}\sigma_i^2 - \log\sigma_i^2)$, whose
# derivative vanishes at $\sigma_i^2 = 1/P_{ii}$. The check:
# `torch.allclose(fit_mf.q.cov, ev.optimal_mean_field(model).cov)`. Note that
# $1/P_{ii} \le \Sigma_{ii}$: the conditional variance is never larger than the marginal one,
# which is the underestimate seen in the bar chart.
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-ev-whiten
# Replace the features by their principal components (`x @ V` with `V` the right singular
# vectors of `x`). What happens to the mean-field gap, and why?
# ```
#
# ```{solution-start} ex-ev-whiten
# :class: dropdown
# ```
# With orthogonal columns $\mathbf{X}^\top\mathbf{X}$ is diagonal, so the posterior precision
# $\mathbf{X}^\top\mathbf{X}/s^2 + \mathbf{I}/\alpha_\text{pr}$ is diagonal too: the posterior *is*
# mean-field, and the gap closes: here its absolute value is {glue:text}`ev_ex_rot_gap:.1e` nats, against
# {glue:text}`ev_gap_mf:.2f` before. The evidence does not change (it moves by
# {glue:text}`ev_ex_rot_ev:.1e`), because the prior $\mathcal{N}(\mathbf{0},\alpha_\text{pr}\mathbf{I})$ is
# rotation invariant. The mean-field gap is a property of the parametrisation, not of the model:
#
# ```python
# _, _, vt = torch.linalg.svd(x, full_matrices=False)
# rotated = ev.BayesianLinearRegression(x @ vt.T, y, NOISE_VAR, PRIOR_VAR)
# fit = ev.fit_mean_field(rotated, steps=STEPS)
# print(float(rotated.log_evidence() - log_ev), float(rotated.log_evidence() - ev.elbo(fit.q, rotated)))
# ```
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-ev-noise
# The noise variance was fixed by least squares. Treat it as a second hyperparameter and maximise
# the exact log evidence over a grid of $(s^2, \alpha_\text{pr})$. Is the least-squares value
# close to the evidence's choice?
# ```
#
# ```{solution-start} ex-ev-noise
# :class: dropdown
# ```
# Loop over both grids and build `ev.BayesianLinearRegression(x, y, s2, a)` for each pair (or pass
# a tensor of prior variances for each `s2` to do a whole row at once), then take the arg-max of
# `log_evidence()`. On a grid of $s^2$ from a third to three times the least-squares value, the
# evidence picks $s^2 =$ {glue:text}`ev_ex_best_noise:.3f` (least squares: {glue:text}`ev_noise_var:.3f`)
# together with $\alpha_\text{pr} =$ {glue:text}`ev_ex_best_noise_alpha:.3g`. With $m=442$ examples and
# only $n=10$ weights, the likelihood pins the noise variance down well.
# ```{solution-end}
# ```
