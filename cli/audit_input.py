"""What ``privface audit`` audits: a table in memory, or the counts of one too large for it.

``--engine memory`` (the default) reads one file whole, as pandas; given a glob of files or
``--chunk-rows N`` it reads the files one chunk at a time and adds up the counts
(:mod:`privface.privmetrics.streaming`). ``--engine dask`` counts the files' pieces on Dask
(:mod:`privface.privmetrics.dask_engine`): on a ``dask.distributed`` scheduler given by
``--dask-address``, else on Dask's local threads. Every way gives the same report.
"""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import pandas as pd
import typer

from privface.privmetrics.contingency import ContingencyTable
from privface.base.errors import InputError

from .common import LoadedTable, is_stdin, load_table, resolve_columns, split_names, stderr

ENGINES = ("memory", "dask")

EngineOption = Annotated[str, typer.Option(
    "--engine", help="memory: pandas on this machine (a glob of files or --chunk-rows is read "
    "in chunks); dask: count the files on Dask (needs the dask extra). Same report either way.")]
ChunkRowsOption = Annotated[Optional[int], typer.Option(
    "--chunk-rows", min=1, help="Read CSV/Parquet files this many rows at a time and add up the "
    "counts, so that a table larger than memory can be audited (default: whole files for "
    "--engine memory, 1,000,000 rows for dask).", show_default=False)]
DaskAddressOption = Annotated[Optional[str], typer.Option(
    "--dask-address", help="With --engine dask: the dask.distributed scheduler to run on "
    "(e.g. tcp://10.0.0.1:8786). Default: Dask's local threads.", show_default=False)]


@dataclass
class AuditInput:
    """The table (or its counts) with the roles of its columns.

    Attributes
    ----------
    data : pandas.DataFrame, dask DataFrame or ContingencyTable
        What :func:`~privface.privmetrics.audit.audit` is given.
    qi, sensitive : list of str
    source : str
        Where the data came from, for the report.
    n_records : int
    columns : mapping
        Every column of the table, with its values for the sensitive ones (to match the labels
        of a ground-distance matrix); None for the others.
    """

    data: Any
    qi: list[str]
    sensitive: list[str]
    source: str
    n_records: int
    columns: Mapping[str, Any]


def load_for_audit(data: Path | None, demo: bool, fmt: str | None, identities: Path | None,
                   qi: Sequence[str] | None, sensitive: Sequence[str] | None,
                   ordered: Sequence[str] | Mapping[str, Sequence[str] | None] | None, *,
                   engine: str, chunk_rows: int | None) -> AuditInput:
    """Read or count DATA for an audit, with the engine and chunking asked for.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(2):
    ...     _ = (folder / f"part-{i}.csv").write_text("Male,identity\\n1,1\\n-1,2\\n")
    >>> got = load_for_audit(folder / "part-*.csv", False, None, None, ["Male"], None, None,
    ...                      engine="memory", chunk_rows=None)
    >>> got.n_records, got.sensitive, type(got.data).__name__
    (4, ['identity'], 'ContingencyTable')
    """
    from privface.privmetrics.streaming import is_pattern

    # Names from --ordered, or names with their --order (see common.ordered_columns).
    ordered = ordered if isinstance(ordered, Mapping) else split_names(ordered)
    if engine not in ENGINES:
        raise InputError(f"--engine must be {' or '.join(ENGINES)}, got {engine!r}")
    in_memory = (demo or data is None or identities is not None or data.is_dir()
                 or is_stdin(data))
    if in_memory and chunk_rows is not None:
        raise InputError("--chunk-rows reads CSV/Parquet files in chunks: it cannot be used "
                         "with --demo, --identities, standard input or a folder of photos")
    if in_memory and data is not None and is_pattern(data) and identities is not None:
        raise InputError("--identities joins one CelebA attribute file, not a pattern of files",
                         file=str(data))
    if in_memory or (engine == "memory" and chunk_rows is None and not is_pattern(data)):
        narrow = None if in_memory else _read_parquet_columns(data, fmt, qi, sensitive)
        if narrow is not None:
            loaded, qis, sens, notes, columns = narrow
        else:
            loaded = load_table(data, demo, fmt, identities)
            qis, sens, notes = resolve_columns(loaded, qi, sensitive, find_identities=False)
            columns = loaded.table
        for note in notes:
            stderr.print(f"privface: note: {note}", markup=False)
        table: Any = loaded.table
        if engine == "dask":  # count once on Dask; the audit and --explain share the counts
            from privface.privmetrics.dask_engine import dask_contingency

            table = dask_contingency(_as_dask_frame(table), qis, sens, ordered=ordered)
        return AuditInput(table, qis, sens, loaded.source, len(loaded.table), columns)
    return _count_files(data, fmt, qi, sensitive, ordered, engine=engine, chunk_rows=chunk_rows)


