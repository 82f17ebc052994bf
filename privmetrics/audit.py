"""``audit()``: every metric in one pass, checked against the requirements a user asks for.

The audit builds the contingency table once, computes each metric per class (so that it can say
which classes and records break which requirement), reduces to one number per metric and
sensitive attribute, and returns an :class:`AuditReport`.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"Male": [1, 1, 1, -1, -1, -1], "Young": [1] * 6,
...                    "identity": [1, 2, 3, 4, 5, 6]})
>>> report = audit(df, qi=["Male", "Young"], sensitive=["identity"], k=3, l=3)
>>> report.passed, report.metrics["k_anonymity"], report.metrics["l_diversity"]
(True, 3, 3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .anonymity import reidentification_risk
from .closeness import GroundDistance, emd_per_class, without_matrices
from .compare import exceeds, falls_short
from .contingency import ContingencyTable, Ordered, SensitiveCounts
from .diversity import entropy_l_per_class, recursive_l_per_class
from .engines import as_contingency
from .likeness import basic_beta_per_class, delta_disclosure_per_class, enhanced_beta_per_class
from .power import distinguishing_power
from .report import AuditReport, RequirementResult


#: Metric names of the report, in display order, with whether larger values are more private.
METRICS: dict[str, bool] = {
    "k_anonymity": True,
    "l_diversity": True,
    "entropy_l_diversity": True,
    "recursive_c_l_diversity": True,
    "t_closeness": False,
    "basic_beta_likeness": False,
    "enhanced_beta_likeness": False,
    "delta_disclosure": False,
    "max_prosecutor_risk": False,
    "uniques": False,
}
_SA_METRICS = ["l_diversity", "entropy_l_diversity", "recursive_c_l_diversity", "t_closeness",
               "basic_beta_likeness", "enhanced_beta_likeness", "delta_disclosure"]


@dataclass(frozen=True)
class Requirements:
    """What the user asks of the table. ``None`` leaves a requirement out.

    Parameters
    ----------
    k : int, optional
        k-anonymity: every class has at least k records.
    l : int, optional
        Distinct l-diversity: every class has at least l distinct values of every SA.
    entropy_l : float, optional
        Entropy l-diversity: ``exp(H(P_E)) >= entropy_l`` in every class.
    c : float, optional
        Recursive (c, l)-diversity with this c and ``l`` (2 when ``l`` is not given).
    t : float, optional
        t-closeness: every class within EMD ``t`` of the table.
    beta : float, optional
        Basic beta-likeness at most ``beta``.
    enhanced_beta : float, optional
        Enhanced beta-likeness at most ``enhanced_beta``.
    delta : float, optional
        delta-disclosure at most ``delta``.

    Examples
    --------
    >>> Requirements(k=5, t=0.2).asked()
    {'k': 5, 't': 0.2}
    """

    k: int | None = None
    l: int | None = None
    entropy_l: float | None = None
    c: float | None = None
    t: float | None = None
    beta: float | None = None
    enhanced_beta: float | None = None
    delta: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "k": (self.k, lambda v: float(v).is_integer() and v >= 1, "a whole number >= 1"),
            "l": (self.l, lambda v: float(v).is_integer() and v >= 1, "a whole number >= 1"),
            "entropy_l": (self.entropy_l, lambda v: v >= 1, "a number >= 1"),
            "c": (self.c, lambda v: v > 0, "a number > 0"),
            "t": (self.t, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
            "beta": (self.beta, lambda v: v >= 0, "a number >= 0"),
            "enhanced_beta": (self.enhanced_beta, lambda v: v >= 0, "a number >= 0"),
            "delta": (self.delta, lambda v: v >= 0, "a number >= 0"),
        }
        for name, (value, ok, expected) in checks.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or math.isnan(value) or not ok(value):
                raise InputError(f"requirement {name} must be {expected}, got {value!r}")

    @property
    def recursive_l(self) -> int:
        """The l used with ``c`` for recursive (c, l)-diversity."""
        return int(self.l) if self.l is not None else 2

    def asked(self) -> dict[str, float]:
        """The requirements that were given, by name."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def needs_sensitive(self) -> list[str]:
        """Names of the given requirements that need a sensitive attribute."""
        return [k for k in self.asked() if k != "k"]


