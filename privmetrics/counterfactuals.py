"""Counterfactuals: what would make a failing table private?

Two answers, both cheap to act on:

* **how far** it is: the share of records that break each requirement (their classes would have to
  be suppressed for it to hold);
* **the smallest sets of quasi-identifiers** whose generalisation to ``"*"`` (for every record: the
  attribute is withheld) makes every requirement hold, each with the k/l/t it reaches and what it
  costs.

Withholding a QI merges classes, never splits them, and every requirement here (k, distinct and
entropy l, t, beta, delta) can only improve when classes merge, so a superset of a passing set also
passes and the search looks for the passing sets of the smallest size. Sets are evaluated on the
contingency table, without touching the rows: merging classes is a regrouping of the class keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import comb
from types import SimpleNamespace

import numpy as np
import pandas as pd

from privface.base.jsonenc import json_value

from .audit import Requirements, audit, class_fails, class_metrics
from .cell_counts import merge_classes
from .closeness import GroundDistance, without_matrices
from .contingency import ContingencyTable, Ordered, SensitiveCounts, contingency_table
from .engines import as_contingency
from .registry import by_requirement, sa_metrics

_EXHAUSTIVE_LIMIT = 1000  # evaluate every set of a size when there are at most this many


@dataclass(frozen=True)
class Counterfactual:
    """One set of QIs to generalise, and what the table looks like afterwards.

    Attributes
    ----------
    generalise : tuple of str
        The QIs to withhold (generalise to ``"*"`` for every record).
    metrics : dict
        The metrics the table would then have (worst over sensitive attributes).
    n_classes : int
    generalised_share : float
        Share of QI cells generalised (``len(generalise) / len(qi)``).
    discernibility : int
        Sum of squared class sizes afterwards.
    """

    generalise: tuple[str, ...]
    metrics: dict[str, float]
    n_classes: int
    generalised_share: float
    discernibility: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"generalise": list(self.generalise),
                "metrics": {k: json_value(v) for k, v in self.metrics.items()},
                "n_classes": self.n_classes, "generalised_share": self.generalised_share,
                "discernibility": self.discernibility}


@dataclass
class Explanation:
    """Why a table fails its requirements and what would fix it.

    Attributes
    ----------
    passed : bool
        Whether the table already meets every requirement.
    records_breaking : dict
        Per requirement key (``k``, ``l``, ``t``, ...): share of records in classes that break it.
    counterfactuals : list of Counterfactual
        The passing QI sets of the smallest size found, least information loss first.
    search : str
        ``"exhaustive"`` when every set of that size was checked (the size is then the minimum),
        ``"beam"`` when a beam search found them, ``"none found"`` when no set up to
        ``max_size`` passes.
    max_size : int
    closest : Counterfactual or None
        When nothing passes: the evaluated set that leaves the fewest records breaking.
    """

    passed: bool
    records_breaking: dict[str, float]
    counterfactuals: list[Counterfactual] = field(default_factory=list)
    search: str = "exhaustive"
    max_size: int = 0
    closest: Counterfactual | None = None
    all_generalised: Counterfactual | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"passed": self.passed, "records_breaking": self.records_breaking,
                "counterfactuals": [c.to_dict() for c in self.counterfactuals],
                "search": self.search, "max_size": self.max_size,
                "closest": None if self.closest is None else self.closest.to_dict(),
                "possible_by_generalising_all": self.all_generalised is not None}

    def to_text(self) -> str:
        """Plain-text rendering."""
        if self.passed:
            return "Every requirement already holds."
        lines = ["How far from private (share of records in classes that break it):"]
        lines += [f"  {key:<14} {share:.1%}" for key, share in self.records_breaking.items()]
        if self.counterfactuals:
            proven = " (no smaller set exists)" if self.search == "exhaustive" else \
                " (found by beam search)"
            lines.append(f"Smallest sets of quasi-identifiers to generalise{proven}:")
            for cf in self.counterfactuals:
                shown = ", ".join(f"{m}={_fmt(v)}" for m, v in cf.metrics.items()
                                  if m in ("k_anonymity", "l_diversity", "t_closeness"))
                lines.append(f"  {', '.join(cf.generalise)}  ->  {shown}; "
                             f"{cf.n_classes:,} classes, {cf.generalised_share:.0%} of QI cells")
        else:
            lines.append(f"No set of up to {self.max_size} quasi-identifiers to generalise makes "
                         "every requirement hold; local generalisation does better "
                         "(`privface anonymize`, anonymize_table).")
            if self.closest is not None:
                lines.append(f"  closest: {', '.join(self.closest.generalise)}")
            lines.append("  generalising every quasi-identifier " + (
                "would make them hold" if self.all_generalised is not None else
                "would not be enough: the requirements cannot be met by generalisation"))
        return "\n".join(lines)


def _fmt(v: float) -> str:
    return "inf" if np.isinf(v) else (f"{int(v)}" if float(v).is_integer() else f"{v:.3g}")


def explain(
    data: pd.DataFrame | ContingencyTable,
    qi: Sequence[str] | None = None,
    sensitive: Sequence[str] | str | None = None,
    *,
    k: int | None = None,
    l: int | None = None,
    entropy_l: float | None = None,
    c: float | None = None,
    t: float | None = None,
    beta: float | None = None,
    enhanced_beta: float | None = None,
    delta: float | None = None,
    ordered: Ordered = (),
    ground_distance: Mapping[str, GroundDistance] | None = None,
    max_size: int = 4,
    beam: int = 5,
    limit: int = 5,
    **more: float | None,
) -> Explanation:
    """How far a table is from its requirements, and the smallest QI sets that would fix it.

    Parameters
    ----------
    data, qi, sensitive, k, l, entropy_l, c, t, beta, enhanced_beta, delta, ordered, ground_distance
        As for :func:`~privface.privmetrics.audit.audit`.
    max_size : int, default 4
        Largest set of QIs to try.
    beam : int, default 5
        Beam width once a size has too many sets to check them all.
    limit : int, default 5
        How many passing sets to return.
    **more : float, optional
        Requirements on metrics registered beyond the built-in ones (see :mod:`.registry`).

    Returns
    -------
    Explanation

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "Hat": [1, -1, 1, -1], "Young": [1] * 4})
    >>> e = explain(df, ["Male", "Hat", "Young"], k=2)
    >>> e.records_breaking, [cf.generalise for cf in e.counterfactuals]
    ({'k': 1.0}, [('Hat',), ('Male',)])
    """
    ct = as_contingency(data, qi, sensitive, ordered=without_matrices(ordered, ground_distance))
    requirements = Requirements(k=k, l=l, entropy_l=entropy_l, c=c, t=t, beta=beta,
                                enhanced_beta=enhanced_beta, delta=delta, **more)
    if not requirements.asked():
        raise ValueError("explain() needs at least one requirement")
    report = audit(ct, sensitive=sensitive, k=k, l=l, entropy_l=entropy_l, c=c, t=t, beta=beta,
                   enhanced_beta=enhanced_beta, delta=delta, ground_distance=ground_distance,
                   worst=0, **more)
    breaking = {key: r.records_failing / ct.n_records
                for key, r in zip(requirements.asked(), report.requirements)}
    if report.passed:
        return Explanation(passed=True, records_breaking=breaking, max_size=max_size)
    evaluate = _Evaluator(ct, requirements, dict(ground_distance or {}))
    names = list(ct.qi)
    max_size = min(max_size, len(names))
    frontier: list[tuple[str, ...]] = [()]
    tried: dict[tuple[str, ...], tuple[float, Counterfactual]] = {}
    search = "exhaustive"
    for size in range(1, max_size + 1):
        if comb(len(names), size) <= _EXHAUSTIVE_LIMIT and search == "exhaustive":
            candidates = list(combinations(names, size))
        else:
            search = "beam"
            candidates = sorted({tuple(sorted(set(base) | {q}, key=names.index))
                                 for base in frontier for q in names if q not in base})
        scored = [(cand, *evaluate(cand)) for cand in candidates]
        for cand, share, cf in scored:
            tried[cand] = (share, cf)
        passing = [cf for _, share, cf in scored if share == 0]
        if passing:
            passing.sort(key=lambda cf: (cf.discernibility, cf.generalise))
            return Explanation(passed=False, records_breaking=breaking,
                               counterfactuals=passing[:limit], search=search,
                               max_size=max_size)
        scored.sort(key=lambda item: (item[1], item[2].discernibility))
        frontier = [cand for cand, _, _ in scored[:beam]]
    closest = min(tried.values(), key=lambda item: (item[0], item[1].discernibility))[1] \
        if tried else None
    share_all, withhold_all = evaluate(tuple(names))
    return Explanation(passed=False, records_breaking=breaking, search="none found",
                       max_size=max_size, closest=closest,
                       all_generalised=withhold_all if share_all == 0 else None)


class _Evaluator:
    """Evaluates QI sets to withhold on the contingency table, by regrouping class keys."""

    def __init__(self, ct: ContingencyTable, requirements: Requirements,
                 ground_distance: dict[str, GroundDistance]) -> None:
        self.ct = ct
        self.requirements = requirements
        self.ground_distance = ground_distance
        self.c = requirements.c if requirements.c is not None else 2.0
        # Only the metrics the requirements bound, plus l and t to show what a set reaches.
        asked = {by_requirement(key).name for key in requirements.asked()
                 if by_requirement(key).per_sa}
        self.metrics = sorted(asked | {"l_diversity", "t_closeness"})

    def __call__(self, withheld: tuple[str, ...]) -> tuple[float, Counterfactual]:
        sizes, sens = self._merged(withheld)
        per_sa = {sc.name: class_metrics(sc, c=self.c, only=self.metrics,
                                         ground_distance=self.ground_distance.get(sc.name))
                  for sc in sens}
        shim = SimpleNamespace(class_sizes=sizes, n_classes=len(sizes))
        fails = class_fails(self.requirements, shim, per_sa)
        failing = np.zeros(len(sizes), dtype=bool)
        for f in fails.values():
            failing |= f
        metrics: dict[str, float] = {"k_anonymity": int(sizes.min())}
        for metric in (m for m in sa_metrics() if m.name in self.metrics):
            values = [metric.worst(v[metric.name]) for v in per_sa.values()]
            if values:
                metrics[metric.name] = float(metric.pick_worst(values))
        cf = Counterfactual(generalise=withheld, metrics=metrics, n_classes=len(sizes),
                            generalised_share=len(withheld) / len(self.ct.qi),
                            discernibility=int((sizes.astype(np.int64) ** 2).sum()))
        return float(sizes[failing].sum() / self.ct.n_records), cf

    def _merged(self, withheld: tuple[str, ...]) -> tuple[np.ndarray, list[SensitiveCounts]]:
        ct = self.ct
        radices = ct.row_keys.radices
        if radices is None:  # keys were re-numbered: regroup the rows instead
            keep = [q for q in ct.qi if q not in withheld] or None
            if keep is None:
                return np.array([ct.n_records]), [_single_class(sc) for sc in
                                                  ct.select(None)] if ct.sensitive else []
            if ct.row_counts is not None:  # built from counts (chunked, Dask): no rows

                new_of_old, sizes = merge_classes(ct, keep)
                return sizes, [_regroup(sc, new_of_old, len(sizes)) for sc in
                               (ct.select(None) if ct.sensitive else [])]
            sub = contingency_table(ct.frame, keep, ct.sensitive,
                                    ordered={s: list(ct[s].values) for s in ct.sensitive
                                             if ct[s].ordered})
            return sub.class_sizes, [sub[s] for s in sub.sensitive]
        keys = ct.class_keys.copy()
        for name, col, radix in zip(ct.qi, ct.row_keys.columns, radices):
            if name in withheld and radix:
                keys -= ((keys // radix) % col.cardinality) * radix
        merged, new_of_old = np.unique(keys, return_inverse=True)
        new_of_old = new_of_old.reshape(-1)
        sizes = np.bincount(new_of_old, weights=ct.class_sizes,
                            minlength=len(merged)).astype(np.int64)
        sens = [_regroup(sc, new_of_old, len(merged)) for sc in
                (ct.select(None) if ct.sensitive else [])]
        return sizes, sens


def _regroup(sc: SensitiveCounts, new_of_old: np.ndarray, n_classes: int) -> SensitiveCounts:
    """The counts of one SA after classes are merged (``new_of_old`` maps old to new classes)."""
    m = sc.m
    cells, inverse = np.unique(new_of_old[sc.cell_class] * m + sc.cell_value, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=sc.cell_count,
                         minlength=len(cells)).astype(np.int64)
    cell_class = cells // m
    class_start = np.searchsorted(cell_class, np.arange(n_classes + 1)).astype(np.int64)
    return SensitiveCounts(name=sc.name, values=sc.values, ordered=sc.ordered,
                           overall=sc.overall, cell_class=cell_class, cell_value=cells % m,
                           cell_count=counts, class_start=class_start)


def _single_class(sc: SensitiveCounts) -> SensitiveCounts:
    return _regroup(sc, np.zeros(len(sc.class_start) - 1, dtype=np.int64), 1)
