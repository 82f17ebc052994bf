"""Contingency tables that add up: count a table piece by piece, sum, then audit.

Every metric depends on a table only through its counts per (equivalence class, sensitive value).
Counts of disjoint pieces of a table add up, so a table that does not fit in memory can be counted
a chunk at a time (:mod:`privface.privmetrics.streaming`) or a partition at a time on a cluster
(:mod:`privface.privmetrics.dask_engine`), and the sum turned into the very
:class:`~privface.privmetrics.contingency.ContingencyTable` that :func:`contingency_table` builds
from the whole table in memory. Metrics, the audit report, distinguishing power and counterfactuals
then run unchanged, and give the same numbers.

A :class:`CellCounts` keeps, for each sensitive attribute (SA), the distinct rows of the QI and SA
columns with how many records each stands for (without an SA: the distinct QI rows). Values keep
their column's dtype; missing values are a value of their own. Counting a piece is one pass of the
engine's own row encoding and a hash table, never a Python loop over rows.

Examples
--------
>>> import pandas as pd
>>> from privface.privmetrics.contingency import contingency_table
>>> df = pd.DataFrame({"Male": [1, 1, -1, -1, 1], "identity": [7, 8, 9, 9, 7]})
>>> parts = [count_cells(df.iloc[:2], ["Male"], ["identity"]),
...          count_cells(df.iloc[2:], ["Male"], ["identity"])]
>>> ct = to_contingency(merge_counts(parts))
>>> whole = contingency_table(df, ["Male"], ["identity"])
>>> ct.class_sizes.tolist() == whole.class_sizes.tolist(), ct["identity"].cell_count.tolist()
(True, [2, 2, 1])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .contingency import (ContingencyTable, Ordered, SensitiveCounts, _count_cells, _names,
                          ordered_orders)
from .encoding import encode_rows

_KEY_LIMIT = 1 << 62


@dataclass(frozen=True, eq=False)
class CellCounts:
    """Records per distinct (QI values, SA value) cell of a table or of a piece of one.

    Attributes
    ----------
    qi : list of str
        Quasi-identifier columns.
    sensitive : list of str
        Sensitive attribute columns (possibly none).
    cells : dict
        For each SA name, a DataFrame of the distinct rows of ``qi + [sa]`` (with their source
        dtypes); with no SA, one entry under ``None``: the distinct rows of ``qi``.
    counts : dict
        For each key of ``cells``, the int64 number of records of each of its rows.
    kinds : dict
        For each column, the kinds of values the counted pieces held (``"number"``,
        ``"bool"``, ``"text"``, ``"mixed"``, ``"missing"``): pieces of a CSV file typed on
        their own can disagree, and hashing cannot tell (1 and True are one key).
    """

    qi: list[str]
    sensitive: list[str]
    cells: dict[str | None, pd.DataFrame]
    counts: dict[str | None, np.ndarray]
    kinds: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def n_records(self) -> int:
        """Records counted."""
        first = self.sensitive[0] if self.sensitive else None
        return int(self.counts[first].sum())

    @property
    def n_cells(self) -> int:
        """Rows held, over every SA (what the counts cost in memory)."""
        return sum(len(c) for c in self.counts.values())


def count_cells(frame: pd.DataFrame, qi: Sequence[str],
                sensitive: Sequence[str] | str | None = None) -> CellCounts:
    """Count the records of a table (or of one piece of it) per distinct cell.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to count; it may be empty (a Dask partition can be). Only the QI and SA
        columns are used, and the caller has checked that they exist (see
        :func:`~privface.privmetrics.contingency.check_column_roles`).
    qi : sequence of str
    sensitive : str or sequence of str, optional

    Returns
    -------
    CellCounts

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1], "s": pd.Series(["a", "a", None], dtype=object)})
    >>> counts = count_cells(df, ["Male"], "s")
    >>> counts.cells["s"].to_dict("list"), counts.counts["s"].tolist()
    ({'Male': [1, -1], 's': ['a', None]}, [2, 1])
    """
    qi = _names(qi, "quasi-identifiers")
    sens = _names(sensitive, "sensitive attributes")
    missing = [c for c in qi + sens if c not in frame.columns]
    if missing:
        raise InputError("no such column in this piece of the table", column=missing[0])
    cells: dict[str | None, pd.DataFrame] = {}
    counts: dict[str | None, np.ndarray] = {}
    for key in sens or [None]:
        columns = qi + ([key] if key is not None else [])
        cells[key], counts[key] = distinct_rows(frame[columns], None)
    kinds = {name: frozenset([_kind(frame[name])]) for name in qi + sens}
    return CellCounts(qi=qi, sensitive=sens, cells=cells, counts=counts, kinds=kinds)


def _kind(column: pd.Series) -> str:
    """What a column holds, as CSV type inference sees it: number, bool, text, mixed, missing."""
    if len(column) == 0 or column.isna().all():
        return "missing"
    if pd.api.types.is_bool_dtype(column.dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(column.dtype):
        return "number"
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    return {"string": "text", "boolean": "bool"}.get(inferred, "mixed")


# pandas 2 copies what it concatenates unless told not to; pandas 3 copies lazily (copy-on-write)
# and deprecates the keyword.
_NO_COPY = {"copy": False} if int(pd.__version__.split(".")[0]) < 3 else {}


def merge_counts(parts: Iterable[CellCounts]) -> CellCounts:
    """Sum the counts of pieces of one table (any number, in any order).

    The pieces' columns are concatenated with pandas' usual rules, so a column that is integer in
    one piece and has missing values in another ends up float, as when the whole table is read
    at once.

    Raises
    ------
    InputError
        No pieces, or pieces counted for different columns.

    Examples
    --------
    >>> import pandas as pd
    >>> a = count_cells(pd.DataFrame({"Male": [1, 1]}), ["Male"])
    >>> b = count_cells(pd.DataFrame({"Male": [1, -1]}), ["Male"])
    >>> merge_counts([a, b]).counts[None].tolist()
    [3, 1]
    """
    parts = list(parts)
    if not parts:
        raise InputError("no pieces to add up: the table has no rows")
    first = parts[0]
    for part in parts[1:]:
        if part.qi != first.qi or part.sensitive != first.sensitive:
            raise InputError(f"cannot add up counts of different columns: {first.qi} / "
                             f"{first.sensitive} and {part.qi} / {part.sensitive}")
    if len(parts) == 1:
        return first
    cells: dict[str | None, pd.DataFrame] = {}
    counts: dict[str | None, np.ndarray] = {}
    for key in first.cells:
        # Empty pieces carry no values, only dtypes that could wrongly widen the others.
        nonempty = [p for p in parts if len(p.counts[key])] or parts[:1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas' note on all-NA pieces
            frame = pd.concat([p.cells[key] for p in nonempty], ignore_index=True,
                              **_NO_COPY)
        weights = np.concatenate([p.counts[key] for p in nonempty])
        cells[key], counts[key] = distinct_rows(frame, weights)
    kinds = {name: frozenset().union(*(p.kinds.get(name, frozenset()) for p in parts))
             for name in first.qi + first.sensitive}
    return CellCounts(qi=first.qi, sensitive=first.sensitive, cells=cells, counts=counts,
                      kinds=kinds)


def add_up(parts: Iterable[CellCounts], *, buffer_cells: int = 4_000_000) -> CellCounts:
    """Sum counts that arrive one piece at a time, holding little more than the running total.

    Pieces wait in a buffer that is merged into the total once it holds as many cells as the
    total itself (and at least ``buffer_cells``): each cell is merged a few times at most, and
    memory stays within a few times the final table's size, whatever the number of pieces.

    Parameters
    ----------
    parts : iterable of CellCounts
        Counts of disjoint pieces of one table, e.g. a generator that reads one chunk per step.
    buffer_cells : int, default 4,000,000
        The smallest buffer worth a merge.

    Raises
    ------
    InputError
        No pieces at all.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, -1, 1, 1]})
    >>> chunks = (count_cells(df.iloc[i:i + 1], ["Male"]) for i in range(4))
    >>> add_up(chunks, buffer_cells=2).counts[None].tolist()
    [3, 1]
    """
    total: CellCounts | None = None
    pending: list[CellCounts] = []
    pending_cells = 0
    for part in parts:
        pending.append(part)
        pending_cells += part.n_cells
        if pending_cells >= max(buffer_cells, total.n_cells if total is not None else 0):
            total = merge_counts(([total] if total is not None else []) + pending)
            pending, pending_cells = [], 0
    if pending or total is None:
        total = merge_counts(([total] if total is not None else []) + pending)
    return total


def to_contingency(counts: CellCounts, *, ordered: Ordered = ()) -> ContingencyTable:
    """The contingency table of the counted table, as :func:`contingency_table` would build it.

    Classes, sensitive values and cells come out in the same order and with the same values as
    from the whole table in memory, so every metric and report is the same. The result has no
    rows (``row_counts`` is set): per-record views need the table itself.

    Parameters
    ----------
    counts : CellCounts
        The counts of the whole table (see :func:`merge_counts`).
    ordered : str, sequence of str or mapping, optional
        Sensitive attributes with ordered values (and their orders), as for
        :func:`contingency_table`.

    Raises
    ------
    InputError
        An empty table, an ordered attribute that is not an SA, or not wholly numeric without an
        order.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1], "age": [30, 40, 30]})
    >>> ct = to_contingency(count_cells(df, ["Male"], ["age"]), ordered="age")
    >>> ct.n_records, ct.class_sizes.tolist(), ct["age"].values.tolist(), ct["age"].ordered
    (3, [1, 2], [30, 40], True)
    """
    qi, sens = counts.qi, counts.sensitive
    orders = ordered_orders(ordered)
    ordered_set = set(orders)
    not_sensitive = sorted(ordered_set - set(sens))
    if not_sensitive:
        raise InputError("declared ordered but not a sensitive attribute",
                         column=not_sensitive[0])
    if counts.n_records == 0:
        raise InputError("the table has no rows")
    if sens:
        classes, sizes = distinct_rows(counts.cells[sens[0]][qi], counts.counts[sens[0]])
    else:
        classes, sizes = counts.cells[None], counts.counts[None]
    # Class order is key order (as in memory): sort the class rows so that row i is class i.
    order = np.argsort(encode_rows(classes, qi).keys, kind="stable")
    classes = classes.take(order).reset_index(drop=True)
    sizes = sizes[order]
    row_keys = encode_rows(classes, qi)
    sens_counts: dict[str, SensitiveCounts] = {}
    for name in sens:
        cells = counts.cells[name]
        # Every class occurs among each SA's cells, so each QI column holds the same values as
        # in `classes` and encodes to the same codes: the cells' class keys are the classes'.
        keys = encode_rows(cells, qi)
        sc, class_keys = _count_cells(cells[name], name, keys.keys, keys.cardinality,
                                      ordered=name in ordered_set, order=orders.get(name),
                                      weights=counts.counts[name])
        if not (np.array_equal(class_keys, row_keys.keys)
                and np.array_equal(sc.class_sizes, sizes)):
            raise RuntimeError(f"the counts of {name!r} do not cover the same classes as the "
                               "other columns: they were not counted from one table")
        sens_counts[name] = sc
    return ContingencyTable(qi=list(qi), sensitive=list(sens), n_records=int(sizes.sum()),
                            class_keys=row_keys.keys, class_sizes=sizes, row_keys=row_keys,
                            frame=classes, _sensitive=sens_counts, row_counts=sizes)


def merge_classes(ct: ContingencyTable, keep: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Classes of a table built from counts when only the QIs ``keep`` are used.

    Dropping QIs merges classes. A table built from counts has one frame row per class, so the
    merged classes come from regrouping those rows, weighted by the class sizes. (Tables in
    memory regroup their keys or rows instead; this is for the rare counted table whose keys had
    to be re-numbered, see :func:`~privface.privmetrics.encoding.combine_codes`.)

    Returns
    -------
    new_of_old : ndarray of int64, shape (classes,)
        The merged class of each class.
    sizes : ndarray of int64
        Records per merged class.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1], "Young": [1, -1, 1]})
    >>> ct = to_contingency(count_cells(df, ["Male", "Young"]))
    >>> [a.tolist() for a in merge_classes(ct, ["Young"])]
    [[1, 0, 1], [1, 2]]
    """
    if ct.row_counts is None:
        raise InputError("merge_classes needs a table built from counts (row_counts is set)")
    keys = encode_rows(ct.frame, list(keep)).keys
    merged, new_of_old = np.unique(keys, return_inverse=True)
    new_of_old = new_of_old.reshape(-1).astype(np.int64, copy=False)
    sizes = np.bincount(new_of_old, weights=ct.row_counts, minlength=len(merged))
    return new_of_old, sizes.astype(np.int64)


