"""The metrics of an audit, one entry each: the one place that says what a metric is.

Each :class:`Metric` names the report key (also the JSON key and the column name), the human
label, the direction of its requirement (``"at_least"``: larger is more private, such as k;
``"at_most"``: smaller is, such as t), whether it is measured per sensitive attribute, how its
per-class values are computed, and the requirement keyword that bounds it (``k=`` in
:func:`~privface.privmetrics.audit.audit`, ``--k`` on the command line). The audit, the
counterfactuals, the per-class views, the text, JSON and HTML reports read this registry, so adding
a metric is one :func:`register` call (or one entry in the list at the end of this module). The
published JSON schema (``schema/audit-v1.json``) lists the built-in metrics by name, so a new
built-in metric is also a new schema version (a test compares the two).

Every verdict compares through :mod:`.compare` (with its tolerance), in the metric's direction.

Examples
--------
>>> [m.name for m in metrics()][:3]
['k_anonymity', 'l_diversity', 'entropy_l_diversity']
>>> by_requirement("t").label, by_requirement("t").direction
('t-closeness', 'at_most')
>>> METRICS["k_anonymity"], METRICS["t_closeness"]
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .closeness import emd_per_class
from .compare import exceeds, falls_short
from .diversity import entropy_l_per_class, recursive_l_per_class
from .likeness import basic_beta_per_class, delta_disclosure_per_class, enhanced_beta_per_class

Direction = Literal["at_least", "at_most"]


@dataclass(frozen=True)
class Metric:
    """One metric of the audit and the requirement that bounds it.

    Attributes
    ----------
    name : str
        Key in :attr:`AuditReport.metrics`, in the JSON report and in per-class columns.
    label : str
        Human name, used for requirement verdicts and in the HTML report.
    direction : {"at_least", "at_most"}
        ``"at_least"`` when larger values are more private (the requirement is a lower bound).
    per_sa : bool
        Measured once per sensitive attribute (the table value is the worst over them).
    per_class : callable, optional
        The value of every class. For a per-SA metric ``per_class(sc, c=..., ground_distance=...)``
        with ``sc`` a :class:`~.contingency.SensitiveCounts`; otherwise ``per_class(ct)`` with
        ``ct`` the contingency table (anything with ``class_sizes``).
    of_table : callable, optional
        ``of_table(ct, risk)``: the table value of a metric that has no per-class values.
    requirement : str, optional
        The keyword of the requirement that bounds this metric (``k`` for ``k=`` and ``--k``).
    valid : callable, optional
        Whether a value asked for the requirement is acceptable.
    expected : str
        What ``valid`` accepts, for the error message.
    bound : callable, optional
        ``bound(requirements)``: the threshold the per-class values are compared with, when it
        is not the asked value itself (recursive (c,l): c is asked, the values are compared
        with l).
    requirement_label : callable, optional
        ``requirement_label(asked, requirements)``: the verdict's name when it depends on the
        values asked.

    Examples
    --------
    >>> m = by_name("l_diversity")
    >>> m.requirement, m.per_sa, m.larger_is_better
    ('l', True, True)
    """

    name: str
    label: str
    direction: Direction
    per_sa: bool = False
    per_class: Callable[..., np.ndarray] | None = None
    of_table: Callable[[Any, Any], float] | None = None
    requirement: str | None = None
    valid: Callable[[float], bool] | None = None
    expected: str = ""
    bound: Callable[[Any], float] | None = None
    requirement_label: Callable[[float, Any], str] | None = None

    @property
    def larger_is_better(self) -> bool:
        """True when larger values are more private (``direction == "at_least"``)."""
        return self.direction == "at_least"

    @property
    def op(self) -> str:
        """``">="`` or ``"<="``: how a value is compared with its requirement."""
        return ">=" if self.larger_is_better else "<="

    def breaks(self, values: Any, bound: float) -> np.ndarray | bool:
        """Whether each value breaks the bound, up to the tolerance of :mod:`.compare`."""
        return falls_short(values, bound) if self.larger_is_better else exceeds(values, bound)

    def worst(self, values: Any) -> Any:
        """The least private of ``values`` (an array or a sequence)."""
        return np.min(values) if self.larger_is_better else np.max(values)

    def pick_worst(self, *args: Any, **kwargs: Any) -> Any:
        """:func:`min` or :func:`max`, whichever picks the least private value."""
        return min(*args, **kwargs) if self.larger_is_better else max(*args, **kwargs)


def _whole_at_least_one(v: float) -> bool:
    return float(v).is_integer() and v >= 1


_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the audit (after the others, in display order).

    Raises
    ------
    ValueError
        When a metric of that name or requirement keyword is already registered, or a per-SA
        metric has no ``per_class``.

    Examples
    --------
    >>> import numpy as np
    >>> toy = register(Metric("toy", "toy metric", "at_least", per_sa=True,
    ...                       per_class=lambda sc, **_: np.asarray(sc.distinct)))
    >>> "toy" in METRICS
    True
    >>> unregister("toy").name
    'toy'
    """
    if metric.name in _REGISTRY:
        raise ValueError(f"a metric named {metric.name!r} is already registered")
    if metric.requirement is not None and metric.requirement in requirement_keys():
        raise ValueError(f"requirement keyword {metric.requirement!r} is already taken")
    if metric.direction not in ("at_least", "at_most"):
        raise ValueError(f"direction must be 'at_least' or 'at_most', got {metric.direction!r}")
    if metric.per_sa and metric.per_class is None:
        raise ValueError(f"per-SA metric {metric.name!r} needs per_class")
    if not metric.per_sa and metric.per_class is None and metric.of_table is None:
        raise ValueError(f"metric {metric.name!r} needs per_class or of_table")
    if metric.requirement is not None and metric.per_class is None:
        raise ValueError(f"metric {metric.name!r} has a requirement but no per-class values")
    _REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> Metric:
    """Remove a metric from the registry and return it.

    Examples
    --------
    >>> unregister("no such metric")
    Traceback (most recent call last):
    ...
    KeyError: 'no such metric'
    """
    return _REGISTRY.pop(name)


