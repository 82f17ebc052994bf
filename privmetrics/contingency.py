"""The contingency table: the one sufficient statistic every metric is computed from.

A table's equivalence classes are its distinct combinations of quasi-identifier (QI) values. For
each sensitive attribute (SA) the engine keeps, sparsely, the count of every (class, value) cell
that occurs. Building it costs one sort of one integer key per row and SA; every metric is then a
few vectorised passes over the non-empty cells, never a loop over rows or classes.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, 1, 1, -1],
...                    "identity": [7, 8, 9, 9]})
>>> ct = contingency_table(df, qi=["Male", "Young"], sensitive=["identity"])
>>> ct.n_records, ct.n_classes, ct.class_sizes.tolist()
(4, 3, [1, 1, 2])
>>> ct["identity"].values.tolist()
[7, 8, 9]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.validation import did_you_mean

from .encoding import ColumnCodes, RowKeys, encode_column, encode_rows

_INT64_LIMIT = 1 << 63

#: Ordered SAs: names (each ordered by its values), or a mapping of name to an explicit order
#: (smallest first) or None.
Ordered = Sequence[str] | str | Mapping[str, Sequence | None]


@dataclass(frozen=True, eq=False)
class SensitiveCounts:
    """Counts of one sensitive attribute per equivalence class, stored sparsely.

    Cells are sorted by class, then by value; only cells with a positive count are kept.

    Attributes
    ----------
    name : str
        The column.
    values : pandas.Index
        The distinct values of the column in the whole table (``m`` of them), sorted when the
        values can be ordered (missing values last; category order for the category dtype).
    ordered : bool
        Whether the user declared the attribute ordered (t-closeness then uses the ordered
        distance over ``values`` in this order).
    overall : ndarray of int64, shape (m,)
        Count of each value in the whole table.
    cell_class : ndarray of int64, shape (cells,)
        Class index of each non-empty cell.
    cell_value : ndarray of int64, shape (cells,)
        Value index (into ``values``) of each non-empty cell.
    cell_count : ndarray of int64, shape (cells,)
        Number of records in each cell.
    class_start : ndarray of int64, shape (classes + 1,)
        Cells of class ``c`` are ``class_start[c]:class_start[c + 1]``.
    """

    name: str
    values: pd.Index
    ordered: bool
    overall: np.ndarray
    cell_class: np.ndarray
    cell_value: np.ndarray
    cell_count: np.ndarray
    class_start: np.ndarray

    @property
    def m(self) -> int:
        """Number of distinct values in the whole table."""
        return len(self.overall)

    @cached_property
    def p(self) -> np.ndarray:
        """The table's distribution of the attribute, shape (m,)."""
        return self.overall / self.overall.sum()

    @cached_property
    def class_sizes(self) -> np.ndarray:
        """Records per class, shape (classes,)."""
        csum = np.concatenate(([0], np.cumsum(self.cell_count)))
        return csum[self.class_start[1:]] - csum[self.class_start[:-1]]

    @cached_property
    def cell_q(self) -> np.ndarray:
        """Share of each cell's value within its class, P_E(s)."""
        return self.cell_count / self.class_sizes[self.cell_class]

    @cached_property
    def cell_p(self) -> np.ndarray:
        """The whole table's share of each cell's value, P(s)."""
        return self.p[self.cell_value]

    @cached_property
    def cell_log_q(self) -> np.ndarray:
        """``ln P_E(s)`` of each cell (shared by the entropy and delta metrics)."""
        return np.log(self.cell_q)

    @cached_property
    def cell_log_p(self) -> np.ndarray:
        """``ln P(s)`` of each cell."""
        return np.log(self.p)[self.cell_value]

    @cached_property
    def distinct(self) -> np.ndarray:
        """Distinct values per class, shape (classes,)."""
        return np.diff(self.class_start)


