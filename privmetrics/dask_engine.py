"""The Dask engine: the contingency table as a distributed group-by, for tables beyond one machine.

Each partition of a Dask DataFrame (or each piece of a set of CSV/Parquet files) is counted where
it is, per (equivalence class, sensitive value) cell, by the same code as the in-memory engine
(:func:`~privface.privmetrics.cell_counts.count_cells`); the partial counts are summed in a tree
(``split_every`` at a time) and the sum becomes the very
:class:`~privface.privmetrics.contingency.ContingencyTable` that the whole table would give in
memory. Every metric and report is therefore identical to the in-memory engine's.

The work runs on whatever scheduler Dask would use: a ``dask.distributed`` client when one is
active (``Client(cluster)`` or ``Client("tcp://scheduler:8786")``), Dask's local threads otherwise.
Dask is an optional extra (``pip install "privface[dask]"``) and is imported only when used.

Examples
--------
>>> import pandas as pd
>>> import dask.dataframe as dd
>>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 3]})
>>> ct = dask_contingency(dd.from_pandas(df, npartitions=2), ["Male"], "identity")
>>> ct.class_sizes.tolist(), ct["identity"].distinct.tolist()
([2, 2], [1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from privface.base.errors import InputError
from privface.base.files import PathLike

from .cell_counts import CellCounts, count_cells, merge_counts, to_contingency
from .contingency import ContingencyTable, Ordered, check_column_roles
from .streaming import (DEFAULT_CHUNK_ROWS, check_chunk_rows, typed_text_counts, check_pieces,
                        count_piece, find_files, plan_pieces, split_text_pieces, typed_alike)

DASK_HINT = 'the Dask engine needs dask and distributed: pip install "privface[dask]"'


def require_dask() -> ModuleType:
    """Import Dask (an optional extra); without it, an InputError that says what to install.

    Examples
    --------
    >>> require_dask().__name__
    'dask'
    """
    try:
        import dask
        import dask.dataframe  # noqa: F401  (the extra's dataframe part, with pandas support)
    except ImportError:
        raise InputError(DASK_HINT) from None
    return dask


def is_dask_frame(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame, tested without importing Dask.

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame())
    False
    """
    root = type(data).__module__.split(".")[0]
    return root in ("dask", "dask_expr") and hasattr(data, "to_delayed") \
        and hasattr(data, "columns")


def dask_contingency(
    data: Any,
    qi: Sequence[str],
    sensitive: Sequence[str] | str | None = None,
    *,
    ordered: Ordered = (),
    split_every: int = 8,
) -> ContingencyTable:
    """The contingency table of a Dask DataFrame, counted partition by partition.

    Parameters
    ----------
    data : dask.dataframe.DataFrame
        The table; only its QI and SA columns are read.
    qi, sensitive, ordered
        As for :func:`~privface.privmetrics.contingency.contingency_table`.
    split_every : int, default 8
        How many partial count tables one task sums.

    Returns
    -------
    ContingencyTable
        Identical to :func:`contingency_table` on ``data.compute()``, without its rows.

    Raises
    ------
    InputError
        Dask missing, bad columns (the same messages as in memory), a table without rows.

    Examples
    --------
    >>> import pandas as pd
    >>> import dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"Male": [1, -1, 1]}), npartitions=3)
    >>> dask_contingency(ddf, ["Male"]).class_sizes.tolist()
    [1, 2]
    """
    dask = require_dask()
    if not is_dask_frame(data):
        raise InputError(f"expected a Dask DataFrame, got {type(data).__name__}")
    qi, sens, _ = check_column_roles(list(data.columns), qi, sensitive, ordered)
    count = dask.delayed(count_cells, pure=True)
    parts = [count(partition, qi, sens) for partition in data[qi + sens].to_delayed()]
    counts = _compute_sum(dask, parts, split_every)
    if counts.n_records == 0:
        raise InputError("the table has no rows")
    return to_contingency(counts, ordered=ordered)


def dask_files_contingency(
    source: PathLike | Sequence[PathLike],
    qi: Sequence[str],
    sensitive: Sequence[str] | str | None = None,
    *,
    ordered: Ordered = (),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fmt: str | None = None,
    split_every: int = 8,
) -> ContingencyTable:
    """The contingency table of CSV/Parquet files (a path, a glob or a list), counted on Dask.

    Each CSV/TSV file is one task (read ``chunk_rows`` at a time, so that memory stays bounded);
    a Parquet file is split into runs of row groups of about ``chunk_rows`` rows, one task each.
    Files are read with the same readers as :func:`~privface.privmetrics.streaming.
    stream_contingency`, so the two engines agree on every value and dtype. A single large CSV
    file is read by one worker: split it, or convert it to Parquet, to spread the work.

    Parameters
    ----------
    source : path, glob pattern, or a sequence of them
    qi, sensitive, ordered
        As for :func:`~privface.privmetrics.contingency.contingency_table`.
    chunk_rows : int, default 1,000,000
        Rows read at a time by a task (and the size of a Parquet piece).
    fmt : {"celeba", "csv", "parquet", "tsv"}, optional
        The files' format, by default from their suffixes.
    split_every : int, default 8
        How many partial count tables one task sums.

    Raises
    ------
    InputError
        Dask missing, no matching file, a missing column (naming the file), a malformed file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(2):
    ...     pd.DataFrame({"Male": [1, -1], "id": [i, i]}).to_parquet(folder / f"p{i}.parquet")
    >>> ct = dask_files_contingency(str(folder / "*.parquet"), ["Male"], "id")
    >>> ct.n_records, ct["id"].overall.tolist()
    (4, [2, 2])
    """
    dask = require_dask()
    check_chunk_rows(chunk_rows)
    pieces = plan_pieces(find_files(source), fmt, piece_rows=chunk_rows)
    qi, sens, _ = check_pieces(pieces, qi, sensitive, ordered)
    count = dask.delayed(count_piece, pure=True)
    text, typed = split_text_pieces(pieces)
    sums = [_sum_tree(dask, [count(p, qi, sens, chunk_rows) for p in group], split_every)
            for group in (text, typed) if group]
    totals = list(dask.compute(*sums))
    if text and not typed_alike(totals[0]):
        # The CSV/TSV pieces disagree on a column's type: count their text and type it once,
        # for the whole table, as stream_contingency does.
        (text_total,) = dask.compute(_sum_tree(
            dask, [count(p, qi, sens, chunk_rows, True) for p in text], split_every))
        totals[0] = typed_text_counts(text_total)
    return to_contingency(merge_counts(totals), ordered=ordered)


def _compute_sum(dask: ModuleType, parts: list, split_every: int) -> CellCounts:
    """Sum delayed partial counts in a tree, ``split_every`` per task, and compute the total."""
    (total,) = dask.compute(_sum_tree(dask, parts, split_every))
    return total


def _sum_tree(dask: ModuleType, parts: list, split_every: int):
    """The delayed sum of delayed partial counts, ``split_every`` per task."""
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise InputError(f"split_every must be a whole number >= 2, got {split_every!r}")
    if not parts:
        raise InputError("the table has no partitions")
    merge = dask.delayed(merge_counts, pure=True)
    while len(parts) > 1:
        parts = [merge(parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]
