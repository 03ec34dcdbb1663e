"""The reproducibility report's verdicts: the paper's claims C1-C7, one row each, and the checklist.

The report (``reproducibility_report.ipynb``) gathers what chapters 04, 06 and 07 measure into one
verdict per claim: the Wine claims (Figure 3), the two MNIST claims and Table 1's numbers (section
4.2), and the five CIFAR-10 claims (section 4.4). Every number comes from the committed studies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..experiments.study import CSV_COLUMNS, summarise, wall_minutes
from ..hypernets import lambda_key
from .cifar import cifar_claims
from .mnist import authors_row, claims, closest_row, gap_table
from .rules import rule_of
from .verdicts import count_holding, table_verdict, verdict, wine_claims

__all__ = ["WHERE", "verdict_table", "claim2_split_findings", "cifar_report_findings", "report_findings", "checklist"]

# The verdict table's "where" column: each chapter by its title (a number would depend on the table of contents).
WHERE = {
    "wine": "The Theorem 2 convergence demo on Wine",
    "mnist": "The MNIST pruning study",
    "cifar": "The CIFAR-10 study",
}


def verdict_table(
    wine: pd.DataFrame,
    mnist_authors: pd.DataFrame,
    mnist_closest: pd.DataFrame,
    authors: pd.Series,
    closest: pd.Series,
    cifar_by_scope: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """One row per claim C1-C7g: what it says, the cases holding, the verdict and the chapter.

    ``wine`` is ``wine_claims``' output (C1, C2); ``mnist_authors`` and ``mnist_closest`` are
    ``claims`` under the authors' code's choices and the closest combination (C3, C4);
    ``authors`` and ``closest`` their ``gap_table`` rows (C5, C6: Table 1's numbers, judged by
    ``table_verdict``); ``cifar_by_scope`` maps "layer" and "global" to ``cifar_claims`` (C7,
    C7g). Indexed by claim; columns what, cases holding, verdict (for C3-C6 labelled "(authors'
    choices)" and "(closest)" per rule), where (the chapter's title, ``WHERE``). A case of C1 is
    one piecewise-linear form N > 1, of C2 one hypernetwork N (the linear one too), each judged
    on log10 D_KL averaged over lambda and runs (``wine_claims``). Source: Figure 3,
    Table 1 (section 4.2) and section 4.4 of the paper.

    Raises:
        KeyError: ``cifar_by_scope`` lacks a scope.
    """
    rows = []
    auth, close = "authors' choices", "closest"
    for prefix, name, text in (
        ("A", "C1", "piecewise closer than linear (Wine)"),
        ("B", "C2", "fine-tuning brings the models closer (Wine)"),
    ):
        h, n = count_holding(wine, prefix)
        rows.append({"claim": name, "what": text, "cases holding": f"{h} of {n}", "verdict": verdict(h, n),
                     "where": WHERE["wine"]})  # fmt: skip
    for prefix, name, text in (
        ("1", "C3", "hypernetwork ≥ direct at 0 % (MNIST)"),
        ("2", "C4", "L1 > L3 at 70–90 % deleted (MNIST)"),
    ):
        ha, na = count_holding(mnist_authors, prefix)
        hb, nb = count_holding(mnist_closest, prefix)
        rows.append({"claim": name, "what": text,
                     "cases holding": f"{ha} of {na} (authors' choices); {hb} of {nb} (closest)",
                     "verdict": f"{verdict(ha, na)} ({auth}); {verdict(hb, nb)} ({close})",
                     "where": WHERE["mnist"]})  # fmt: skip
    rows.append({"claim": "C5", "what": "Table 1's numbers at 0–50 % deleted",
                 "cases holding": f"mean gap {authors.gap_low:.2f} points",
                 "verdict": f"{table_verdict(authors.gap_low)} ({auth})",
                 "where": WHERE["mnist"]})  # fmt: skip
    rows.append({"claim": "C6", "what": "Table 1's numbers at 70–90 % deleted",
                 "cases holding": f"mean gap {authors.gap_high:.1f} points (authors' choices); "
                 f"{closest.gap_high:.2f} (closest)",
                 "verdict": f"{table_verdict(authors.gap_high)} ({auth}); {table_verdict(closest.gap_high)} ({close})",
                 "where": WHERE["mnist"]})  # fmt: skip
    for scope, label in (("layer", "per layer"), ("global", "global threshold")):
        c = cifar_by_scope[scope]
        h, n = int(c.holds.sum()), len(c)
        in_paper = f"{int(c.paper_holds.dropna().astype(bool).sum())} of {int(c.paper_holds.notna().sum())}"
        rows.append({"claim": "C7" if scope == "layer" else "C7g",
                     "what": f"section 4.4's five CIFAR-10 claims, pruned {label} (quarter width, JPEG subset)",
                     "cases holding": f"{h} of {n} (Table 2 itself: {in_paper})",
                     "verdict": verdict(h, n), "where": WHERE["cifar"]})  # fmt: skip
    return pd.DataFrame(rows).set_index("claim")


def claim2_split_findings(pairs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]]) -> dict[str, float | str]:
    """Claim C4 split into the criterion's part and the loss's part at 90 % deleted, by the report's glue names.

    ``pairs`` maps a key ("auth", "best") to two ``claims`` tables of one rule: with the paper's
    criterion (L1 by |mu|/sigma, L3 by |w|) and with |mu| for both losses. Claim 2's margin at 90 %
    averaged over the forms splits exactly: total = criterion part + loss part, where the loss part
    is the |mu| margin (chapter 06, eq. mnist-claim2-split-eq). Returns c4_<key>_total, _loss and
    _crit (points), c4_<key>_mu_cases ("h of n" with |mu|), and c4_conclusion: "chiefly" when the
    criterion's part exceeds the loss's in size for every key, else "not chiefly".

    Raises:
        AttributeError: a table lacks the claim or difference column.
    """
    out: dict[str, float | str] = {}
    crit_first = True  # is the criterion's part larger than the loss's under every rule?
    for key, (total, mu) in pairs.items():
        t90, m90 = (c[c.claim.str.startswith("2") & c.claim.str.contains("90")].difference.mean() for c in (total, mu))
        out[f"c4_{key}_total"] = float(t90)
        out[f"c4_{key}_loss"] = float(m90)
        out[f"c4_{key}_crit"] = float(t90 - m90)
        h, n = count_holding(mu, "2")
        out[f"c4_{key}_mu_cases"] = f"{h} of {n}"
        crit_first = crit_first and abs(t90 - m90) > abs(m90)
    out["c4_conclusion"] = "chiefly" if crit_first else "not chiefly"
    return out


def cifar_report_findings(
    cifar: pd.DataFrame, config: Mapping, cifar_by_scope: Mapping[str, pd.DataFrame]
) -> dict[str, float | int | str]:
    """The CIFAR-10 numbers the report quotes, by its glue names.

    ``cifar`` is the study's ``pruning.csv`` frame and ``config`` its ``provenance["config"]``;
    ``cifar_by_scope`` maps a scope to ``cifar_claims``. Returns cifar_base0 and cifar_var0 (the
    direct base and variational models' accuracy with nothing deleted, paper's rule, %),
    cifar_train_images (0 for the full set), cifar_epochs, cifar_width, and cifar_<scope>_<n>,
    "h of n" cases of claim n. Source: section 4.4 and Table 2 of the paper.

    Raises:
        KeyError: an implementation or setting is missing.
    """
    cifar0 = summarise(cifar).set_index(["implementation", "fraction"]).accuracy
    out: dict[str, float | int | str] = {
        "cifar_base0": 100 * float(cifar0[("base-direct", 0.0)]),
        "cifar_var0": 100 * float(cifar0[("variational-direct", 0.0)]),
        "cifar_train_images": int(config["train_subset"] or 0),
        "cifar_epochs": int(config["epochs"]),
        "cifar_width": float(config["width"]),
    }
    for scope, c in cifar_by_scope.items():
        for number, g in c.groupby(c.claim.str[0]):  # claim 2 has two rows per form (70 and 90 %)
            out[f"cifar_{scope}_{number}"] = f"{int(g.holds.sum())} of {len(g)}"
    return out


def _check_frame(df, name: str) -> None:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"{name} must be a non-empty pruning.csv frame (study.load_results), got {type(df).__name__}")
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing} of a study's pruning.csv")


def _check_report_inputs(studies, lams, cifar, cifar_config, authors_study) -> list[float] | None:
    """``report_findings``' argument checks (ValueError naming the bad input); returns ``lams`` as a list or None."""
    if not isinstance(studies, Mapping) or not studies:
        raise ValueError("studies must map at least one input scaling's label to an MNIST study's pruning.csv frame")
    if authors_study not in studies:
        raise ValueError(f"authors_study {authors_study!r} is not one of the studies {list(studies)}")
    for label, df in studies.items():
        _check_frame(df, f"the MNIST study {label!r}")
    _check_frame(cifar, "cifar")
    for label, df in studies.items():
        if df is cifar or df.equals(cifar):
            raise ValueError(f"the MNIST study {label!r} is the CIFAR-10 frame; pass the MNIST studies' pruning.csv")
    held = {label: {lambda_key(v) for v in df.lam} for label, df in studies.items()}
    if lams is None:
        if len({frozenset(k) for k in held.values()}) > 1:
            raise ValueError("the MNIST studies hold different lambdas; pass lams, the lambdas Table 1 averages over")
    else:
        if isinstance(lams, (str, bytes, Mapping)) or not isinstance(lams, Sequence) or len(lams) == 0:
            raise ValueError(f"lams must be None or a non-empty sequence of lambdas, got {lams!r}")
        try:
            keys = {lambda_key(lam): float(lam) for lam in lams}
        except (TypeError, ValueError):
            raise ValueError(f"lams must hold positive finite lambdas, got {list(lams)!r}") from None
        for label, have in held.items():
            absent = [v for k, v in keys.items() if k not in have]
            if absent:
                raise ValueError(
                    f"the study {label!r} has no rows at lambda {absent}; it holds "
                    f"{', '.join(f'{10**k:g}' for k in sorted(have))} (is it an MNIST study?)"
                )
        lams = list(lams)
    if not isinstance(cifar_config, Mapping):
        raise ValueError(f"cifar_config must be the CIFAR-10 study's provenance['config'], got {cifar_config!r}")
    missing = [k for k in ("train_subset", "epochs", "width") if k not in cifar_config]
    if missing:
        raise ValueError(f"cifar_config lacks {missing}; pass the CIFAR-10 study's provenance['config']")
    return lams


