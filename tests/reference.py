"""A deliberately naive brute-force reference for every privmetrics metric.

Written from the definitions in docs/metrics.md and the conventions below, and nothing else:
plain lists, dicts and loops over rows, no numpy in the metrics themselves, nothing shared with the
engine. It is slow on purpose and only meant for small random tables in the tests.

Conventions (the spec):

* rows are taken by position; the index is ignored;
* every missing marker (None, NaN, pd.NA, NaT) is one value of its own, the same in a column;
* an equivalence class is a distinct tuple of QI values;
* several sensitive attributes: each is measured on its own, the worst is reported (min for k and
  the l kinds, max for t, beta, delta and recursive c).

Every ``*_per_class`` function returns ``{class key (tuple of QI cells): value}`` and every
table-level function the worst over classes and sensitive attributes.
"""

from __future__ import annotations

import math

import pandas as pd


class _Missing:
    """The one value all missing markers of a column become."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __hash__(self) -> int:
        return 0x5EED

    def __eq__(self, other) -> bool:
        return other is self


MISSING = _Missing()


def is_missing(x) -> bool:
    """None, float NaN (Python or numpy), pd.NA and NaT are missing; everything else is a value."""
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return x != x  # NaN is the only value not equal to itself
    except TypeError:  # pragma: no cover - exotic objects
        return False


def cell(x):
    """A hashable stand-in for one table cell, with all missing markers folded into MISSING."""
    return MISSING if is_missing(x) else x


def column(df: pd.DataFrame, name: str) -> list:
    """The cells of one column, by position (``tolist`` ignores the index)."""
    return [cell(x) for x in df[name].tolist()]


def _as_list(names) -> list:
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    return list(names)


def row_keys(df: pd.DataFrame, qi) -> list:
    """Each row's class key: the tuple of its QI cells, in row order."""
    cols = [column(df, q) for q in _as_list(qi)]
    keys = []
    for i in range(len(df)):
        keys.append(tuple(col[i] for col in cols))
    return keys


def classes(df: pd.DataFrame, qi) -> dict:
    """{class key: [row positions]}."""
    out: dict = {}
    for i, key in enumerate(row_keys(df, qi)):
        out.setdefault(key, []).append(i)
    return out