@dataclass(eq=False)
class ContingencyTable:
    """Counts per equivalence class and sensitive value, computed once.

    Build it with :func:`contingency_table`; every metric accepts it in place of a DataFrame, so a
    table audited for many metrics is grouped only once.

    Attributes
    ----------
    qi : list of str
        Quasi-identifier columns.
    sensitive : list of str
        Sensitive attribute columns.
    n_records : int
    class_keys : ndarray of int64, shape (classes,)
        Sorted integer key of each class (see :mod:`privface.privmetrics.encoding`).
    class_sizes : ndarray of int64, shape (classes,)
        Number of records in each class.
    row_keys : RowKeys
        Each record's class key.
    frame : pandas.DataFrame
        The source table (not copied), used to show the QI values of classes. For a table built
        from counts (chunked or Dask, see :mod:`privface.privmetrics.cell_counts`) it holds one
        row per class, in class order, and ``row_keys`` are the keys of those rows.
    row_counts : ndarray of int64, optional
        Set only for a table built from counts: the records each row of ``frame`` stands for
        (the class sizes). Such a table answers every class-level question; per-record views
        need the rows and raise :class:`InputError`.
    """

    qi: list[str]
    sensitive: list[str]
    n_records: int
    class_keys: np.ndarray
    class_sizes: np.ndarray
    row_keys: RowKeys
    frame: pd.DataFrame
    _sensitive: dict[str, SensitiveCounts] = field(default_factory=dict, repr=False)
    row_counts: np.ndarray | None = None

    def __getitem__(self, name: str) -> SensitiveCounts:
        try:
            return self._sensitive[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a sensitive attribute of this table "
                           f"(sensitive: {self.sensitive})") from None

    @property
    def n_classes(self) -> int:
        """Number of equivalence classes."""
        return len(self.class_sizes)

    def select(self, sensitive: str | Sequence[str] | None) -> list[SensitiveCounts]:
        """The counts of the named sensitive attributes (all of them when ``None``)."""
        if sensitive is None:
            names = self.sensitive
        elif isinstance(sensitive, str):
            names = [sensitive]
        else:
            names = list(sensitive)
        if not names:
            raise InputError("this metric needs a sensitive attribute, and none was given")
        return [self[name] for name in names]

    @cached_property
    def record_class(self) -> np.ndarray:
        """Class index of every record, shape (n_records,).

        Computed on first use (one argsort of the keys): the table-level metrics never need it.
        """
        if self.row_counts is not None:
            raise InputError("this contingency table was built from counts (chunked or Dask): "
                             "it has no rows, so per-record views need the table in memory")
        keys = self.row_keys.keys
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        new_class = np.empty(len(keys), dtype=bool)
        new_class[:1] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new_class[1:])
        out = np.empty(len(keys), dtype=np.int64)
        out[order] = np.cumsum(new_class) - 1
        return out

    @cached_property
    def class_first_row(self) -> np.ndarray:
        """Position of the first record of each class, shape (classes,)."""
        if self.row_counts is not None:  # one frame row per class, in class order
            return np.arange(self.n_classes, dtype=np.int64)
        first = np.full(self.n_classes, len(self.frame), dtype=np.int64)
        np.minimum.at(first, self.record_class, np.arange(len(self.frame)))
        return first

    def class_values(self, classes: Iterable[int] | None = None) -> pd.DataFrame:
        """The quasi-identifier values of the given classes (all when ``None``).

        Returns a DataFrame indexed by class index, one column per QI.
        """
        idx = (np.arange(self.n_classes) if classes is None
               else np.asarray(list(classes), dtype=np.int64))
        index = pd.Index(idx, name="class")
        if self.row_keys.radices is not None:
            # The key is a mixed-radix number: its digits are the QI codes, no row lookup needed.
            keys = self.class_keys[idx]
            columns = {}
            for name, col, radix in zip(self.qi, self.row_keys.columns, self.row_keys.radices):
                digits = (keys // radix) % col.cardinality if radix else np.zeros_like(keys)
                columns[name] = _as_dtype(col.decode(digits), self.frame[name].dtype)
            return pd.DataFrame(columns, index=index)
        rows = self.class_first_row[idx]
        out = self.frame.iloc[rows][self.qi].copy()
        out.index = index
        return out


def _as_dtype(values: pd.Index, dtype) -> np.ndarray | pd.Index:
    """Decoded values in the source column's dtype where that is lossless (int8 stays int8)."""
    try:
        return values.astype(dtype).to_numpy()
    except (TypeError, ValueError):
        return values


def contingency_table(
    data: pd.DataFrame,
    qi: Sequence[str],
    sensitive: Sequence[str] | str | None = None,
    *,
    ordered: Ordered = (),
) -> ContingencyTable:
    """Group a table into equivalence classes and count sensitive values per class.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per record. Any index (it is ignored: rows are taken by position) and any column
        dtypes; missing values are a value of their own.
    qi : sequence of str
        Quasi-identifier columns (at least one).
    sensitive : str or sequence of str, optional
        Sensitive attribute columns (none, one or several).
    ordered : str, sequence of str, or mapping of str to a list of values, optional
        Sensitive attributes whose values are ordered (t-closeness then uses the ordered ground
        distance over their values in order). Every other SA is nominal. A name alone orders the
        column's values as numbers (see :func:`encode_sensitive`: a column that is not wholly
        numeric is refused); a mapping gives a column's order explicitly, smallest first
        (``{"level": ["young", "mid", "old"]}``; ``None`` for the values' own order).

    Returns
    -------
    ContingencyTable

    Raises
    ------
    InputError
        Missing or repeated columns, a column both QI and SA, an empty table, an ordered SA that
        is not wholly numeric and has no order given.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1], "Smiling": [1, -1, -1]})
    >>> contingency_table(df, ["Male"], ["Smiling"]).class_sizes.tolist()
    [1, 2]
    """
    qi, sens, _ = check_columns(data, qi, sensitive, ordered)
    orders = ordered_orders(ordered)
    n = len(data)
    row_keys = encode_rows(data, qi)
    keys = row_keys.keys
    sens_counts: dict[str, SensitiveCounts] = {}
    class_keys = class_sizes = None
    for name in sens:
        counts, cls_keys = _count_cells(data[name], name, keys, row_keys.cardinality,
                                        ordered=name in orders, order=orders.get(name))
        sens_counts[name] = counts
        if class_keys is None:
            class_keys, class_sizes = cls_keys, counts.class_sizes
    if class_keys is None:
        class_keys, class_sizes = _runs(np.sort(keys))
    return ContingencyTable(qi=qi, sensitive=sens, n_records=n, class_keys=class_keys,
                            class_sizes=class_sizes, row_keys=row_keys, frame=data,
                            _sensitive=sens_counts)


def _runs(sorted_keys: np.ndarray, weights: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and how often each occurs (or their summed weights)."""
    n = len(sorted_keys)
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    if weights is not None:
        return sorted_keys[starts], np.add.reduceat(weights, starts)
    counts = np.diff(np.append(starts, n))
    return sorted_keys[starts], counts


def _count_cells(column: pd.Series, name: str, class_key: np.ndarray, class_card: int,
                 *, ordered: bool, order: Sequence | None = None,
                 weights: np.ndarray | None = None) -> tuple[SensitiveCounts, np.ndarray]:
    """Sparse counts of one SA per class; ``weights`` (int64): records each row stands for."""
    codes = encode_sensitive(column, name, ordered=ordered, order=order)
    card = codes.cardinality
    # A weighted bincount sums in float64, which is exact for any count below 2**53.
    overall_all = (np.bincount(codes.codes, minlength=card) if weights is None else
                   np.bincount(codes.codes, weights=weights, minlength=card).astype(np.int64))
    present = overall_all > 0
    value_index = np.cumsum(present) - 1  # code -> index among present values
    values = codes.decode(np.flatnonzero(present))
    key_of_class = None
    if class_card * card >= _INT64_LIMIT:
        # Too many (class, value) combinations for one int64: number the classes densely first.
        key_of_class, class_key = np.unique(class_key, return_inverse=True)
        class_key = class_key.reshape(-1).astype(np.int64)
    cell_key = class_key * card
    cell_key += codes.codes
    if weights is None:
        cell_keys, cell_count = _runs(np.sort(cell_key))
    else:
        order = np.argsort(cell_key, kind="stable")
        cell_keys, cell_count = _runs(cell_key[order], weights[order])
    cls = cell_keys // card
    val = value_index[cell_keys - cls * card]
    is_start = np.empty(len(cls), dtype=bool)
    is_start[:1] = True
    np.not_equal(cls[1:], cls[:-1], out=is_start[1:])
    class_start = np.append(np.flatnonzero(is_start), len(cls)).astype(np.int64)
    n_classes = len(class_start) - 1
    cell_class = np.repeat(np.arange(n_classes, dtype=np.int64), np.diff(class_start))
    class_keys_out = cls[class_start[:-1]]
    if key_of_class is not None:
        class_keys_out = key_of_class[class_keys_out]
    counts = SensitiveCounts(name=name, values=values, ordered=ordered,
                             overall=overall_all[present].astype(np.int64), cell_class=cell_class,
                             cell_value=val.astype(np.int64, copy=False),
                             cell_count=cell_count.astype(np.int64, copy=False),
                             class_start=class_start)
    return counts, class_keys_out


def ordered_orders(ordered: Ordered) -> dict[str, list | None]:
    """The SAs declared ordered, each with its explicit order (``None``: the values' own order).

    Examples
    --------
    >>> ordered_orders("age"), ordered_orders({"level": ["lo", "mid", "hi"], "age": None})
    ({'age': None}, {'level': ['lo', 'mid', 'hi'], 'age': None})
    """
    if not isinstance(ordered, Mapping):
        return dict.fromkeys(_names(ordered, "ordered attributes"))
    out: dict[str, list | None] = {}
    for name, order in ordered.items():
        if not isinstance(name, str):
            raise InputError(f"ordered attributes must be column names (strings), got {name!r}")
        if order is None:
            out[name] = None
            continue
        if isinstance(order, (str, bytes)) or not isinstance(order, Iterable):
            raise InputError("the order of an ordered attribute must be a list of its values, "
                             f"smallest first; got {order!r}", column=name)
        order = list(order)
        try:
            repeated = pd.Index(order, dtype=object).duplicated()
        except TypeError:
            raise InputError("the order of an ordered attribute must list values (numbers or "
                             f"text), got {order!r}", column=name) from None
        if not order or repeated.any():
            raise InputError("the order of an ordered attribute must list each value once"
                             + (f" ({order[int(np.argmax(repeated))]!r} is listed twice)"
                                if repeated.any() else ""), column=name)
        out[name] = order
    return out


def encode_sensitive(column: pd.Series, name: str, *, ordered: bool = False,
                     order: Sequence | None = None) -> ColumnCodes:
    """Codes of a sensitive attribute whose order is its values' order when it is ordered.

    Codes follow the values' sorted order (:func:`encode_column`), except that numbers stored as
    text sort as numbers ("5" < "10"), and that ``order``, when given, decides (smallest first,
    missing values last; a value is matched as given, else by its text, so that orders typed on a
    command line match numbers too). An ordered attribute without an order must have one of its
    own: numbers, dates, booleans, or the category dtype (its category order). Any other text is
    refused, since sorting it as text would give a meaningless distance ("10" < "5" < "?").

    Raises
    ------
    InputError
        An ordered column that is not wholly numeric, without an order; a value missing from the
        order.

    Examples
    --------
    >>> encode_sensitive(pd.Series(["10", "5", "20"]), "age", ordered=True).values.tolist()
    ['5', '10', '20']
    >>> level = pd.Series(["old", "young", "mid"])
    >>> encode_sensitive(level, "level", order=["young", "mid", "old"]).values.tolist()
    ['young', 'mid', 'old']
    """
    codes = encode_column(column, sort=True)
    if order is not None:
        return _reorder(codes, *_ranks_in_order(codes, order, name))
    if isinstance(column.dtype, pd.CategoricalDtype) or codes.values is None \
            or _has_number_dtype(column.dtype):
        return codes
    # Text (or mixed objects): numbers stored as text sort as numbers, ordered or not, so that a
    # column has one "sorted order" (the order of a ground-distance matrix's rows too).
    values = codes.values
    missing = np.asarray(pd.isna(values), dtype=bool)
    numbers = pd.to_numeric(pd.Series(values.to_numpy(dtype=object)[~missing], dtype=object),
                            errors="coerce").to_numpy(dtype=np.float64)
    not_number = np.isnan(numbers)
    if not not_number.any():
        rank = np.full(len(values), np.inf)
        rank[~missing] = numbers
        return _reorder(codes, rank, missing)
    if ordered:
        bad = values[~missing][int(np.flatnonzero(not_number)[0])]
        raise InputError(f"declared ordered, but not every value is a number (found {bad!r}), "
                         "so its values have no order of their own: give their order "
                         f"(--order {name}=V1,V2,..., or ordered={{{name!r}: [V1, V2, ...]}} in "
                         "Python) or a ground-distance matrix", column=name)
    return codes


def _has_number_dtype(dtype) -> bool:
    """Bool, integer, float, datetime and timedelta columns, numpy or nullable: ordered as is."""
    return (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)
            or pd.api.types.is_timedelta64_dtype(dtype))


def _ranks_in_order(codes: ColumnCodes, order: Sequence, name: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each code's position in ``order`` (inf for codes no row has) and whether it is missing."""
    card = codes.cardinality
    values = codes.decode(np.arange(card))
    missing = np.asarray(pd.isna(values), dtype=bool)
    used = np.bincount(np.asarray(codes.codes, dtype=np.int64), minlength=card) > 0
    as_object = values.to_numpy(dtype=object)
    position = pd.Index(order, dtype=object).get_indexer(pd.Index(as_object, dtype=object))
    # A value matches an entry of the order as given, else by its text (one per distinct value).
    by_text: dict[str, int] = {}
    for i, v in enumerate(order):
        by_text.setdefault(str(v), i)
    text_position = np.array([by_text.get(str(v), -1) for v in as_object], dtype=np.int64)
    position = np.where(position >= 0, position, text_position)
    unknown = np.flatnonzero(used & ~missing & (position < 0))
    if len(unknown):
        shown = ", ".join(str(v) for v in order[:8]) + (", ..." if len(order) > 8 else "")
        raise InputError(f"value {values[int(unknown[0])]!r} is not in the order given for "
                         f"it ({shown}): list every value of the column", column=name)
    return np.where(position >= 0, position, np.inf).astype(np.float64), missing


def _reorder(codes: ColumnCodes, rank: np.ndarray, missing: np.ndarray) -> ColumnCodes:
    """The codes renumbered so that code order is ``rank`` order (missing values last)."""
    card = len(rank)
    by_rank = np.lexsort((np.arange(card), rank, missing))
    new_of_old = np.empty(card, dtype=np.int64)
    new_of_old[by_rank] = np.arange(card)
    return ColumnCodes(new_of_old[np.asarray(codes.codes, dtype=np.int64)], card,
                       codes.decode(by_rank))


def _names(value: Sequence[str] | str | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    for v in names:
        if not isinstance(v, str):
            raise InputError(f"{what} must be column names (strings), got {v!r}")
    return names


def check_columns(data: pd.DataFrame, qi, sensitive, ordered) -> tuple[list, list, set]:
    """Check a DataFrame's column roles (as :func:`check_column_roles`) for the in-memory engine."""
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(data).__name__}")
    return check_column_roles(data.columns, qi, sensitive, ordered, n_rows=len(data))


def check_column_roles(
    table_columns: Sequence, qi, sensitive, ordered=(), *, n_rows: int | None = None
) -> tuple[list[str], list[str], set[str]]:
    """Check the roles given to a table's columns; returns (qi, sensitive, ordered).

    Engines that see a table only through its column names (a file's header, a Dask frame's
    schema) call this to give the same errors as :func:`contingency_table`.

    Parameters
    ----------
    table_columns : sequence
        The table's column names.
    qi, sensitive, ordered
        As for :func:`contingency_table`.
    n_rows : int, optional
        The number of rows when known (0 is an error).

    Raises
    ------
    InputError
        Missing (with close matches), repeated or conflicting columns, no QI, no rows.

    Examples
    --------
    >>> check_column_roles(["Male", "Young", "id"], ["Male"], "id")
    (['Male'], ['id'], set())
    >>> check_column_roles(["Male"], ["Mle"], None)
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: column 'Mle': no such quasi-identifier column in \
the table; did you mean Male? (columns: Male)
    """
    qi = _names(qi, "quasi-identifiers")
    sens = _names(sensitive, "sensitive attributes")
    ordered_list = list(ordered_orders(ordered))
    if not qi:
        raise InputError("at least one quasi-identifier column is needed")
    if n_rows == 0:
        raise InputError("the table has no rows")
    present = set(table_columns)
    columns = [str(c) for c in table_columns]
    dup_cols = sorted({c for c in columns if columns.count(c) > 1})
    if dup_cols:
        raise InputError("the table has repeated column names", column=dup_cols[0])
    for name, what in [(c, "quasi-identifier") for c in qi] + [(c, "sensitive attribute")
                                                               for c in sens]:
        if name not in present:
            hint = did_you_mean(name, columns)
            raise InputError(f"no such {what} column in the table{hint} "
                             f"(columns: {', '.join(columns[:12])}"
                             f"{', ...' if len(columns) > 12 else ''})", column=name)
    for names, what in [(qi, "quasi-identifier"), (sens, "sensitive attribute")]:
        seen = set()
        for c in names:
            if c in seen:
                raise InputError(f"{what} listed twice", column=c)
            seen.add(c)
    both = [c for c in sens if c in set(qi)]
    if both:
        raise InputError("a column cannot be both a quasi-identifier and a sensitive attribute",
                         column=both[0])
    for c in ordered_list:
        if c not in sens:
            raise InputError("declared ordered but not a sensitive attribute", column=c)
    return qi, sens, set(ordered_list)