def report_findings(
    studies: Mapping[str, pd.DataFrame],
    lams: Sequence[float] | None,
    wine: pd.DataFrame,
    cifar: pd.DataFrame,
    cifar_config: Mapping,
    authors_study: str = "[-1, 1]",
) -> tuple[pd.DataFrame, dict[str, float | int | str]]:
    """The report's verdict table and every number it quotes, from the committed studies.

    ``studies`` maps an input scaling's label to an MNIST study's ``pruning.csv`` frame
    (``authors_study`` is the authors' code's scaling), ``lams`` the lambdas Table 1 averages over;
    ``wine`` is ``wine.load_results().table``; ``cifar`` and ``cifar_config`` the CIFAR-10 study's
    frame and ``provenance["config"]``. The closest combination is ``closest_row`` of ``gap_table``.
    Returns ``verdict_table``'s output and {glue name: value}: gap_low/high_auth,
    gap_low/high_best (points), best_combo, verdict_<claim> and cases_<claim>, then
    ``claim2_split_findings`` and ``cifar_report_findings``.

    Every input is checked before anything is computed: each study and ``cifar`` must be a
    non-empty ``pruning.csv`` frame (``study.CSV_COLUMNS``); ``lams`` None (every lambda; then the
    studies must hold the same lambdas) or a non-empty sequence of positive finite lambdas that
    every study holds (equal under ``hypernets.lambda_key``); the CIFAR-10 frame must not be one
    of the MNIST studies; ``cifar_config`` must hold ``train_subset``, ``epochs`` and ``width``.

    Raises:
        ValueError: for any input that fails those checks (the message says which and what to
            pass), when ``authors_study`` is not a key of ``studies``, a study lacks a rule's
            rows, or the authors' row is missing.
        KeyError: a column that ``wine_claims`` reads is missing from ``wine``.
    """
    lams = _check_report_inputs(studies, lams, cifar, cifar_config, authors_study)
    gaps = gap_table(studies, "mnist", lams)
    authors, best = authors_row(gaps, authors_study), closest_row(gaps)
    best_rule = rule_of(best)
    c_auth = claims(studies[authors_study], lams)
    c_best = claims(studies[best.study], lams, **best_rule)
    # Claim 2 with both losses pruned by |mu|: the loss alone, without the criterion (chapter 6 splits the two).
    c_auth_mu = claims(studies[authors_study], lams, criterion="simple")
    c_best_mu = claims(studies[best.study], lams, **{**best_rule, "criterion": "simple"})
    cifar_by_scope = {scope: cifar_claims(cifar, scope=scope) for scope in ("layer", "global")}
    verdicts = verdict_table(wine_claims(wine), c_auth, c_best, authors, best, cifar_by_scope)
    numbers: dict[str, float | int | str] = {
        "gap_low_auth": float(authors.gap_low),
        "gap_high_auth": float(authors.gap_high),
        "gap_high_best": float(best.gap_high),
        "gap_low_best": float(best.gap_low),
        "best_combo": f"pixels in {best.study}, {best.rule}",
    }
    for claim in verdicts.index:
        numbers[f"verdict_{claim}"] = verdicts.loc[claim, "verdict"]
        numbers[f"cases_{claim}"] = verdicts.loc[claim, "cases holding"]
    numbers |= claim2_split_findings({"auth": (c_auth, c_auth_mu), "best": (c_best, c_best_mu)})
    numbers |= cifar_report_findings(cifar, cifar_config, cifar_by_scope)
    return verdicts, numbers