_REQUIREMENT_NAMES = {
    "k": ("k-anonymity", "k_anonymity"),
    "l": ("distinct l-diversity", "l_diversity"),
    "entropy_l": ("entropy l-diversity", "entropy_l_diversity"),
    "c": ("recursive (c,l)-diversity", "recursive_c_l_diversity"),
    "t": ("t-closeness", "t_closeness"),
    "beta": ("basic beta-likeness", "basic_beta_likeness"),
    "enhanced_beta": ("enhanced beta-likeness", "enhanced_beta_likeness"),
    "delta": ("delta-disclosure", "delta_disclosure"),
}


def class_metrics(sc: SensitiveCounts, *, c: float,
                  ground_distance: GroundDistance | None = None,
                  only: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Every SA metric of one sensitive attribute (or those named in ``only``), per class.

    Examples
    --------
    >>> import pandas as pd
    >>> from privface.privmetrics.contingency import contingency_table
    >>> ct = contingency_table(pd.DataFrame({"a": [1, 1, 2], "s": [1, 2, 1]}), ["a"], ["s"])
    >>> class_metrics(ct["s"], c=2.0)["l_diversity"].tolist()
    [2, 1]
    """
    compute = {
        "l_diversity": lambda: sc.distinct,
        "entropy_l_diversity": lambda: entropy_l_per_class(sc),
        "recursive_c_l_diversity": lambda: recursive_l_per_class(sc, c),
        "t_closeness": lambda: emd_per_class(sc, ground_distance),
        "basic_beta_likeness": lambda: basic_beta_per_class(sc),
        "enhanced_beta_likeness": lambda: enhanced_beta_per_class(sc),
        "delta_disclosure": lambda: delta_disclosure_per_class(sc),
    }
    return {name: fn() for name, fn in compute.items() if only is None or name in only}


def _class_fails(requirements: Requirements, ct: ContingencyTable,
                 per_sa: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """For each asked requirement, a boolean per class: does the class break it.

    Every verdict goes through :mod:`.compare`, so a class that meets a bound up to rounding
    (entropy l of 7 equal values: 6.999999999999998) meets it.
    """
    fails: dict[str, np.ndarray] = {}
    asked = requirements.asked()
    if "k" in asked:
        fails["k"] = falls_short(ct.class_sizes, asked["k"])
    tests = {
        "l": ("l_diversity", lambda v: falls_short(v, asked["l"])),
        "entropy_l": ("entropy_l_diversity", lambda v: falls_short(v, asked["entropy_l"])),
        "c": ("recursive_c_l_diversity", lambda v: falls_short(v, requirements.recursive_l)),
        "t": ("t_closeness", lambda v: exceeds(v, asked["t"])),
        "beta": ("basic_beta_likeness", lambda v: exceeds(v, asked["beta"])),
        "enhanced_beta": ("enhanced_beta_likeness", lambda v: exceeds(v, asked["enhanced_beta"])),
        "delta": ("delta_disclosure", lambda v: exceeds(v, asked["delta"])),
    }
    for key, (metric, breaks) in tests.items():
        if key not in asked:
            continue
        out = np.zeros(ct.n_classes, dtype=bool)
        for values in per_sa.values():
            out |= breaks(values[metric])
        fails[key] = out
    return fails


def audit(
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
    risk_threshold: float = 0.2,
    worst: int = 10,
    power: bool = False,
    source: str | None = None,
) -> AuditReport:
    """Check a table against privacy requirements and measure every metric at once.

    Parameters
    ----------
    data : DataFrame or ContingencyTable
        The table (one row per face or record).
    qi : sequence of str
        Quasi-identifiers (needed with a DataFrame).
    sensitive : str or sequence of str, optional
        Sensitive attributes; each is measured on its own and the report shows each and the worst.
    k, l, entropy_l, c, t, beta, enhanced_beta, delta : optional
        Requirements, see :class:`Requirements`. Without any, the audit only measures (and
        passes).
    ordered : str, sequence of str or mapping, optional
        Sensitive attributes with ordered values (t-closeness uses the ordered distance): names,
        ordered as numbers, or a mapping of name to its order of values, smallest first (see
        :func:`~.contingency.contingency_table`). A column with a ground-distance matrix is
        measured through the matrix instead.
    ground_distance : mapping of SA name to matrix, optional
        A ground-distance matrix per SA for exact EMD (POT).
    risk_threshold : float, default 0.2
        A record is "at risk" when its prosecutor risk ``1/|E|`` exceeds this.
    worst : int, default 10
        How many of the worst classes to keep in the report.
    power : bool, default False
        Also compute each QI's distinguishing power (see :func:`distinguishing_power`).
    source : str, optional
        Where the data came from, for the report.

    Returns
    -------
    AuditReport

    Raises
    ------
    InputError
        Bad columns or requirements, or a requirement on sensitive attributes without any.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 3]})
    >>> r = audit(df, ["Male"], ["identity"], k=2, l=2)
    >>> r.passed, [x.name for x in r.failed]
    (False, ['distinct l-diversity'])
    """
    requirements = Requirements(k=k, l=l, entropy_l=entropy_l, c=c, t=t, beta=beta,
                                enhanced_beta=enhanced_beta, delta=delta)
    if isinstance(worst, bool) or not isinstance(worst, (int, np.integer)) or worst < 0:
        raise InputError(f"worst must be a whole number >= 0 (classes to list), got {worst!r}")
    ct = as_contingency(data, qi, sensitive,
                        ordered=without_matrices(ordered, ground_distance))
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    sensitive_names = ct.select(sensitive or None) if ct.sensitive else []
    sens = [sc.name for sc in sensitive_names]
    if not sens and requirements.needs_sensitive():
        raise InputError(f"requirement(s) {', '.join(requirements.needs_sensitive())} need a "
                         "sensitive attribute, and none was given")
    ground_distance = dict(ground_distance or {})
    for name in ground_distance:
        if name not in sens:
            raise InputError("a ground-distance matrix was given for a column that is not a "
                             "sensitive attribute", column=name)
    recursive_c_value = float(c) if c is not None else 2.0
    per_sa = {sc.name: class_metrics(sc, c=recursive_c_value,
                                     ground_distance=ground_distance.get(sc.name))
              for sc in sensitive_names}
    risk = reidentification_risk(ct, threshold=risk_threshold)
    k_value = int(ct.class_sizes.min())
    common = {"k_anonymity": k_value, "max_prosecutor_risk": risk.highest,
              "uniques": risk.uniques}

    by_sensitive: dict[str, dict[str, float]] = {}
    for name, values in per_sa.items():
        entry: dict[str, float] = {"k_anonymity": k_value}
        for metric in _SA_METRICS:
            arr = values[metric]
            larger_is_better = METRICS[metric]
            v = arr.min() if larger_is_better else arr.max()
            entry[metric] = int(v) if arr.dtype.kind in "iu" else float(v)
        entry["max_prosecutor_risk"] = risk.highest
        entry["uniques"] = risk.uniques
        by_sensitive[name] = {m: entry[m] for m in METRICS}

    metrics: dict[str, float | None] = {}
    for metric, larger_is_better in METRICS.items():
        if metric in common:
            metrics[metric] = common[metric]
        elif by_sensitive:
            values = [entry[metric] for entry in by_sensitive.values()]
            metrics[metric] = min(values) if larger_is_better else max(values)
        else:
            metrics[metric] = None

    fails = _class_fails(requirements, ct, per_sa)
    results = []
    for key, asked in requirements.asked().items():
        label, metric = _REQUIREMENT_NAMES[key]
        failing = fails[key]
        worst_sa = None
        if metric in _SA_METRICS and by_sensitive:
            pick = min if METRICS[metric] else max
            worst_sa = pick(by_sensitive, key=lambda s: by_sensitive[s][metric])
        value = metrics[metric]
        # For recursive (c,l) the threshold on the metric (the largest l that holds) is l.
        asked_value = requirements.recursive_l if key == "c" else asked
        results.append(RequirementResult(
            name=label if key != "c" else f"recursive ({asked:g},{requirements.recursive_l})"
                                          "-diversity",
            metric=metric, asked=asked_value, value=value, passed=not failing.any(),
            sensitive=worst_sa, records_failing=int(ct.class_sizes[failing].sum()),
            classes_failing=int(failing.sum())))

    report = AuditReport(
        passed=all(r.passed for r in results),
        metrics=metrics,
        by_sensitive=by_sensitive,
        requirements=results,
        risk=risk,
        worst_classes=_worst_classes(ct, per_sa, fails, worst),
        n_records=ct.n_records,
        n_classes=ct.n_classes,
        qi=list(ct.qi),
        sensitive=sens,
        parameters={"recursive_c": recursive_c_value,
                    "recursive_l": requirements.recursive_l,
                    "risk_threshold": float(risk_threshold),
                    "ordered": [s for s in sens if ct[s].ordered],
                    "ground_distance": sorted(ground_distance)},
        source=source,
        class_metrics=per_sa,
    )
    if power:
        report.distinguishing_power = distinguishing_power(ct, threshold=risk_threshold)
    return report


def _distinctive(ct: ContingencyTable, classes: pd.DataFrame) -> list[str]:
    """For each class, its QI values that differ from the column's most common value.

    This is what makes a class stand out, and reads far better than forty values. The most common
    values are counted exactly over all records (not on a sample), so that a table audited in
    memory, in chunks or on Dask shows the same; a binary column costs one ``count_nonzero``.
    """
    modes = {}
    for name, col in zip(ct.qi, ct.row_keys.columns):
        if ct.row_counts is not None:  # a table built from counts: one row per class
            counts = np.bincount(col.codes, weights=ct.row_counts, minlength=col.cardinality)
        elif col.cardinality == 2:
            ones = np.count_nonzero(col.codes)
            counts = np.array([len(col.codes) - ones, ones])
        else:
            counts = np.bincount(col.codes, minlength=col.cardinality)
        modes[name] = col.decode([int(counts.argmax())])[0]
    out = []
    for _, row in classes.iterrows():  # a handful of classes, for display only
        # Missing values first: pd.NA (string and nullable dtypes) has no truth value.
        parts = [f"{q}={row[q]}" for q in ct.qi
                 if not ((pd.isna(row[q]) and pd.isna(modes[q]))
                         or (not pd.isna(row[q]) and not pd.isna(modes[q])
                             and row[q] == modes[q]))]
        out.append(", ".join(parts))
    return out


def _worst_classes(ct: ContingencyTable, per_sa: Mapping[str, Mapping[str, np.ndarray]],
                   fails: Mapping[str, np.ndarray], n: int) -> pd.DataFrame:
    """The n classes that break the most requirements, smallest first among equals."""
    if n <= 0:
        return pd.DataFrame()
    n_fail = np.zeros(ct.n_classes, dtype=np.int64)
    for f in fails.values():
        n_fail += f
    # Sort by (most requirements broken, smallest class); argpartition keeps this cheap.
    score = n_fail.astype(np.float64) * (ct.n_records + 1) - ct.class_sizes
    take = min(n, ct.n_classes)
    idx = np.argpartition(-score, take - 1)[:take]
    idx = idx[np.lexsort((idx, -score[idx]))]
    out = ct.class_values(idx)
    out.insert(len(out.columns), "size", ct.class_sizes[idx])
    out.insert(len(out.columns), "risk", 1.0 / ct.class_sizes[idx])
    broken = [[key for key, f in fails.items() if f[i]] for i in idx]
    out.insert(len(out.columns), "breaks", [",".join(b) for b in broken])
    out.insert(len(out.columns), "distinctive", _distinctive(ct, out))
    for name, values in per_sa.items():
        for metric in _SA_METRICS:
            column = metric if len(per_sa) == 1 else f"{name}.{metric}"
            out[column] = values[metric][idx]
    return out
