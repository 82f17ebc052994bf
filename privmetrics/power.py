"""Which quasi-identifiers drive uniqueness: each attribute's distinguishing power.

For every QI, the table is regrouped without it and k, sample uniques and the prosecutor risk are
measured again. An attribute whose removal turns many uniques into shared classes is the one to
generalise or suppress first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .cell_counts import merge_classes
from .compare import exceeds
from .contingency import ContingencyTable, contingency_table
from .engines import as_contingency
def distinguishing_power(
    data: pd.DataFrame | ContingencyTable,
    qi: Sequence[str] | None = None,
    *,
    threshold: float = 0.2,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """How k, uniques and risk change when each quasi-identifier is dropped.

    Parameters
    ----------
    data : DataFrame or ContingencyTable
    qi : sequence of str, optional
    threshold : float, default 0.2
        Risk threshold for ``records_at_risk``.
    progress : callable, optional
        Called with each attribute's name before it is measured (for progress displays).

    Returns
    -------
    pandas.DataFrame
        One row per QI, sorted by ``uniques_removed`` (descending): ``attribute``, ``k``,
        ``uniques``, ``records_at_risk``, ``average_risk`` measured without the attribute, and
        ``uniques_removed`` / ``k_gain`` relative to the full QI set.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "mole": [1, -1, 1, -1], "hat": [1, 1, 1, 1]})
    >>> dp = distinguishing_power(df, ["Male", "mole", "hat"])
    >>> dp[["attribute", "k", "uniques", "uniques_removed"]].to_dict("records")[0]
    {'attribute': 'Male', 'k': 2, 'uniques': 0, 'uniques_removed': 4}
    """
    if not 0 <= threshold <= 1:
        raise InputError(f"the risk threshold must lie in [0, 1], got {threshold}")
    ct = as_contingency(data, qi)
    base_k = int(ct.class_sizes.min())
    base_uniques = int(np.count_nonzero(ct.class_sizes == 1))
    rows = []
    radices = ct.row_keys.radices
    for j, name in enumerate(ct.qi):
        if progress is not None:
            progress(name)
        if len(ct.qi) == 1:
            sizes = np.array([ct.n_records])
        elif radices is not None:
            sizes = _sizes_without_digit(ct, j, radices[j])
        elif ct.row_counts is not None:  # built from counts (chunked, Dask): one row per class

            sizes = merge_classes(ct, [q for q in ct.qi if q != name])[1]
        else:
            rest = [q for q in ct.qi if q != name]
            sizes = contingency_table(ct.frame, rest).class_sizes
        rows.append({
            "attribute": name,
            "k": int(sizes.min()),
            "uniques": int(np.count_nonzero(sizes == 1)),
            "records_at_risk": float(sizes[exceeds(1.0 / sizes, threshold)].sum() / ct.n_records),
            "average_risk": float(len(sizes) / ct.n_records),
        })
    out = pd.DataFrame(rows, columns=["attribute", "k", "uniques", "records_at_risk",
                                      "average_risk"])
    out["uniques_removed"] = base_uniques - out["uniques"]
    out["k_gain"] = out["k"] - base_k
    return out.sort_values(["uniques_removed", "k_gain"], ascending=False, kind="stable"
                           ).reset_index(drop=True)


def _sizes_without_digit(ct: ContingencyTable, j: int, radix: int) -> np.ndarray:
    """Class sizes after merging classes that differ only in QI j (one digit of the key)."""
    column = ct.row_keys.columns[j]
    keys = ct.class_keys
    if radix == 0 or column.cardinality <= 1:
        return ct.class_sizes
    digit = (keys // radix) % column.cardinality
    merged = keys - digit * radix
    order = np.argsort(merged, kind="stable")
    merged = merged[order]
    sizes = ct.class_sizes[order]
    start = np.flatnonzero(np.concatenate(([True], merged[1:] != merged[:-1])))
    csum = np.concatenate(([0], np.cumsum(sizes)))
    return csum[np.append(start[1:], len(sizes))] - csum[start]