def metrics() -> tuple[Metric, ...]:
    """Every registered metric, in display order.

    Examples
    --------
    >>> metrics()[-1].name
    'uniques'
    """
    return tuple(_REGISTRY.values())


def sa_metrics() -> tuple[Metric, ...]:
    """The metrics measured per sensitive attribute, in display order.

    Examples
    --------
    >>> sa_metrics()[0].name
    'l_diversity'
    """
    return tuple(m for m in _REGISTRY.values() if m.per_sa)


def by_name(name: str) -> Metric:
    """The metric of that name (a key of ``AuditReport.metrics``).

    Examples
    --------
    >>> by_name("delta_disclosure").label
    'delta-disclosure'
    """
    return _REGISTRY[name]


def requirement_keys() -> tuple[str, ...]:
    """The requirement keywords, in display order.

    Examples
    --------
    >>> requirement_keys()
    ('k', 'l', 'entropy_l', 'c', 't', 'beta', 'enhanced_beta', 'delta')
    """
    return tuple(m.requirement for m in _REGISTRY.values() if m.requirement is not None)


def by_requirement(key: str) -> Metric:
    """The metric bounded by the requirement keyword ``key``.

    Examples
    --------
    >>> by_requirement("c").name
    'recursive_c_l_diversity'
    """
    for m in _REGISTRY.values():
        if m.requirement == key:
            return m
    raise KeyError(key)


class _Directions(Mapping[str, bool]):
    """A live view of the registry: metric name -> whether larger values are more private."""

    def __getitem__(self, name: str) -> bool:
        return _REGISTRY[name].larger_is_better

    def __iter__(self) -> Iterator[str]:
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Metric names of the report, in display order, with whether larger values are more private.
METRICS: Mapping[str, bool] = _Directions()


def _recursive_label(asked: float, requirements: Any) -> str:
    return f"recursive ({asked:g},{requirements.recursive_l})-diversity"


for _metric in (
    Metric("k_anonymity", "k-anonymity", "at_least", per_class=lambda ct: ct.class_sizes,
           requirement="k", valid=_whole_at_least_one, expected="a whole number >= 1"),
    Metric("l_diversity", "distinct l-diversity", "at_least", per_sa=True,
           per_class=lambda sc, **_: sc.distinct,
           requirement="l", valid=_whole_at_least_one, expected="a whole number >= 1"),
    Metric("entropy_l_diversity", "entropy l-diversity", "at_least", per_sa=True,
           per_class=lambda sc, **_: entropy_l_per_class(sc),
           requirement="entropy_l", valid=lambda v: v >= 1, expected="a number >= 1"),
    Metric("recursive_c_l_diversity", "recursive (c,l)-diversity", "at_least", per_sa=True,
           per_class=lambda sc, *, c, **_: recursive_l_per_class(sc, c),
           requirement="c", valid=lambda v: v > 0, expected="a number > 0",
           bound=lambda r: r.recursive_l, requirement_label=_recursive_label),
    Metric("t_closeness", "t-closeness", "at_most", per_sa=True,
           per_class=lambda sc, *, ground_distance=None, **_: emd_per_class(sc, ground_distance),
           requirement="t", valid=lambda v: 0 <= v <= 1, expected="a number in [0, 1]"),
    Metric("basic_beta_likeness", "basic beta-likeness", "at_most", per_sa=True,
           per_class=lambda sc, **_: basic_beta_per_class(sc),
           requirement="beta", valid=lambda v: v >= 0, expected="a number >= 0"),
    Metric("enhanced_beta_likeness", "enhanced beta-likeness", "at_most", per_sa=True,
           per_class=lambda sc, **_: enhanced_beta_per_class(sc),
           requirement="enhanced_beta", valid=lambda v: v >= 0, expected="a number >= 0"),
    Metric("delta_disclosure", "delta-disclosure", "at_most", per_sa=True,
           per_class=lambda sc, **_: delta_disclosure_per_class(sc),
           requirement="delta", valid=lambda v: v >= 0, expected="a number >= 0"),
    Metric("max_prosecutor_risk", "highest prosecutor risk", "at_most",
           of_table=lambda ct, risk: risk.highest),
    Metric("uniques", "sample uniques", "at_most", of_table=lambda ct, risk: risk.uniques),
):
    register(_metric)
del _metric