def distinct_rows(frame: pd.DataFrame, weights: np.ndarray | None
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of ``frame`` (first occurrences) and the records each stands for.

    Rows are compared through the engine's row keys (missing values equal), found with a hash
    table in one pass: ``pd.factorize`` numbers keys by first appearance, so the first row of each
    key is where the running maximum of the codes steps up.
    """
    n = len(frame)
    if n == 0:
        return frame.reset_index(drop=True), np.zeros(0, dtype=np.int64)
    codes, uniques = pd.factorize(_row_keys(frame), sort=False)
    n_distinct = len(uniques)
    if weights is None:
        counts = np.bincount(codes, minlength=n_distinct).astype(np.int64, copy=False)
    else:
        # float64 sums are exact for any count below 2**53.
        counts = np.bincount(codes, weights=weights, minlength=n_distinct).astype(np.int64)
    is_first = np.empty(n, dtype=bool)
    is_first[0] = True
    np.greater(codes[1:], np.maximum.accumulate(codes)[:-1], out=is_first[1:])
    first = np.flatnonzero(is_first)
    return frame.take(first).reset_index(drop=True), counts


def _row_keys(frame: pd.DataFrame) -> np.ndarray:
    """One int64 per row, equal exactly when the rows are equal.

    The last column is the SA, often a wide integer such as a person's number: rather than
    encoding it (a sorted factorisation, the costliest step), its value is placed beside the QI
    key when both fit in 62 bits; the hash table in :func:`distinct_rows` does the rest.
    """
    columns = list(frame.columns)
    last = frame[columns[-1]].to_numpy()
    if len(columns) > 1 and last.dtype.kind in "iu" and len(last):
        lo, hi = int(last.min()), int(last.max())
        head = encode_rows(frame, columns[:-1])
        span = hi - lo + 1
        if head.cardinality * span < _KEY_LIMIT:
            keys = head.keys * span
            keys += last.astype(np.int64) - lo  # lo <= value <= hi < 2**62: no overflow
            return keys
    return encode_rows(frame, columns).keys
