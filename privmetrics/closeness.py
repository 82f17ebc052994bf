"""t-closeness: the Earth Mover's Distance between each class's and the table's SA distribution.

Three ground distances (docs/metrics.md, "t-closeness ground distances"):

* nominal (every SA unless declared otherwise): equal distance, EMD = half the L1 distance;
* ordered (declared by the user): ``(1/(m-1)) sum_i |sum_{j<=i} (P_E,j - P_j)|`` over the sorted
  values;
* a user-given ground-distance matrix: exact EMD through POT.

Nominal is the safe default: its EMD is never below the ordered one, and an integer-coded identity
is not ordered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .contingency import ContingencyTable, Ordered, SensitiveCounts, ordered_orders
from .engines import as_contingency

Data = pd.DataFrame | ContingencyTable
GroundDistance = np.ndarray | pd.DataFrame


def nominal_emd_per_class(sc: SensitiveCounts) -> np.ndarray:
    """EMD with equal ground distance, ``0.5 * sum_s |P_E(s) - P(s)|``, per class.

    Values absent from a class contribute ``P(s)`` each. Their total mass is counted in integers
    (records of the table whose value the class lacks), so identical distributions give exactly 0.
    """
    n_classes = len(sc.class_start) - 1
    present_diff = np.bincount(sc.cell_class, weights=np.abs(sc.cell_q - sc.cell_p),
                               minlength=n_classes)
    present_records = np.bincount(sc.cell_class, weights=sc.overall[sc.cell_value],
                                  minlength=n_classes)
    n = sc.overall.sum()
    absent_mass = (n - present_records) / n
    return np.clip(0.5 * (present_diff + absent_mass), 0.0, 1.0)


def ordered_emd_per_class(sc: SensitiveCounts) -> np.ndarray:
    """EMD with the ordered ground distance over ``sc.values`` in order, per class.

    ``(1/(m-1)) sum_i |Q_E(i) - P(i)|`` with Q_E, P the cumulative distributions. Q_E is constant
    between the values present in E and P is non-decreasing, so each such stretch is summed in
    closed form from prefix sums of P: the cost is one pass over the non-empty cells, not
    classes x values.
    """
    m = sc.m
    n_classes = len(sc.class_start) - 1
    if m == 1:
        return np.zeros(n_classes)
    cum_p = np.cumsum(sc.overall) / sc.overall.sum()  # P(i), exactly 1 at the end
    prefix = np.concatenate(([0.0], np.cumsum(cum_p)))  # prefix[i] = sum_{j<i} P(j)
    cls, v, cnt = sc.cell_class, sc.cell_value, sc.cell_count
    csum = np.cumsum(cnt)
    class_base = (csum - cnt)[sc.class_start[:-1]]
    q_cum = (csum - class_base[cls]) / sc.class_sizes[cls]  # Q_E from this value on
    hi = np.empty_like(v)
    hi[:-1] = v[1:]
    hi[sc.class_start[1:] - 1] = m  # the last value of a class runs to the end
    split = np.clip(np.searchsorted(cum_p, q_cum, side="right"), v, hi)
    stretch = (q_cum * (split - v) - (prefix[split] - prefix[v])
               + (prefix[hi] - prefix[split]) - q_cum * (hi - split))
    before_first = prefix[v[sc.class_start[:-1]]]  # Q_E = 0 before the class's first value
    total = np.bincount(cls, weights=stretch, minlength=n_classes) + before_first
    return np.clip(total / (m - 1), 0.0, 1.0)


def matrix_emd_per_class(sc: SensitiveCounts, ground_distance: GroundDistance) -> np.ndarray:
    """Exact EMD under a user-given ground-distance matrix (POT), per class.

    Classes with the same distribution share one transport problem, so the number of POT calls is
    the number of distinct class distributions.
    """
    import ot  # POT is a core dependency, imported here to keep `import privmetrics` quick

    dist = _ground_matrix(sc, ground_distance)
    n_classes = len(sc.class_start) - 1
    p = sc.p
    # Identify classes with identical count vectors by hashing their sparse cells.
    dense_key = pd.DataFrame({"c": sc.cell_class, "v": sc.cell_value, "n": sc.cell_count})
    signature = dense_key.groupby("c", sort=True).apply(
        lambda g: tuple(zip(g["v"].tolist(), (g["n"] / g["n"].sum()).round(15).tolist())),
        include_groups=False)
    codes, uniques = pd.factorize(signature)
    emd_unique = np.empty(len(uniques))
    for i, cells in enumerate(uniques):
        idx = np.fromiter((c[0] for c in cells), dtype=np.int64)
        q = np.fromiter((c[1] for c in cells), dtype=np.float64)
        q = q / q.sum()
        emd_unique[i] = ot.emd2(q, p, np.ascontiguousarray(dist[idx]))
    out = np.empty(n_classes)
    out[signature.index.to_numpy()] = emd_unique[codes]
    return out


def _ground_matrix(sc: SensitiveCounts, ground_distance: GroundDistance) -> np.ndarray:
    m = sc.m
    if isinstance(ground_distance, pd.DataFrame):
        missing = [v for v in sc.values if v not in ground_distance.index
                   or v not in ground_distance.columns]
        if missing:
            raise InputError(f"the ground-distance matrix has no row/column for value "
                             f"{missing[0]!r}", column=sc.name)
        dist = ground_distance.loc[list(sc.values), list(sc.values)].to_numpy()
    else:
        dist = np.asarray(ground_distance)
        if dist.shape != (m, m):
            raise InputError(f"the ground-distance matrix must be {m}x{m} (one row and column "
                             f"per distinct value, in sorted order), got {dist.shape}",
                             column=sc.name)
    try:
        dist = dist.astype(float)
    except (TypeError, ValueError):  # a cell such as "x" in a matrix read from a file
        raise InputError("the ground-distance matrix must hold finite non-negative numbers",
                         column=sc.name) from None
    if not np.all(np.isfinite(dist)) or (dist < 0).any():
        raise InputError("the ground-distance matrix must hold finite non-negative numbers",
                         column=sc.name)
    return np.ascontiguousarray(dist)


def without_matrices(ordered: Ordered, ground_distance: Mapping | None) -> dict[str, list | None]:
    """The ordered SAs (with their orders) less those measured through a ground-distance matrix.

    A matrix replaces the ordered distance, so a column that has one needs no order of its own:
    declaring it ordered as well must not fail because its values are not numbers.

    Examples
    --------
    >>> without_matrices(["age", "level"], {"level": [[0, 1], [1, 0]]})
    {'age': None}
    """
    return {name: order for name, order in ordered_orders(ordered).items()
            if name not in (ground_distance or {})}


def emd_per_class(sc: SensitiveCounts, ground_distance: GroundDistance | None = None
                  ) -> np.ndarray:
    """EMD of each class under the attribute's ground distance (matrix, ordered or nominal)."""
    if ground_distance is not None:
        return matrix_emd_per_class(sc, ground_distance)
    if sc.ordered:
        return ordered_emd_per_class(sc)
    return nominal_emd_per_class(sc)


