"""Turning table columns into small integer codes, and rows into one integer key.

Every metric depends on the table only through "which rows are equal on the quasi-identifiers" and
"which sensitive value each row has". Both questions become integer comparisons once each column is
encoded as small non-negative codes and the codes of a row are combined into one mixed-radix
``int64`` key. This module does that fast: the common face-attribute columns (bool, or integers
with two values such as CelebA's 1/-1) never go through a hash table, and narrow columns are
combined in narrow integer types before being folded into the 64-bit key.

Missing values (NaN, None, NA, NaT) are one value of their own, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from privface.base.errors import InputError

#: What a generalised (suppressed) quasi-identifier cell holds in an anonymized table.
GENERALISED = "*"

# Keys stay below this bound so that ``key * radix + code`` never overflows a signed int64.
_KEY_LIMIT = 1 << 62
# An integer column whose range is at most this wide is coded by offset, without a hash table.
_DENSE_RANGE = 1 << 16


@dataclass(frozen=True)
class ColumnCodes:
    """One column as integer codes.

    Attributes
    ----------
    codes : ndarray of unsigned or signed ints, shape (n,)
        Code of each row, in ``[0, cardinality)``.
    cardinality : int
        Upper bound on the codes (some codes below it may be unused).
    values : pandas.Index or None
        The value of each code when known in sorted order (``values[code]``); ``None`` when codes
        are offsets ``value - offset`` of an integer column.
    offset : int
        For offset-coded integer columns, the value of code 0.
    in_order : bool
        Whether code order is value order (false only for values that cannot be sorted).
    """

    codes: np.ndarray
    cardinality: int
    values: pd.Index | None = None
    offset: int = 0
    in_order: bool = True

    def decode(self, codes: np.ndarray) -> pd.Index:
        """The original values of the given codes."""
        if self.values is None:
            return pd.Index(np.asarray(codes, dtype=np.int64) + self.offset)
        return self.values.take(np.asarray(codes, dtype=np.int64))


def encode_column(series: pd.Series, *, sort: bool = True) -> ColumnCodes:
    """Encode one column as small non-negative integer codes.

    Parameters
    ----------
    series : pandas.Series
        Any dtype: bool, integer, float, string/object, category, datetime.
    sort : bool, default True
        Give codes in the order of the sorted values (missing last), so that code order is value
        order. Needed for ordered sensitive attributes; the category dtype uses its own category
        order.

    Returns
    -------
    ColumnCodes

    Examples
    --------
    >>> c = encode_column(pd.Series([1, -1, 1], dtype="int8"))
    >>> c.codes.tolist(), c.cardinality
    ([1, 0, 1], 2)
    >>> c.decode([0, 1]).tolist()
    [-1, 1]
    """
    dtype = series.dtype
    values = series.to_numpy() if not isinstance(dtype, pd.CategoricalDtype) else None
    if pd.api.types.is_bool_dtype(dtype) and values is not None and values.dtype == np.bool_:
        return ColumnCodes(values.view(np.uint8), 2, pd.Index([False, True], dtype=object))
    if values is not None and values.dtype.kind in "iu" and len(values):
        return _encode_integers(values)
    if isinstance(dtype, pd.CategoricalDtype):
        cat = series.cat
        codes = cat.codes.to_numpy()
        n_cat = len(cat.categories)
        # Missing is code -1 in pandas; make it the last code so codes stay non-negative.
        codes = np.where(codes < 0, n_cat, codes).astype(np.int64)
        values = cat.categories.astype(object).append(pd.Index([np.nan], dtype=object))
        return ColumnCodes(codes, n_cat + 1, values)
    in_order = sort
    try:
        codes, uniques = pd.factorize(series, sort=sort, use_na_sentinel=False)
    except TypeError:
        # Mixed types that cannot be ordered (e.g. str and int in one object column).
        try:
            codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=False)
        except TypeError as exc:  # cells that cannot be compared at all: lists, dicts, arrays
            raise InputError(f"holds values of an unhashable type ({exc}); list and struct "
                             "columns cannot be quasi-identifiers or sensitive attributes: "
                             "flatten it first", column=str(series.name)) from None
        in_order = False
    if not isinstance(uniques, pd.Index):
        uniques = pd.Index(uniques)
    return ColumnCodes(codes.astype(np.int64, copy=False), max(len(uniques), 1), uniques,
                       in_order=in_order)


def _encode_integers(values: np.ndarray) -> ColumnCodes:
    lo = int(values.min())
    hi = int(values.max())
    if hi >= 1 << 63:  # uint64 beyond int64: offsets would not fit in the signed key
        codes, uniques = pd.factorize(values, sort=True)
        return ColumnCodes(codes.astype(np.int64, copy=False), len(uniques), pd.Index(uniques))
    span = hi - lo + 1
    if span == 1:
        return ColumnCodes(np.zeros(len(values), np.uint8), 1, pd.Index([lo]))
    if span == 3 and not np.any(values == lo + 1):
        # Two values with a gap, such as CelebA's -1/1: one bit, not three codes.
        return ColumnCodes(np.equal(values, hi).view(np.uint8), 2, pd.Index([lo, hi]))
    if span <= _DENSE_RANGE:
        code_dtype = np.uint8 if span <= 256 else np.uint16
        codes = (values.astype(np.int64, copy=False) - lo).astype(code_dtype)
        return ColumnCodes(codes, span, None, lo)
    codes, uniques = pd.factorize(values, sort=True)
    return ColumnCodes(codes.astype(np.int64, copy=False), len(uniques), pd.Index(uniques))


@dataclass(frozen=True)
class RowKeys:
    """Each row's combination of column codes as one integer.

    Attributes
    ----------
    keys : ndarray of int64, shape (n,)
        Equal keys if and only if the rows are equal on every encoded column.
    cardinality : int
        Keys lie in ``[0, cardinality)``.
    radices : list of int or None
        Mixed-radix place value of each column (``key = sum(code_j * radices[j])``), or ``None``
        when the key had to be re-numbered to stay within 64 bits (very many distinct values).
    columns : list of ColumnCodes
        The per-column codes the keys were built from.
    """

    keys: np.ndarray
    cardinality: int
    radices: list[int] | None
    columns: list[ColumnCodes]


def combine_codes(columns: list[ColumnCodes], n_rows: int) -> RowKeys:
    """Combine per-column codes into one int64 key per row.

    Columns are folded in groups that fit a 16-bit accumulator, which keeps most of the work on
    narrow arrays. When the product of the cardinalities would exceed 62 bits the partial key is
    re-numbered densely (a sort), so any number of columns works.

    Parameters
    ----------
    columns : list of ColumnCodes
    n_rows : int

    Returns
    -------
    RowKeys

    Examples
    --------
    >>> a = encode_column(pd.Series([0, 1, 1]))
    >>> b = encode_column(pd.Series(["x", "x", "y"]))
    >>> combine_codes([a, b], 3).keys.tolist()
    [0, 2, 3]
    """
    key = np.zeros(n_rows, dtype=np.int64)
    card = 1
    radices: list[int] | None = []
    acc: np.ndarray | None = None
    acc_card = 1
    pending: list[int] = []  # cardinalities folded into `acc`, for the radices

    def flush() -> None:
        nonlocal key, card, acc, acc_card, radices
        if acc is None:
            return
        if card * acc_card >= _KEY_LIMIT:
            key, card = _renumber(key)
            radices = None
        key *= acc_card
        key += acc
        card *= acc_card
        if radices is not None:
            radices = [r * acc_card for r in radices]
            place = acc_card
            for c in pending:
                place //= c
                radices.append(place)
        acc, acc_card = None, 1
        pending.clear()

    for col in columns:
        c = col.cardinality
        if c <= 1:
            if radices is not None:
                flush()  # keep `radices` in column order
            if radices is not None:
                radices.append(0)  # a constant column contributes nothing to the key
            continue
        if acc is not None and acc_card * c > 1 << 16:
            flush()
        if c > 1 << 16:
            flush()
            if card * c >= _KEY_LIMIT:
                key, card = _renumber(key)
                radices = None
            key *= c
            key += col.codes
            card *= c
            if radices is not None:
                radices = [r * c for r in radices] + [1]
            continue
        if acc is None:
            acc = col.codes.astype(np.uint16)
        else:
            acc *= np.uint16(c)
            np.add(acc, col.codes, out=acc, casting="unsafe")
        acc_card *= c
        pending.append(c)
    flush()
    return RowKeys(key, card, radices, list(columns))


def _renumber(key: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, inverse = np.unique(key, return_inverse=True)
    return inverse.astype(np.int64, copy=False), len(uniques)


def encode_rows(frame: pd.DataFrame, columns: list[str]) -> RowKeys:
    """Encode the given columns of a frame and combine them into row keys.

    Examples
    --------
    >>> df = pd.DataFrame({"Male": [1, -1, 1], "Young": [True, True, True]})
    >>> encode_rows(df, ["Male", "Young"]).keys.tolist()
    [3, 1, 3]
    """
    codes = [encode_column(frame[c]) for c in columns]
    return combine_codes(codes, len(frame))
