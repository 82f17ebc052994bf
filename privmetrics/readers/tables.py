"""One entry point for every table format: CelebA layout, CSV, TSV and Parquet."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.files import PathLike, atomic_write

from .celeba import (
    INDEX_NAME,
    is_celeba_attribute_file,
    read_celeba_attributes,
    write_celeba_attributes,
)
from .files import check_readable, head_lines, not_utf8_error

TableFormat = Literal["celeba", "csv", "parquet", "tsv"]
_FORMATS: tuple[str, ...] = ("celeba", "csv", "parquet", "tsv")
_PARQUET_HINT = 'Parquet needs pyarrow: pip install "privface[parquet]"'


def read_table(source: pd.DataFrame | PathLike, *, fmt: TableFormat | None = None,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a face-attribute table from a DataFrame or a file of any supported format.

    Parameters
    ----------
    source : pandas.DataFrame, str or os.PathLike
        A DataFrame (returned as is) or a file.
    fmt : {"celeba", "csv", "parquet", "tsv"}, optional
        The file's format. By default it comes from the suffix: ``.parquet``/``.pq`` Parquet,
        ``.csv`` CSV, ``.tsv`` tab-separated; ``.txt`` and anything else is read as a CelebA
        attribute file when :func:`is_celeba_attribute_file` says so, else as CSV.
    columns : sequence of str, optional
        Keep only these columns (and the image index), in this order. A Parquet file then reads
        only them from disk, which is most of the time of a wide table; text files are still
        parsed whole (every line is checked), then narrowed. A name the table lacks is an
        InputError.

    Returns
    -------
    pandas.DataFrame
        For CSV, TSV and Parquet, a first column that is unnamed or named ``"image_id"`` becomes
        the index (pandas writes an unnamed index column, privface writes ``"image_id"``).

    Raises
    ------
    InputError
        A missing, unreadable or empty file, a folder, an unknown format, a malformed table, a
        header without rows, a duplicate column or image name; Parquet without pyarrow.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> _ = path.write_text("image_id,Male,Smiling\\n1.jpg,1,-1\\n2.jpg,-1,1\\n")
    >>> read_table(path)  # doctest: +NORMALIZE_WHITESPACE
              Male  Smiling
    image_id
    1.jpg        1       -1
    2.jpg       -1        1
    """
    if isinstance(source, pd.DataFrame):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"read_table expects a DataFrame or a path, got {type(source).__name__}")
    file = check_readable(source)
    kind = check_format(fmt, file) if fmt is not None else sniff_format(file)
    if kind == "parquet":
        table = _read_parquet(file, None if columns is None else list(columns))
        if len(table) == 0:
            raise InputError("the table has a header but no rows", file=str(file))
        return _text_labels_as_object(_use_image_index(table, file, None))
    table = read_celeba_attributes(file) if kind == "celeba" else read_delimited_table(file, kind)
    return table if columns is None else _keep_columns(table, list(dict.fromkeys(columns)), file)


def _keep_columns(table: pd.DataFrame, columns: list[str], file: Path) -> pd.DataFrame:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError("the table has no such column", file=str(file), column=missing[0])
    return table[columns]


def _text_labels_as_object(table: pd.DataFrame) -> pd.DataFrame:
    """Column names and image names as plain Python strings (object dtype), as the CelebA reader
    gives them: pandas 3 would read them as its ``str`` dtype, and a table must read the same
    whatever its format and the pandas version."""
    if pd.api.types.is_string_dtype(table.columns.dtype) and table.columns.dtype != object:
        table.columns = table.columns.astype(object)
    index = table.index
    if not isinstance(index, pd.MultiIndex) and pd.api.types.is_string_dtype(index.dtype) \
            and index.dtype != object:
        table.index = index.astype(object)
    return table


def detect_format(path: PathLike) -> str:
    """The format :func:`read_table` would read a file as: celeba, csv, tsv or parquet.

    Examples
    --------
    >>> detect_format("faces.parquet")
    'parquet'
    """
    return sniff_format(Path(path))


def sniff_format(file: Path) -> str:
    """The format a file is read as: its suffix's, else CelebA's layout if it has it, else CSV."""
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    return "celeba" if is_celeba_attribute_file(file) else "csv"


