"""From cases to verdicts: counting the cases of a claim that hold, and the Wine claims (Figure 3).

A claim of the paper is tested case by case (per loss, hypernetwork form or pruning level); a
verdict says whether all, at least half, or fewer of its cases hold. ``claims``, ``cifar_claims``
and ``wine_claims`` produce such case tables, with columns claim, case and holds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["verdict", "table_verdict", "count_holding", "claim_summary", "wine_claims"]


def verdict(holding: int, cases: int) -> str:
    """ "supported" when every case holds, "partly supported" for at least half, else "not supported"."""
    if cases == 0:
        return "not tested"
    if holding == cases:
        return "supported"
    return "partly supported" if 2 * holding >= cases else "not supported"


def table_verdict(gap: float) -> str:
    """A verdict on reproducing a table's numbers from its mean absolute gap in points.

    "supported" below 2 points, "partly supported" below 5, "not supported" otherwise (the
    reproducibility report's thresholds for Table 1, in percentage points of accuracy). Raises
    nothing; a NaN gap is "not supported".
    """
    return "supported" if gap < 2 else "partly supported" if gap < 5 else "not supported"


def count_holding(cases: pd.DataFrame, prefix: str) -> tuple[int, int]:
    """(cases holding, cases) of the claims in ``cases`` whose name starts with ``prefix``.

    ``cases`` is a table with columns claim and holds (``claims``, ``cifar_claims``,
    ``wine_claims``); ``prefix`` is the claim's number or letter, e.g. "2" or "A". A prefix no
    claim has gives (0, 0).

    Raises:
        AttributeError: ``cases`` has no claim or holds column.
    """
    sel = cases[cases.claim.str.startswith(prefix)]
    return int(sel.holds.sum()), len(sel)


def claim_summary(claims_by_label: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (label, claim) of several ``claims``/``cifar_claims`` tables: cases holding and a verdict.

    ``claims_by_label`` maps a label (e.g. a pruning scope) to a table with columns claim and holds
    (and optionally paper_holds). Columns: label, claim, holding, cases, holds ("h of n"),
    verdict (``verdict``), and in_paper ("h of n" on the paper's table, "—" where it has none).
    """
    rows = []
    for label, c in claims_by_label.items():
        for claim, g in c.groupby("claim", sort=True):
            h, n = int(g.holds.sum()), len(g)
            paper = g.paper_holds.dropna() if "paper_holds" in g else pd.Series(dtype=bool)
            in_paper = f"{int(paper.astype(bool).sum())} of {len(paper)}" if len(paper) else "—"
            rows.append({"label": label, "claim": claim, "holding": h, "cases": n, "holds": f"{h} of {n}",
                         "verdict": verdict(h, n), "in_paper": in_paper})  # fmt: skip
    return pd.DataFrame(rows)


def wine_claims(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's Wine claims (Figure 3) on a ``wine.load_results().table``.

    A: a piecewise-linear hypernetwork (each N > 1) is closer in symmetrised KL to the directly
    trained posteriors than the linear one (N = 1), averaged over lambda and runs (log10 D_KL).
    B: one epoch of fine-tuning at a fixed lambda brings each hypernetwork's model closer still.
    Returns columns claim, case, log10 D_KL of the reference and of the compared model, holds.
    """
    d = table[table.model.isin(["linear", "piecewise"])].dropna(subset=["sym_kl"])
    d = d[d.sym_kl > 0].assign(log10=lambda x: np.log10(x.sym_kl))
    by = d.groupby(["n_pieces", "stage"]).log10.mean()
    rows = []
    linear = by.get((1, "trained"))
    for n in sorted({n for n, _ in by.index if n > 1}):
        if (n, "trained") in by and linear is not None:
            rows.append({"claim": "A: piecewise closer than linear", "case": f"N = {n}", "reference": linear,
                         "compared": by[(n, "trained")], "holds": bool(by[(n, "trained")] < linear)})  # fmt: skip
    for n in sorted({n for n, _ in by.index}):
        if (n, "trained") in by and (n, "finetuned") in by:
            rows.append({"claim": "B: fine-tuning brings it closer", "case": f"N = {n}",
                         "reference": by[(n, "trained")], "compared": by[(n, "finetuned")],
                         "holds": bool(by[(n, "finetuned")] < by[(n, "trained")])})  # fmt: skip
    return pd.DataFrame(rows, columns=["claim", "case", "reference", "compared", "holds"])