def checklist(mnist: Mapping[str, dict], wine_provenance: Mapping) -> pd.DataFrame:
    """The reproducibility checklist: one row per study, with its command, seeds, split, settings, time and commit.

    ``mnist`` maps an input scaling's label to its MNIST study's provenance (``load_results``'
    second value); ``wine_provenance`` is ``wine.load_results().provenance``. Wall times in
    minutes (``study.wall_minutes``; None when the Wine provenance has no timings). Columns:
    study, command, runs (seeds), data split, hyperparameters, hardware, wall time (min), commit.
    Source: the ML Reproducibility Challenge's checklist.

    Raises:
        KeyError: a provenance lacks its config, runs or a setting.
    """
    rows = []
    for label, prov in mnist.items():
        c, runs = prov["config"], prov["runs"]
        hw = runs[0]["hardware"]
        rows.append({"study": f"MNIST, pixels in {label}", "command": prov["command"],
                     "runs (seeds)": f"{c['runs']} per configuration; one seed per job, from its name",
                     "data split": "the standard 60,000 / 10,000; no validation split (as the paper)",
                     "hyperparameters": f"Adam lr {c['lr']}, batch {c['batch_size']}, {c['epochs']} epochs, "
                     f"λ in [{c['lam_range'][0]:g}, {c['lam_range'][1]:g}], {c['lam_samples']} λ per batch, "
                     f"log σ init {c['init_log_sigma']}, clip {c['clip_value']}",
                     "hardware": f"{hw['cpu_count']} CPU cores, {hw['torch_threads']} threads",
                     "wall time (min)": round(wall_minutes(prov), 1), "commit": prov["git_commit"]})  # fmt: skip
    wp, seconds = wine_provenance, wine_provenance.get("seconds")
    wine_minutes = round(seconds.get("total", float("nan")) / 60, 1) if isinstance(seconds, dict) else None
    rows.append({"study": "Wine", "command": wp.get("command"), "runs (seeds)": f"{wp['config']['runs']}",
                 "data split": "142 / 36, permutation with seed 42 (the authors' code)",
                 "hyperparameters": f"batch 1, {wp['config']['epochs']} epochs, λ in [1e2, 1e6]",
                 "hardware": str(wp.get("hardware", {}).get("cpu_count", "?")) + " CPU cores",
                 "wall time (min)": wine_minutes,
                 "commit": wp.get("git_commit")})  # fmt: skip
    return pd.DataFrame(rows)