def check_format(fmt: str, file: Path | None) -> str:
    """``fmt`` when it is a format privface reads, else an InputError naming the file."""
    if fmt not in _FORMATS:
        raise InputError(f"unknown format {fmt!r}: expected one of {', '.join(_FORMATS)}",
                         file=None if file is None else str(file))
    return fmt


def read_table_text(path: PathLike, *, fmt: TableFormat | None = None) -> pd.DataFrame:
    """Every cell of a CSV or TSV file as its exact text, with :func:`read_table`'s index.

    Nothing is parsed: ``"007"`` stays ``"007"``, ``"9007199254740993"`` keeps every digit and an
    empty cell is ``""``. Writers use it to copy the cells they do not change byte for byte.

    Raises
    ------
    InputError
        As :func:`read_table`; a format other than CSV or TSV.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> _ = path.write_text("image_id,zip\\n1.jpg,02134\\n2.jpg,\\n")
    >>> read_table_text(path)["zip"].tolist()
    ['02134', '']
    """
    file = check_readable(path)
    kind = check_format(fmt, file) if fmt is not None else sniff_format(file)
    if kind not in ("csv", "tsv"):
        raise InputError(f"only CSV and TSV cells can be read as text, not {kind}",
                         file=str(file))
    return read_delimited_table(file, kind, dtype=str, keep_default_na=False)


def read_delimited_table(file: Path, kind: str, **options) -> pd.DataFrame:
    """A whole CSV/TSV file as :func:`read_table` gives it; ``options`` go to pandas."""
    sep = "\t" if kind == "tsv" else ","
    table, header = _read_delimited(file, sep, **options)
    check_short_rows(table, file, sep)
    if len(table) == 0:
        raise InputError("the table has a header but no rows", file=str(file))
    return _text_labels_as_object(_use_image_index(table, file, header))


def _read_delimited(file: Path, sep: str, **options) -> tuple[pd.DataFrame, list[str]]:
    """Read CSV/TSV; returns the table and the raw header row (pandas renames some names)."""
    with csv_errors(file, sep):
        header = csv_header(file, sep)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.DtypeWarning)
            try:
                table = pd.read_csv(file, sep=sep, engine="c", encoding="utf-8", **options)
            except pd.errors.DtypeWarning:
                # pandas typed a long column block by block, leaving e.g. ints beside strings:
                # read again with one type per column, decided over the whole column.
                table = pd.read_csv(file, sep=sep, engine="c", encoding="utf-8",
                                    low_memory=False, **options)
    return table, header


def typed_like_read_csv(texts: np.ndarray) -> pd.Series:
    """The values :func:`read_table` gives a CSV column holding exactly these texts.

    ``texts`` are the distinct cells of a column read as text (missing ones NaN). pandas decides
    a column's type from the set of its cells alone (int, float, bool, else text), so parsing
    the distinct cells once gives every cell the value a read of the whole file would give:
    the chunked and Dask engines read text and type it here, once per table.
    """
    buffer = io.StringIO()
    pd.DataFrame({"v": texts, "_": 0}).to_csv(buffer, index=False, lineterminator="\n")
    buffer.seek(0)
    return pd.read_csv(buffer, engine="c", low_memory=False)["v"]


def csv_header(file: Path, sep: str) -> list[str]:
    """The raw header row of a CSV/TSV file; a name that appears twice is an InputError."""
    header_text = (head_lines(file, 1) or [""])[0]
    header = next(csv.reader([header_text], delimiter=sep), [])
    seen: set[str] = set()
    for name in header:
        if name in seen and name != "":
            raise InputError("column appears twice in the header", file=str(file), row=1,
                             column=name)
        seen.add(name)
    return header


def check_short_rows(table: pd.DataFrame, file: Path, sep: str) -> None:
    """Raise for a row with fewer fields than the header, which pandas pads with missing values.

    pandas rejects a row with too many fields but silently pads a short one; privface treats
    both alike. A padded row shows as a missing value in the last column, so the file is scanned
    (once, then cached) only when the table, or a chunk of it, has one there.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("a,b,c\\n1,2,3\\n1,2\\n")
    >>> check_short_rows(pd.read_csv(path), path, ",")
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: ...t.csv, line 3: expected 3 fields as in the ...
    """
    if table.shape[1] == 0 or not table.iloc[:, -1].isna().any():
        return
    stat = file.stat()
    short = _first_short_row(file, sep, stat.st_size, stat.st_mtime_ns)
    if short is not None:
        line, found, expected = short
        raise InputError(f"expected {expected} fields as in the header, found {found} (a "
                         "missing field is an error, not an empty cell: write the separator, "
                         "e.g. '1,2,' for an empty last cell)", file=str(file), row=line)