def t_closeness(
    data: Data,
    qi: Sequence[str] | None = None,
    sensitive: Sequence[str] | str | None = None,
    *,
    ordered: Ordered = (),
    ground_distance: Mapping[str, GroundDistance] | None = None,
) -> float:
    """t-closeness: the largest EMD between a class's and the table's SA distribution.

    Parameters
    ----------
    data : DataFrame or ContingencyTable
    qi, sensitive : column names (needed with a DataFrame)
    ordered : SAs declared ordered, or a mapping of SA to its order of values (with a DataFrame;
        a ContingencyTable carries its own); see :func:`~.contingency.contingency_table`
    ground_distance : mapping of SA name to a matrix, optional
        A square matrix over the SA's distinct values (sorted order, or a DataFrame labelled by
        value): exact EMD through POT.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "age": [20, 30, 40, 50]})
    >>> t_closeness(df, ["Male"], "age")
    0.5
    >>> round(t_closeness(df, ["Male"], "age", ordered="age"), 4)
    0.3333
    """
    ground_distance = dict(ground_distance or {})
    ct = as_contingency(data, qi, sensitive, ordered=without_matrices(ordered, ground_distance))
    unknown = set(ground_distance) - set(ct.sensitive)
    if unknown:
        raise InputError("a ground-distance matrix was given for a column that is not a "
                         "sensitive attribute", column=sorted(unknown)[0])
    return float(max(emd_per_class(sc, ground_distance.get(sc.name)).max()
                     for sc in ct.select(sensitive)))
