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

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .anonymity import reidentification_risk
from .closeness import GroundDistance, without_matrices
from .contingency import ContingencyTable, Ordered, SensitiveCounts
from .engines import as_contingency
from .power import distinguishing_power
from .registry import by_requirement, metrics, requirement_keys, sa_metrics
from .report import AuditReport, RequirementResult


class Requirements:
    """What the user asks of the table. ``None`` leaves a requirement out.

    The keywords are the requirement keywords of the metric registry (:mod:`.registry`), in its
    order; the instance is immutable.

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
    **more : float, optional
        The requirements of metrics registered beyond these.

    Examples
    --------
    >>> Requirements(k=5, t=0.2).asked()
    {'k': 5, 't': 0.2}
    >>> Requirements(k=5).t is None
    True
    """

    def __init__(self, **asked: float | None) -> None:
        keys = requirement_keys()
        unknown = [key for key in asked if key not in keys]
        if unknown:
            raise TypeError(f"unexpected requirement {unknown[0]!r}; known: {', '.join(keys)}")
        for key in keys:
            value = asked.get(key)
            if value is None:
                continue
            metric = by_requirement(key)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or math.isnan(value) or (metric.valid is not None and not metric.valid(value)):
                raise InputError(f"requirement {key} must be {metric.expected}, got {value!r}")
        # Registry order, so that verdicts are listed the same way whatever the call order.
        object.__setattr__(self, "_asked", {key: asked[key] for key in keys
                                            if asked.get(key) is not None})

    def __getattr__(self, name: str):
        if not name.startswith("_") and name in requirement_keys():
            return self._asked.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Requirements) and self._asked == other._asked

    def __hash__(self) -> int:
        return hash(tuple(self._asked.items()))

    def __repr__(self) -> str:
        return "Requirements(" + ", ".join(f"{k}={v!r}" for k, v in self._asked.items()) + ")"

    @property
    def recursive_l(self) -> int:
        """The l used with ``c`` for recursive (c, l)-diversity."""
        return int(self.l) if self.l is not None else 2

    def asked(self) -> dict[str, float]:
        """The requirements that were given, by name."""
        return dict(self._asked)

    def needs_sensitive(self) -> list[str]:
        """Names of the given requirements that need a sensitive attribute."""
        return [k for k in self._asked if by_requirement(k).per_sa]




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
    return {m.name: m.per_class(sc, c=c, ground_distance=ground_distance)
            for m in sa_metrics() if only is None or m.name in only}


def class_fails(requirements: Requirements, ct: ContingencyTable,
                 per_sa: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """For each asked requirement, a boolean per class: does the class break it.

    Every verdict goes through :mod:`.compare` in the metric's direction, so a class that meets a
    bound up to rounding (entropy l of 7 equal values: 6.999999999999998) meets it.
    """
    fails: dict[str, np.ndarray] = {}
    for key, asked in requirements.asked().items():
        metric = by_requirement(key)
        bound = metric.bound(requirements) if metric.bound is not None else asked
        if not metric.per_sa:
            fails[key] = np.asarray(metric.breaks(metric.per_class(ct), bound), dtype=bool)
            continue
        out = np.zeros(ct.n_classes, dtype=bool)
        for values in per_sa.values():
            out |= metric.breaks(values[metric.name], bound)
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
    **more: float | None,
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
    **more : float, optional
        Requirements on metrics registered beyond the built-in ones (see :mod:`.registry`).

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
                                enhanced_beta=enhanced_beta, delta=delta, **more)
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
    common = {m.name: (_scalar(m.worst(m.per_class(ct))) if m.per_class is not None
                       else m.of_table(ct, risk))
              for m in metrics() if not m.per_sa}

    by_sensitive: dict[str, dict[str, float]] = {}
    for name, values in per_sa.items():
        by_sensitive[name] = {m.name: _scalar(m.worst(values[m.name])) if m.per_sa
                              else common[m.name] for m in metrics()}

    table_metrics: dict[str, float | None] = {}
    for m in metrics():
        if not m.per_sa:
            table_metrics[m.name] = common[m.name]
        elif by_sensitive:
            table_metrics[m.name] = m.pick_worst(entry[m.name] for entry in by_sensitive.values())
        else:
            table_metrics[m.name] = None

    fails = class_fails(requirements, ct, per_sa)
    results = []
    for key, asked in requirements.asked().items():
        metric = by_requirement(key)
        failing = fails[key]
        worst_sa = None
        if metric.per_sa and by_sensitive:
            worst_sa = metric.pick_worst(by_sensitive, key=lambda s: by_sensitive[s][metric.name])
        label = (metric.requirement_label(asked, requirements)
                 if metric.requirement_label is not None else metric.label)
        # The threshold on the metric: for recursive (c,l), the largest l that holds is l.
        asked_value = metric.bound(requirements) if metric.bound is not None else asked
        results.append(RequirementResult(
            name=label, metric=metric.name, asked=asked_value, value=table_metrics[metric.name],
            passed=not failing.any(), sensitive=worst_sa,
            records_failing=int(ct.class_sizes[failing].sum()),
            classes_failing=int(failing.sum())))

    report = AuditReport(
        passed=all(r.passed for r in results),
        metrics=table_metrics,
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


def _scalar(value) -> float:
    """A numpy scalar as a Python int (integer metrics) or float."""
    return int(value) if np.asarray(value).dtype.kind in "iu" else float(value)


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
        for metric in sa_metrics():
            column = metric.name if len(per_sa) == 1 else f"{name}.{metric.name}"
            out[column] = values[metric.name][idx]
    return out