def _counts(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def class_counts(df: pd.DataFrame, qi, sa: str) -> tuple[dict, dict, int]:
    """({class key: {value: count}}, {value: count over the table}, n)."""
    sa_col = column(df, sa)
    per_class: dict = {}
    for key, rows in classes(df, qi).items():
        per_class[key] = _counts(sa_col[i] for i in rows)
    return per_class, _counts(sa_col), len(sa_col)


def sorted_values(df: pd.DataFrame, sa: str) -> list:
    """The distinct values of a column in the spec's order.

    Ascending, missing last; the category dtype uses its category order; bools sort False < True;
    text that is wholly numbers sorts as numbers ("9" < "10").
    """
    series = df[sa]
    present = set(column(df, sa))
    if isinstance(series.dtype, pd.CategoricalDtype):
        order = [c for c in series.dtype.categories.tolist() if c in present]
    else:
        order = [v for v in present if v is not MISSING]
        if order and all(isinstance(v, str) and _number(v) is not None for v in order):
            return sorted(order, key=_number) + ([MISSING] if MISSING in present else [])
        try:
            order = sorted(order)
        except TypeError:  # mixed types (str and int): no order, fine for nominal metrics
            order = sorted(order, key=repr)
    if MISSING in present:
        order.append(MISSING)
    return order


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --- k-anonymity and risk -----------------------------------------------------------------------

def k_anonymity(df, qi) -> int:
    return min(len(rows) for rows in classes(df, qi).values())


def record_risk(df, qi) -> list:
    cls = classes(df, qi)
    return [1.0 / len(cls[key]) for key in row_keys(df, qi)]


def reidentification_risk(df, qi, threshold: float = 0.2) -> dict:
    cls = classes(df, qi)
    n = len(df)
    sizes = [len(rows) for rows in cls.values()]
    at_risk = 0
    for size in sizes:
        if 1.0 / size > threshold:
            at_risk += size
    return {
        "highest": 1.0 / min(sizes),
        "average": len(sizes) / n,
        "threshold": threshold,
        "records_at_risk": at_risk / n,
        "uniques": sum(1 for size in sizes if size == 1),
    }


# --- l-diversity --------------------------------------------------------------------------------

def distinct_l_per_class(df, qi, sa) -> dict:
    per_class, _, _ = class_counts(df, qi, sa)
    return {key: len(cnt) for key, cnt in per_class.items()}


def entropy_l_per_class(df, qi, sa) -> dict:
    per_class, _, _ = class_counts(df, qi, sa)
    out = {}
    for key, cnt in per_class.items():
        size = sum(cnt.values())
        h = 0.0
        for r in cnt.values():
            q = r / size
            h -= q * math.log(q)
        out[key] = math.exp(h)
    return out


def _descending(cnt: dict) -> list:
    return sorted(cnt.values(), reverse=True)


def recursive_holds(counts_desc: list, c: float, l: int) -> bool:
    """(c, l) holds for one class iff r_1 < c * (r_l + ... + r_m); fails when m < l."""
    if l > len(counts_desc):
        return False
    return counts_desc[0] < c * sum(counts_desc[l - 1:])


def recursive_l_per_class(df, qi, sa, c: float) -> dict:
    per_class, _, _ = class_counts(df, qi, sa)
    out = {}
    for key, cnt in per_class.items():
        r = _descending(cnt)
        best = 0
        for l in range(1, len(r) + 1):
            if recursive_holds(r, c, l):
                best = l
        out[key] = best
    return out


def recursive_c_per_class(df, qi, sa, l: int) -> dict:
    per_class, _, _ = class_counts(df, qi, sa)
    out = {}
    for key, cnt in per_class.items():
        r = _descending(cnt)
        if len(r) < l:
            out[key] = math.inf
        else:
            out[key] = float(r[0] // sum(r[l - 1:]) + 1)
    return out


# --- distributions ------------------------------------------------------------------------------

def _distributions(df, qi, sa):
    """(values in spec order, table distribution, {class key: class distribution}) as lists."""
    per_class, overall, n = class_counts(df, qi, sa)
    values = sorted_values(df, sa)
    p = [overall[v] / n for v in values]
    qs = {}
    for key, cnt in per_class.items():
        size = sum(cnt.values())
        qs[key] = [cnt.get(v, 0) / size for v in values]
    return values, p, qs


# --- t-closeness --------------------------------------------------------------------------------

def nominal_emd_per_class(df, qi, sa) -> dict:
    _, p, qs = _distributions(df, qi, sa)
    return {key: 0.5 * sum(abs(qi_ - pi) for qi_, pi in zip(q, p)) for key, q in qs.items()}


def ordered_emd_per_class(df, qi, sa) -> dict:
    values, p, qs = _distributions(df, qi, sa)
    m = len(values)
    out = {}
    for key, q in qs.items():
        if m == 1:
            out[key] = 0.0
            continue
        total = 0.0
        for i in range(m):
            running = 0.0
            for j in range(i + 1):
                running += q[j] - p[j]
            total += abs(running)
        out[key] = total / (m - 1)
    return out


def transport_cost(q: list, p: list, dist) -> float:
    """Exact EMD: the cheapest flow moving q onto p under ``dist``, by linear programming."""
    from scipy.optimize import linprog

    m = len(p)
    cost = [float(dist[i][j]) for i in range(m) for j in range(m)]
    a_eq, b_eq = [], []
    for i in range(m):  # everything in bin i of q leaves it
        a_eq.append([1.0 if k // m == i else 0.0 for k in range(m * m)])
        b_eq.append(q[i])
    for j in range(m):  # bin j of p receives exactly p_j
        a_eq.append([1.0 if k % m == j else 0.0 for k in range(m * m)])
        b_eq.append(p[j])
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10,
                           "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:  # pragma: no cover - the problem is always feasible and bounded
        raise RuntimeError(res.message)
    return float(res.fun)


def matrix_emd_per_class(df, qi, sa, dist) -> dict:
    _, p, qs = _distributions(df, qi, sa)
    return {key: transport_cost(q, p, dist) for key, q in qs.items()}


def emd_per_class(df, qi, sa, *, ordered=(), ground_distance=None) -> dict:
    ground_distance = ground_distance or {}
    if sa in ground_distance:
        return matrix_emd_per_class(df, qi, sa, ground_distance[sa])
    if sa in _as_list(ordered):
        return ordered_emd_per_class(df, qi, sa)
    return nominal_emd_per_class(df, qi, sa)


# --- beta-likeness and delta-disclosure ---------------------------------------------------------

def basic_beta_per_class(df, qi, sa) -> dict:
    _, p, qs = _distributions(df, qi, sa)
    out = {}
    for key, q in qs.items():
        best = 0.0
        for qi_, pi in zip(q, p):
            if qi_ > pi:
                best = max(best, (qi_ - pi) / pi)
        out[key] = best
    return out


def enhanced_beta_per_class(df, qi, sa) -> dict:
    """Smallest beta with gain(s) <= min(beta, -ln P(s)) for every over-represented s; else inf."""
    _, p, qs = _distributions(df, qi, sa)
    out = {}
    for key, q in qs.items():
        best = 0.0
        for qi_, pi in zip(q, p):
            if qi_ > pi:
                gain = (qi_ - pi) / pi
                if gain > -math.log(pi):
                    best = math.inf
                    break
                best = max(best, gain)
        out[key] = best
    return out


def delta_disclosure_per_class(df, qi, sa) -> dict:
    _, p, qs = _distributions(df, qi, sa)
    out = {}
    for key, q in qs.items():
        worst = 0.0
        for qi_, pi in zip(q, p):
            if qi_ == 0:
                worst = math.inf
                break
            worst = max(worst, abs(math.log(qi_ / pi)))
        out[key] = worst
    return out


# --- table level: worst class, worst sensitive attribute ----------------------------------------

def _worst(per_class_fn, df, qi, sensitive, pick, *args, **kwargs):
    values = []
    for sa in _as_list(sensitive):
        values.extend(per_class_fn(df, qi, sa, *args, **kwargs).values())
    return pick(values)


def l_diversity(df, qi, sensitive) -> int:
    return _worst(distinct_l_per_class, df, qi, sensitive, min)


def entropy_l_diversity(df, qi, sensitive) -> float:
    return _worst(entropy_l_per_class, df, qi, sensitive, min)


def recursive_c_l_diversity(df, c, qi, sensitive) -> int:
    return _worst(recursive_l_per_class, df, qi, sensitive, min, c)


def recursive_c(df, l, qi, sensitive) -> float:
    return _worst(recursive_c_per_class, df, qi, sensitive, max, l)


def t_closeness(df, qi, sensitive, *, ordered=(), ground_distance=None) -> float:
    return _worst(emd_per_class, df, qi, sensitive, max, ordered=ordered,
                  ground_distance=ground_distance)


def basic_beta_likeness(df, qi, sensitive) -> float:
    return _worst(basic_beta_per_class, df, qi, sensitive, max)


def enhanced_beta_likeness(df, qi, sensitive) -> float:
    return _worst(enhanced_beta_per_class, df, qi, sensitive, max)


def delta_disclosure(df, qi, sensitive) -> float:
    return _worst(delta_disclosure_per_class, df, qi, sensitive, max)
