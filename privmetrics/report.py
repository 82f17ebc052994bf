"""What an audit returns, :class:`AuditReport`, and its renderings: JSON-ready dict and text.

The JSON layout is versioned (``"schema": "privface.audit/1"``) and described by
``schema/audit-v1.json`` in this package and ``docs/audit-json.md``. Unbounded values are written
as the string ``"inf"`` (JSON has no infinity).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privface.base.jsonenc import json_value

from .anonymity import RiskSummary
from .registry import by_name

#: The version of the audit's JSON layout (``schema/audit-v1.json``).
SCHEMA = "privface.audit/1"


@dataclass(frozen=True)
class RequirementResult:
    """The verdict on one requirement.

    Attributes
    ----------
    name : str
        Human name, e.g. ``"k-anonymity"``.
    metric : str
        The metric it bounds (a key of :data:`~privface.privmetrics.registry.METRICS`).
    asked : float
        The threshold asked for.
    value : float
        The table's value (worst over sensitive attributes).
    passed : bool
    sensitive : str or None
        The sensitive attribute with the worst value (None for k).
    records_failing : int
        Records in classes that break the requirement (for any sensitive attribute).
    classes_failing : int
    """

    name: str
    metric: str
    asked: float
    value: float
    passed: bool
    sensitive: str | None
    records_failing: int
    classes_failing: int


@dataclass
class AuditReport:
    """Everything an audit found. ``passed`` is True when every requirement holds.

    Attributes
    ----------
    passed : bool
    metrics : dict
        One value per metric of :data:`~privface.privmetrics.registry.METRICS` for the whole table
        (the worst over sensitive attributes; SA metrics are ``None`` without a sensitive
        attribute).
    by_sensitive : dict
        The same metrics for each sensitive attribute.
    requirements : list of RequirementResult
    risk : RiskSummary
    worst_classes : pandas.DataFrame
        The classes that break the most requirements (or the smallest classes when nothing
        fails): QI values, size and the per-SA metrics.
    n_records, n_classes : int
    qi, sensitive : list of str
    parameters : dict
        Settings the metrics depend on: recursive c, risk threshold, ordered SAs.
    """

    passed: bool
    metrics: dict[str, float | None]
    by_sensitive: dict[str, dict[str, float]]
    requirements: list[RequirementResult]
    risk: RiskSummary
    worst_classes: pd.DataFrame
    n_records: int
    n_classes: int
    qi: list[str]
    sensitive: list[str]
    parameters: dict
    distinguishing_power: pd.DataFrame | None = None
    source: str | None = None
    class_metrics: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> list[RequirementResult]:
        """The requirements that do not hold."""
        return [r for r in self.requirements if not r.passed]

    def to_dict(self) -> dict:
        """A JSON-ready dict following the versioned schema ``privface.audit/1``.

        Unbounded values (an infinite delta, say) are written as the string ``"inf"``.
        """
        return report_to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_text(self) -> str:
        """A plain-text rendering for people."""
        return report_to_text(self)

    def __str__(self) -> str:
        return self.to_text()


def _frame_records(frame: pd.DataFrame | None) -> list[dict]:
    if frame is None or frame.empty:
        return []
    rows = []
    for idx, row in zip(frame.index.tolist(), frame.to_dict(orient="records")):
        entry = {"class": json_value(idx)} if frame.index.name == "class" else {}
        entry.update({str(k): json_value(v) for k, v in row.items()})
        rows.append(entry)
    return rows


def report_to_dict(report: AuditReport) -> dict:
    """The report as a JSON-ready dict (schema ``privface.audit/1``).

    Examples
    --------
    >>> import pandas as pd
    >>> from privface.privmetrics.audit import audit
    >>> d = audit(pd.DataFrame({"a": [1, 1], "s": [1, 2]}), ["a"], ["s"], k=2).to_dict()
    >>> d["schema"], d["passed"], d["metrics"]["k_anonymity"], d["metrics"]["delta_disclosure"]
    ('privface.audit/1', True, 2, 0.0)
    """
    return {
        "schema": SCHEMA,
        "passed": bool(report.passed),
        "verdict": verdict(report),
        "source": report.source,
        "n_records": int(report.n_records),
        "n_classes": int(report.n_classes),
        "quasi_identifiers": list(report.qi),
        "sensitive": list(report.sensitive),
        "parameters": {k: (json_value(v) if not isinstance(v, list) else v)
                       for k, v in report.parameters.items()},
        "requirements": [
            {
                "name": r.name,
                "metric": r.metric,
                "asked": json_value(r.asked),
                "value": json_value(r.value),
                "passed": bool(r.passed),
                "sensitive": r.sensitive,
                "records_failing": int(r.records_failing),
                "share_failing": r.records_failing / report.n_records,
                "classes_failing": int(r.classes_failing),
            }
            for r in report.requirements
        ],
        "metrics": {k: json_value(v) for k, v in report.metrics.items()},
        "by_sensitive": {sa: {k: json_value(v) for k, v in values.items()}
                         for sa, values in report.by_sensitive.items()},
        "risk": {k: json_value(v) for k, v in report.risk.to_dict().items()},
        "worst_classes": _frame_records(report.worst_classes),
        "distinguishing_power": _frame_records(report.distinguishing_power),
    }


def verdict(report: AuditReport) -> str:
    """``"passed"``, ``"failed"``, or ``"no_requirement"`` when nothing was asked.

    ``report.passed`` is True when no requirement was asked (nothing failed); the verdict keeps a
    measurement apart from a pass, so that no one reads "k = 1" as private.

    Examples
    --------
    >>> import pandas as pd
    >>> from privface.privmetrics.audit import audit
    >>> verdict(audit(pd.DataFrame({"a": [1, 2]}), ["a"])), verdict(audit(
    ...     pd.DataFrame({"a": [1, 2]}), ["a"], k=2))
    ('no_requirement', 'failed')
    """
    if not report.requirements:
        return "no_requirement"
    return "passed" if report.passed else "failed"


def headline(report: AuditReport) -> str:
    """The headline risk of a table in one line: its k and the share of records at risk.

    Examples
    --------
    >>> import pandas as pd
    >>> from privface.privmetrics.audit import audit
    >>> headline(audit(pd.DataFrame({"a": [1, 1, 2]}), ["a"]))
    'k = 1; 100.0% of records at prosecutor risk above 0.2 (highest risk 1)'
    """
    risk = report.risk
    return (f"k = {_fmt(report.metrics['k_anonymity'])}; {risk.records_at_risk:.1%} of records "
            f"at prosecutor risk above {_fmt(risk.threshold)} (highest risk {_fmt(risk.highest)})")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if math.isinf(v):
        return "inf"
    return f"{v:.4g}"


def report_to_text(report: AuditReport) -> str:
    """A plain-text rendering of the report for people (no colours, stable layout).

    Examples
    --------
    >>> import pandas as pd
    >>> from privface.privmetrics.audit import audit
    >>> text = audit(pd.DataFrame({"a": [1, 1], "s": [1, 2]}), ["a"], ["s"], k=2).to_text()
    >>> text.splitlines()[0]
    'privface audit: PASSED'
    """
    if report.requirements:
        lines = [f"privface audit: {'PASSED' if report.passed else 'FAILED'}"]
    else:  # a measurement, not a verdict: never "PASSED" over a table with k = 1
        lines = ["privface audit: no requirement given (measured only; ask for one, e.g. "
                 "--k 5, for a verdict)", f"headline: {headline(report)}"]
    if report.source:
        lines.append(f"data: {report.source}")
    lines.append(f"records: {report.n_records:,}   equivalence classes: {report.n_classes:,}")
    lines.append(f"quasi-identifiers ({len(report.qi)}): {', '.join(report.qi)}")
    lines.append(f"sensitive: {', '.join(report.sensitive) if report.sensitive else '(none)'}")
    if report.requirements:
        lines += ["", "Requirements"]
        width = max(len(r.name) for r in report.requirements)
        for r in report.requirements:
            op = by_name(r.metric).op
            asked = r.asked
            verdict = "ok  " if r.passed else "FAIL"
            where = f" [{r.sensitive}]" if r.sensitive and len(report.sensitive) > 1 else ""
            failing = "" if r.passed else (
                f"  ({r.records_failing:,} records / {r.classes_failing:,} classes break it, "
                f"{r.records_failing / report.n_records:.1%})")
            lines.append(f"  {verdict} {r.name:<{width}}  {_fmt(r.value)} {op} {_fmt(asked)}"
                         f"{where}{failing}")
    lines += ["", "Metrics (worst over sensitive attributes)"]
    names = list(report.metrics)
    width = max(len(n) for n in names)
    header = f"  {'metric':<{width}}  {'table':>10}"
    sens = list(report.by_sensitive)
    if len(sens) > 1:
        header += "".join(f"  {s[:14]:>14}" for s in sens)
    lines.append(header)
    for name in names:
        if report.metrics[name] is None:
            continue
        row = f"  {name:<{width}}  {_fmt(report.metrics[name]):>10}"
        if len(sens) > 1:
            row += "".join(f"  {_fmt(report.by_sensitive[s][name]):>14}" for s in sens)
        lines.append(row)
    risk = report.risk
    lines += ["", "Re-identification risk (prosecutor)",
              f"  highest {_fmt(risk.highest)}   average {_fmt(risk.average)}   "
              f"records above {_fmt(risk.threshold)}: {risk.records_at_risk:.1%}   "
              f"sample uniques: {risk.uniques:,}"]
    if report.parameters.get("ordered"):
        lines.append(f"ordered sensitive attributes: {', '.join(report.parameters['ordered'])}")
    lines.append(f"recursive (c,l)-diversity uses c = {_fmt(report.parameters['recursive_c'])}")
    if report.distinguishing_power is not None and not report.distinguishing_power.empty:
        dp = report.distinguishing_power.head(10)
        lines += ["", "Distinguishing power (effect of dropping one quasi-identifier)",
                  f"  {'attribute':<22} {'k':>6} {'uniques':>9} {'uniques removed':>16}"]
        for _, row in dp.iterrows():
            lines.append(f"  {str(row['attribute'])[:22]:<22} {int(row['k']):>6,} "
                         f"{int(row['uniques']):>9,} {int(row['uniques_removed']):>16,}")
    worst = report.worst_classes
    if worst is not None and not worst.empty:
        lines += ["", f"Worst classes (first {len(worst)}; QI values that differ from the "
                      "most common ones)"]
        lines.append(f"  {'class':>8} {'size':>7}  {'breaks':<12}  distinctive QI values")
        for idx, row in worst.iterrows():
            distinctive = row["distinctive"] or "(the most common value of every QI)"
            if len(distinctive) > 120:
                distinctive = distinctive[:117] + "..."
            lines.append(f"  {idx:>8} {int(row['size']):>7}  {row['breaks'] or '-':<12}  "
                         f"{distinctive}")
    return "\n".join(lines)
