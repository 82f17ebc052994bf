"""Audit tables larger than memory on one machine: read CSV/Parquet files in chunks and add up.

A table is one file, a glob of files (``faces/part-*.parquet``) or a list of files; each file is
read a chunk of rows at a time (Parquet: only the quasi-identifier and sensitive columns), each
chunk is counted per (class, sensitive value) cell (:mod:`privface.privmetrics.cell_counts`), and
the counts are summed. Memory then grows with the number of distinct cells, not with the number
of rows: an audit of 100 million faces with 10 binary QIs needs the counts, not the faces.

The result is the :class:`~privface.privmetrics.contingency.ContingencyTable` that the whole table
would give in memory, so :func:`~privface.privmetrics.audit.audit` reports the same numbers.
Errors name the file: a missing or misspelt column is checked in every file's header or schema
before any row is read, and a malformed line is reported with its number in its file.

What chunked reading does not check: that image names are unique across the table (the in-memory
reader does, per file), since only the QI and SA columns are counted. A CelebA attribute file is
read whole (it is small; its reader checks every value is 1 or -1).

Examples
--------
>>> import tempfile, pathlib
>>> import pandas as pd
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> for i in range(3):
...     part = pd.DataFrame({"Male": [1, -1, 1], "identity": [3 * i, 3 * i + 1, 3 * i]})
...     part.to_csv(folder / f"part-{i}.csv", index=False)
>>> ct = stream_contingency(str(folder / "part-*.csv"), ["Male"], "identity", chunk_rows=2)
>>> ct.n_records, ct.class_sizes.tolist()
(9, [3, 6])
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.files import PathLike

from .cell_counts import (CellCounts, distinct_rows, add_up, count_cells, merge_counts,
                          to_contingency)
from .contingency import ContingencyTable, Ordered, check_column_roles
from .readers.celeba import INDEX_NAME, celeba_header
from .readers.files import check_readable
from .readers.tables import (check_format, csv_errors, csv_header, read_delimited_table,
                             require_pyarrow, sniff_format, typed_like_read_csv,
                             check_short_rows, read_table)

#: Rows read at a time when the caller does not say: about 50 MB per 50 columns of int8.
DEFAULT_CHUNK_ROWS = 1_000_000
_GLOB_CHARS = frozenset("*?[")
_TEXT_KINDS = ("csv", "tsv")


@dataclass(frozen=True)
class TablePiece:
    """A part of a table that one task reads: a whole file, or some row groups of a Parquet file.

    Attributes
    ----------
    file : pathlib.Path
    kind : str
        ``csv``, ``tsv``, ``parquet`` or ``celeba``.
    row_groups : tuple of int, optional
        For Parquet, the row groups of this piece; ``None`` for the whole file.
    """

    file: Path
    kind: str
    row_groups: tuple[int, ...] | None = None


def find_files(source: PathLike | Sequence[PathLike]) -> list[Path]:
    """The files a source names: a path, a glob pattern (``*``, ``?``, ``[``, ``**``) or a list.

    Matches of a pattern come sorted, so every engine reads the same files in the same order.

    Raises
    ------
    InputError
        A pattern that matches no file, or an empty list.

    Examples
    --------
    >>> find_files("faces.csv")
    [PosixPath('faces.csv')]
    >>> find_files("/nonexistent/*.csv")
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: /nonexistent/*.csv: no file matches this pattern
    """
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise InputError("no input files given")
    files: list[Path] = []
    for item in sources:
        text = os.fspath(item)
        if not _GLOB_CHARS.intersection(text):
            files.append(Path(text))
            continue
        matches = sorted(p for p in glob.glob(text, recursive=True) if not Path(p).is_dir())
        if not matches:
            raise InputError("no file matches this pattern", file=text)
        files.extend(Path(p) for p in matches)
    return files


def is_pattern(source: PathLike) -> bool:
    """Whether a path is a glob pattern rather than one file's name.

    Examples
    --------
    >>> is_pattern("faces/part-*.parquet"), is_pattern("faces.csv")
    (True, False)
    """
    return bool(_GLOB_CHARS.intersection(os.fspath(source)))


def plan_pieces(files: Sequence[Path], fmt: str | None = None, *,
                piece_rows: int | None = None) -> list[TablePiece]:
    """Check that every file is readable and split the table into pieces for parallel reading.

    Parameters
    ----------
    files : sequence of pathlib.Path
    fmt : {"celeba", "csv", "parquet", "tsv"}, optional
        The files' format; by default from each file's suffix, as :func:`read_table` decides.
    piece_rows : int, optional
        Split Parquet files into runs of row groups of at least this many rows (a row group is
        never split). Other files, and every file without this, are one piece.

    Returns
    -------
    list of TablePiece

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> _ = path.write_text("Male\\n1\\n")
    >>> plan_pieces([path])[0].kind
    'csv'
    """
    pieces = []
    for file in files:
        file = check_readable(file)
        kind = check_format(fmt, file) if fmt is not None else sniff_format(file)
        if kind != "parquet" or piece_rows is None:
            pieces.append(TablePiece(file, kind))
            continue
        metadata = _parquet_file(file).metadata
        group: list[int] = []
        rows = 0
        for i in range(metadata.num_row_groups):
            group.append(i)
            rows += metadata.row_group(i).num_rows
            if rows >= piece_rows:
                pieces.append(TablePiece(file, kind, tuple(group)))
                group, rows = [], 0
        if group or metadata.num_row_groups == 0:
            pieces.append(TablePiece(file, kind, tuple(group) or None))
    return pieces


def check_pieces(pieces: Sequence[TablePiece], qi, sensitive=None, ordered=()
                 ) -> tuple[list[str], list[str], set[str]]:
    """Check the column roles against every file's header or schema, before reading any row.

    Returns ``(qi, sensitive, ordered)`` as :func:`check_column_roles` does; its errors gain the
    file's name.
    """
    result = None
    for file, kind in dict.fromkeys((p.file, p.kind) for p in pieces):
        columns = table_columns(file, kind)
        try:
            result = check_column_roles(columns, qi, sensitive, ordered)
        except InputError as exc:
            raise replace(exc, file=str(file)) if exc.file is None else exc from None
    if result is None:
        raise InputError("no input files given")
    return result


def table_columns(file: Path, kind: str) -> list[str]:
    """The columns :func:`read_table` would give for a file, from its header or schema alone.

    An index column (an unnamed first CSV column, ``image_id``, a Parquet file's pandas index)
    is not a column, as in memory.
    """
    if kind == "celeba":
        return list(celeba_header(file))
    if kind == "parquet":
        schema = _parquet_file(file).schema_arrow
        names = list(schema.names)
        meta = schema.pandas_metadata or {}
        index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
        if index:
            return [n for n in names if n not in index]
        return names[1:] if names[:1] == [INDEX_NAME] else names
    sep = "\t" if kind == "tsv" else ","
    with csv_errors(file, sep):
        header = csv_header(file, sep)
    # pandas names an unnamed column after its position; a first one becomes the index.
    names = [name or f"Unnamed: {i}" for i, name in enumerate(header)]
    return names[1:] if header[:1] in ([""], [INDEX_NAME]) else names


def iter_chunks(piece: TablePiece, columns: Sequence[str],
                chunk_rows: int | None = DEFAULT_CHUNK_ROWS, *, as_text: bool = False
                ) -> Iterator[pd.DataFrame]:
    """The rows of a piece, ``chunk_rows`` at a time, with only the named columns.

    With ``chunk_rows=None`` a whole file is read by :func:`read_table` (every check of the
    in-memory reader, e.g. unique image names). A CelebA attribute file is always read whole.

    With ``as_text=True`` the columns of a CSV/TSV file come as their text (missing cells NaN).

    Raises
    ------
    InputError
        A malformed file (naming the file and, for CSV/TSV, the line).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> _ = path.write_text("Male,Young\\n1,1\\n-1,1\\n1,-1\\n")
    >>> [len(c) for c in iter_chunks(TablePiece(path, "csv"), ["Male"], chunk_rows=2)]
    [2, 1]
    """
    columns = list(columns)
    text = {name: str for name in columns} if as_text else None
    if piece.kind in _TEXT_KINDS and chunk_rows is None and as_text:
        yield read_delimited_table(piece.file, piece.kind, dtype=text)[columns]
        return
    if piece.kind == "celeba" or (chunk_rows is None and piece.row_groups is None):
        yield read_table(piece.file, fmt=piece.kind)[columns]
        return
    if piece.kind == "parquet":
        yield from _parquet_chunks(piece, columns, chunk_rows)
        return
    sep = "\t" if piece.kind == "tsv" else ","
    # Every column is parsed (no usecols): pandas then rejects a malformed line anywhere in it,
    # as the in-memory reader does; the parser tokenises every field anyway.
    with csv_errors(piece.file, sep):
        with pd.read_csv(piece.file, sep=sep, engine="c", encoding="utf-8", dtype=text,
                         chunksize=chunk_rows) as reader:
            for chunk in reader:
                check_short_rows(chunk, piece.file, sep)
                yield chunk[columns]


def count_piece(piece: TablePiece, qi: Sequence[str], sensitive: Sequence[str],
                chunk_rows: int | None = DEFAULT_CHUNK_ROWS, as_text: bool = False
                ) -> CellCounts:
    """Count one piece chunk by chunk (also the task a Dask worker runs for a piece).

    Raises
    ------
    InputError
        A piece without rows (``"the table has a header but no rows"``), or a malformed file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> _ = path.write_text("Male,id\\n1,7\\n-1,8\\n1,7\\n")
    >>> count_piece(TablePiece(path, "csv"), ["Male"], ["id"], chunk_rows=1).counts["id"].tolist()
    [2, 1]
    """
    qi, sensitive = list(qi), list(sensitive)
    columns = qi + sensitive
    # A piece always yields its (possibly empty) first chunk: pandas yields none for a CSV header
    # without rows, and the empty chunk keeps the sum defined.
    empty = count_cells(pd.DataFrame({c: [] for c in columns}), qi, sensitive)
    chunks = (count_cells(chunk, qi, sensitive)
              for chunk in iter_chunks(piece, columns, chunk_rows, as_text=as_text))
    counts = add_up(itertools.chain([empty], chunks))
    if counts.n_records == 0 and piece.row_groups is None:
        raise InputError("the table has a header but no rows", file=str(piece.file))
    return counts


def stream_contingency(
    source: PathLike | Sequence[PathLike],
    qi: Sequence[str],
    sensitive: Sequence[str] | str | None = None,
    *,
    ordered: Ordered = (),
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    fmt: str | None = None,
) -> ContingencyTable:
    """The contingency table of a table stored in files, read one chunk at a time.

    Parameters
    ----------
    source : path, glob pattern, or a sequence of them
        CSV, TSV or Parquet files (a CelebA attribute file is read whole); the files of a glob
        together form one table.
    qi, sensitive, ordered
        As for :func:`~privface.privmetrics.contingency.contingency_table`.
    chunk_rows : int or None, default 1,000,000
        Rows read at a time; ``None`` reads each file whole (one file in memory at a time).
    fmt : {"celeba", "csv", "parquet", "tsv"}, optional
        The files' format, by default from their suffixes.

    Returns
    -------
    ContingencyTable
        The same as :func:`contingency_table` on the whole table in memory, without its rows.

    Raises
    ------
    InputError
        No matching file, a missing column (naming the file), a malformed file, no rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "faces.parquet"
    >>> pd.DataFrame({"Male": [1, 1, -1], "Young": [1, 1, 1]}).to_parquet(path)
    >>> stream_contingency(path, ["Male", "Young"], chunk_rows=2).class_sizes.tolist()
    [1, 2]
    """
    check_chunk_rows(chunk_rows)
    pieces = plan_pieces(find_files(source), fmt)
    qi, sens, _ = check_pieces(pieces, qi, sensitive, ordered)
    text, typed = split_text_pieces(pieces)
    sums = []
    if text:
        counts = add_up(count_piece(p, qi, sens, chunk_rows) for p in text)
        if not typed_alike(counts):
            counts = typed_text_counts(add_up(count_piece(p, qi, sens, chunk_rows, True)
                                               for p in text))
        sums.append(counts)
    if typed:
        sums.append(add_up(count_piece(p, qi, sens, chunk_rows) for p in typed))
    return to_contingency(merge_counts(sums), ordered=ordered)


def typed_alike(counts: CellCounts) -> bool:
    """Whether CSV/TSV chunks, each typed by pandas on its own, agree on every column's type.

    Chunks that agree (all numbers, all booleans, all text; a chunk of only missing cells goes
    with numbers and text, not with booleans) have the values a read of the whole file would
    give. Chunks that disagree (ints in one chunk, an ``"x"`` in another) mix types in one
    column: their cells must be read again as text (``count_piece(..., as_text=True)``) and
    typed once, for the whole table.

    Examples
    --------
    >>> import pandas as pd
    >>> parts = [count_cells(pd.DataFrame({"c": v}), ["c"]) for v in ([1.0, 1.0], ["x"])]
    >>> typed_alike(parts[0]), typed_alike(merge_counts(parts))
    (True, False)
    """
    for kinds in counts.kinds.values():
        present = kinds - {"missing"}
        if len(present) > 1 or "mixed" in present:
            return False
        # A whole file reads booleans beside missing cells as objects (True stays True), but a
        # chunk of only missing cells is float and would turn a boolean chunk's True into 1.0.
        if present == {"bool"} and "missing" in kinds:
            return False
    return True


def split_text_pieces(pieces: Sequence[TablePiece]) -> tuple[list[TablePiece], list[TablePiece]]:
    """The CSV/TSV pieces (typed by chunk, or as text when chunks disagree) and the others.

    Examples
    --------
    >>> from pathlib import Path
    >>> text, typed = split_text_pieces([TablePiece(Path("a.csv"), "csv"),
    ...                                  TablePiece(Path("b.parquet"), "parquet")])
    >>> [p.kind for p in text], [p.kind for p in typed]
    (['csv'], ['parquet'])
    """
    text = [p for p in pieces if p.kind in _TEXT_KINDS]
    return text, [p for p in pieces if p.kind not in _TEXT_KINDS]


def typed_text_counts(counts: CellCounts) -> CellCounts:
    """Counts of CSV/TSV cells read as text, with each column typed as the whole table would be.

    Every column is typed once from its distinct texts (:func:`typed_like_read_csv`), so a
    table gets the same values whatever its chunks; cells that become equal ("1", "1.0") are
    merged.
    """
    typed: dict[str, tuple[pd.Index, pd.Series]] = {}
    for name in counts.qi + counts.sensitive:
        texts = pd.unique(np.concatenate([frame[name].to_numpy(dtype=object)
                                          for frame in counts.cells.values()
                                          if name in frame.columns]))
        typed[name] = (pd.Index(texts, dtype=object), typed_like_read_csv(texts))
    cells: dict[str | None, pd.DataFrame] = {}
    totals: dict[str | None, np.ndarray] = {}
    for key, frame in counts.cells.items():
        columns = {}
        for name in frame.columns:
            index, values = typed[name]
            columns[name] = values.take(index.get_indexer(frame[name].to_numpy(dtype=object)))
        out = pd.DataFrame({n: c.to_numpy() for n, c in columns.items()},
                           columns=frame.columns)
        cells[key], totals[key] = distinct_rows(out, counts.counts[key])
    return CellCounts(qi=counts.qi, sensitive=counts.sensitive, cells=cells, counts=totals)


def check_chunk_rows(chunk_rows: int | None) -> None:
    """Refuse a chunk size that is not a whole number >= 1 (``None`` means the default)."""
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int)
                                   or chunk_rows < 1):
        raise InputError(f"chunk_rows must be a whole number >= 1, got {chunk_rows!r}")


def _parquet_file(file: Path):
    """A ``pyarrow.parquet.ParquetFile``; an unreadable file is an InputError naming it."""
    arrow = require_pyarrow(file)
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file)
    except (arrow.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=str(file)) from None


def _parquet_chunks(piece: TablePiece, columns: list[str], chunk_rows: int | None
                    ) -> Iterator[pd.DataFrame]:
    arrow = require_pyarrow(piece.file)
    parquet = _parquet_file(piece.file)
    groups = list(piece.row_groups) if piece.row_groups is not None else None
    size = chunk_rows or max(1, sum(parquet.metadata.row_group(i).num_rows for i in groups or []))
    schema = parquet.schema_arrow
    try:
        for batch in parquet.iter_batches(batch_size=size, row_groups=groups, columns=columns,
                                          use_pandas_metadata=False):
            # Through a Table with the file's schema metadata, so that pandas dtypes (category,
            # nullable integers) come back exactly as pandas.read_parquet gives them.
            table = arrow.Table.from_batches([batch]).replace_schema_metadata(schema.metadata)
            yield table.to_pandas()[columns]
    except (arrow.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=str(piece.file)) from None