def _read_parquet_columns(data: Path, fmt: str | None, qi, sensitive):
    """A Parquet file with only the columns the audit uses, or None to read it whole.

    The roles are resolved on the file's schema, as they would be on the whole table; the read
    then skips every other column (in a wide file most of the time goes into reading). Returns
    (loaded, qi, sensitive, notes, columns) with ``columns`` as :class:`AuditInput` wants it.
    Anything unusual (not Parquet, an unreadable file, a name the file lacks) returns None: the
    whole read then gives its own message.
    """
    from privface.privmetrics import readers
    from privface.privmetrics.streaming import table_columns

    try:
        if (fmt or readers.detect_format(data)) != "parquet" or not data.is_file():
            return None
        names = table_columns(data, "parquet")
        probe = LoadedTable(pd.DataFrame(columns=names), "parquet", str(data), data)
        qis, sens, notes = resolve_columns(probe, qi, sensitive, find_identities=False)
        if not set(qis + sens) <= set(names):
            return None
        table = readers.read_table(data, fmt="parquet", columns=qis + sens)
    except InputError:
        return None
    if list(table.columns) != list(dict.fromkeys(qis + sens)):
        return None  # pandas restored names that are not the schema's text (e.g. integers)
    values = {name: (table[name] if name in sens else None) for name in names}
    return LoadedTable(table, "parquet", str(data), data), qis, sens, notes, values


def _count_files(data: Path, fmt: str | None, qi, sensitive, ordered, *,
                 engine: str, chunk_rows: int | None) -> AuditInput:
    from privface.privmetrics import readers
    from privface.privmetrics.streaming import find_files, plan_pieces, table_columns

    if fmt not in (None, "celeba", "csv", "tsv", "parquet"):
        raise InputError(f"--input-format must be celeba, csv, tsv or parquet, got {fmt!r}")
    files = find_files(data)
    first = plan_pieces(files[:1], fmt)[0]
    names = table_columns(first.file, first.kind)
    # The CelebA defaults (QIs: every attribute; SA: identity) need the columns only.
    probe = LoadedTable(pd.DataFrame(columns=names), fmt or readers.detect_format(first.file),
                        str(data), first.file)
    qis, sens, notes = resolve_columns(probe, qi, sensitive, find_identities=False)
    for note in notes:
        stderr.print(f"privface: note: {note}", markup=False)
    ct = _count(files, qis, sens, ordered, fmt, engine=engine, chunk_rows=chunk_rows)
    columns = {name: (ct[name].values if name in sens else None) for name in names}
    return AuditInput(ct, qis, sens, str(data), ct.n_records, columns)


def _count(files: list[Path], qi: list[str], sens: list[str], ordered,
           fmt: str | None, *, engine: str, chunk_rows: int | None) -> ContingencyTable:
    if engine == "dask":
        from privface.privmetrics.dask_engine import dask_files_contingency
        from privface.privmetrics.streaming import DEFAULT_CHUNK_ROWS

        return dask_files_contingency(files, qi, sens, ordered=ordered, fmt=fmt,
                                      chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS)
    from privface.privmetrics.streaming import stream_contingency

    return stream_contingency(files, qi, sens, ordered=ordered, chunk_rows=chunk_rows, fmt=fmt)


def _as_dask_frame(table: pd.DataFrame):
    """An in-memory table (demo, CelebA file with identities, photos) as a Dask DataFrame."""
    from privface.privmetrics.dask_engine import require_dask

    require_dask()
    import dask.dataframe as dd

    # Keep pandas' dtypes: Dask would otherwise turn object text columns into Arrow strings.
    import dask

    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(table, npartitions=max(1, min(32, len(table) // 1_000_000 + 1)))


@contextmanager
def dask_scheduler(engine: str, address: str | None) -> Iterator[None]:
    """Run Dask work on the scheduler at ``address`` (a dask.distributed one) while inside."""
    if address is None:
        yield
        return
    if engine != "dask":
        raise InputError("--dask-address needs --engine dask")
    from privface.privmetrics.dask_engine import DASK_HINT, require_dask

    require_dask()
    try:
        from distributed import Client
    except ImportError:
        raise InputError(DASK_HINT) from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        yield