@functools.lru_cache(maxsize=8)
def _first_short_row(file: Path, sep: str, size: int, mtime_ns: int
                     ) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first short row; size and mtime key the cache."""
    # Not a hot path: only a table with missing values in its last column gets here.
    with open(file, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=sep)
        expected = len(next(reader, []))
        for fields in reader:
            if fields and len(fields) < expected:  # a blank line is no row, for pandas too
                return reader.line_num, len(fields), expected
    return None


@contextmanager
def csv_errors(file: Path, sep: str) -> Iterator[None]:
    """Turn pandas' CSV parsing errors (also those of chunked reading) into InputErrors."""
    what = "CSV" if sep == "," else "tab-separated"
    try:
        yield
    except UnicodeDecodeError:
        raise not_utf8_error(file, f"a {what} table") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"no columns: expected a {what} table with a header line",
                         file=str(file)) from None
    except pd.errors.ParserError as exc:
        # pandas says "Expected 3 fields in line 5, saw 4": keep its words, lift the line out.
        found = re.search(r"line (\d+)", str(exc))
        detail = str(exc).split("C error: ")[-1].strip()
        raise InputError(f"malformed {what} table: {detail}", file=str(file),
                         row=int(found.group(1)) if found else None) from None


def _read_parquet(file: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file as ``pandas.read_parquet`` gives it, reading only ``columns`` (and the
    index) when given.

    Arrow's columns become pandas columns without the copy into one 2-D block per dtype that
    pandas makes by default (``split_blocks``), and each Arrow buffer is freed as soon as it is
    converted (``self_destruct``): for a 10M x 41 table that saves a 450 MB copy.
    """
    arrow = require_pyarrow(file)
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(file).schema_arrow if columns is not None else None
    except (arrow.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=str(file)) from None
    if schema is not None:
        columns = _with_index_column(schema, columns, file)
    try:
        if not _arrow_maps_pandas_strings(arrow):
            # pandas 3 with an Arrow older than 19 maps text columns itself: keep its reader.
            return pd.read_parquet(file, engine="pyarrow", columns=columns)
        table = pq.read_table(file, columns=columns, use_pandas_metadata=True)
        metadata = table.schema.metadata or {}
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
    except (arrow.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=str(file)) from None
    if b"PANDAS_ATTRS" in metadata:  # as pandas.read_parquet restores them
        frame.attrs = json.loads(metadata[b"PANDAS_ATTRS"])
    return frame


def _with_index_column(schema, columns: list[str], file: Path) -> list[str]:
    """The columns to read: ``columns``, after a first ``image_id`` column that is no pandas
    index (it becomes the index, see :func:`_use_image_index`); a name the file lacks is an
    InputError. pyarrow adds a pandas index itself."""
    names = list(schema.names)
    columns = list(dict.fromkeys(columns))
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError("the table has no such column", file=str(file), column=missing[0])
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    if names[:1] == [INDEX_NAME] and INDEX_NAME not in index and INDEX_NAME not in columns:
        return [INDEX_NAME, *columns]
    return columns


def _arrow_maps_pandas_strings(arrow: ModuleType) -> bool:
    """Whether ``Table.to_pandas`` alone gives what pandas.read_parquet gives: always, except
    pandas' future string dtype with an Arrow older than 19 (pandas then maps text columns)."""
    infer = pd.get_option("future.infer_string") if _has_option("future.infer_string") else False
    return not infer or int(arrow.__version__.split(".")[0]) >= 19


def _has_option(name: str) -> bool:
    try:
        pd.get_option(name)
    except (KeyError, pd.errors.OptionError):
        return False
    return True


def _use_image_index(table: pd.DataFrame, file: Path, header: list[str] | None) -> pd.DataFrame:
    """Make an unnamed or ``image_id`` first column the index; image names must be unique."""
    if not isinstance(table.index, pd.RangeIndex) or table.shape[1] == 0:
        return table  # Parquet written from pandas already restored its index
    first = table.columns[0]
    unnamed = header is not None and len(header) > 0 and header[0] == ""
    if first != INDEX_NAME and not unnamed:
        return table
    table = table.set_index(first)
    table.index.name = INDEX_NAME if first == INDEX_NAME else None
    duplicated = table.index.duplicated()
    if duplicated.any():
        again = int(np.flatnonzero(duplicated)[0])
        name = table.index[again]
        earlier = int(np.flatnonzero(table.index == name)[0])
        # Line numbers assume one line per row after the header (no blank or multi-line rows).
        line_of = (lambda i: i + 2) if header is not None else (lambda i: i + 1)
        raise InputError(f"duplicate image name {name!r}: it is also on "
                         f"{'line' if header is not None else 'row'} {line_of(earlier)}",
                         file=str(file), row=line_of(again), column=str(first))
    return table


def require_pyarrow(file: Path | None) -> ModuleType:
    """Import pyarrow lazily: it is optional (the ``parquet`` extra)."""
    try:
        import pyarrow
    except ImportError:
        raise InputError(_PARQUET_HINT, file=None if file is None else str(file)) from None
    return pyarrow



def write_table(table: pd.DataFrame, path: PathLike, *, fmt: TableFormat | None = None) -> None:
    """Write a table atomically in the format its suffix (or ``fmt``) names.

    Parameters
    ----------
    table : pandas.DataFrame
        The table. A non-default index is written as the first column, so :func:`read_table`
        restores it when it is named ``"image_id"`` or unnamed.
    path : str or os.PathLike
        The file to write; replaced atomically if it exists.
    fmt : {"celeba", "csv", "parquet", "tsv"}, optional
        By default from the suffix: ``.txt`` CelebA layout, ``.csv``, ``.tsv``,
        ``.parquet``/``.pq``.

    Raises
    ------
    InputError
        An unknown format or suffix, a table the format cannot hold, Parquet without pyarrow, or
        a target that cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> table = pd.DataFrame({"Male": [1, -1]}, index=pd.Index(["1.jpg", "2.jpg"], name="image_id"))
    >>> write_table(table, path)
    >>> read_table(path).equals(table)
    True
    """
    target = Path(path)
    kind = check_format(fmt, target) if fmt is not None else _format_from_suffix(target)
    if kind == "celeba":
        write_celeba_attributes(table, target)
        return
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, got {type(table).__name__}")
    if kind == "parquet":
        arrow = require_pyarrow(target)
        table = _mixed_columns_as_text(table)

        def write(tmp: Path) -> None:
            try:
                table.to_parquet(tmp, engine="pyarrow")
            except (arrow.ArrowException, ValueError, TypeError) as exc:
                raise InputError(f"cannot store this table as Parquet: {exc}",
                                 file=str(target)) from None
    else:
        # A default RangeIndex carries no information; any other index is the image names.
        keep_index = not isinstance(table.index, pd.RangeIndex)

        def write(tmp: Path) -> None:
            table.to_csv(tmp, sep="\t" if kind == "tsv" else ",", index=keep_index,
                         lineterminator="\n", encoding="utf-8")
    atomic_write(target, write)


def _mixed_columns_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing strings with other values (e.g. ints and a generalised ``"*"``) as
    text: Parquet columns have one type, and the text keeps which cells are equal."""
    mixed = [c for c in table.columns if table[c].dtype == object
             and table[c].map(type).nunique(dropna=True) > 1]
    if not mixed:
        return table
    out = table.copy()
    for c in mixed:
        out[c] = table[c].map(lambda v: v if pd.isna(v) else str(v))
    return out


def _format_from_suffix(path: Path) -> str:
    by_suffix = {".txt": "celeba", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
                 ".pq": "parquet"}
    try:
        return by_suffix[path.suffix.lower()]
    except KeyError:
        raise InputError(f"cannot tell the format from the suffix {path.suffix!r}: use .txt, "
                         ".csv, .tsv, .parquet or pass fmt", file=str(path)) from None


