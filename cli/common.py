"""Helpers shared by the sub-commands: option parsing, error exits, atomic output, progress."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from privface.privmetrics.errors import InputError
from privface.privmetrics.readers import atomic_write

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# Options every table command shares, declared once.
DataArgument = Annotated[Optional[Path], typer.Argument(
    help="CelebA attribute file (list_attr_celeba.txt layout), CSV or Parquet table, or a "
    "folder of photos (attributes are predicted first; needs the faces extra).",
    show_default=False)]
DemoOption = Annotated[bool, typer.Option(
    "--demo", help="Use the embedded demo table (synthetic, CelebA-like, with identities).")]
QiOption = Annotated[Optional[list[str]], typer.Option(
    "--qi", help="Quasi-identifier columns, comma-separated; repeatable. "
    "Default for a CelebA file: its attributes.")]
SensitiveOption = Annotated[Optional[list[str]], typer.Option(
    "--sensitive", help="Sensitive attribute columns, comma-separated; repeatable. "
    "Default: identity when identities are given.")]
IdentitiesOption = Annotated[Optional[Path], typer.Option(
    "--identities", help="CelebA identity file (NNNNNN.jpg ID) joined as the sensitive "
    "attribute 'identity'.")]
OrderedOption = Annotated[Optional[list[str]], typer.Option(
    "--ordered", help="Declare a sensitive attribute ordered (t-closeness uses the ordered "
    "distance); every SA is nominal otherwise. Repeatable.")]
OrderOption = Annotated[Optional[list[str]], typer.Option(
    "--order", help="COL=V1,V2,...: the order of an ordered sensitive attribute's values, "
    "smallest first (declares COL ordered). Needed when COL is not wholly numeric. Repeatable.",
    show_default=False)]
InputFormatOption = Annotated[Optional[str], typer.Option(
    "--input-format", help="Force the input format: celeba, csv, tsv or parquet.")]

stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # logs keep whole lines


def split_names(values: Sequence[str] | None) -> list[str]:
    """Flatten repeatable, comma-separated column options (``--qi a,b --qi c``).

    Examples
    --------
    >>> split_names(["Male,Young", " Smiling "])
    ['Male', 'Young', 'Smiling']
    """
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def ordered_columns(ordered: Sequence[str] | None, order: Sequence[str] | None,
                    ground_distance: Sequence[str] | None = None) -> dict[str, list | None]:
    """``--ordered`` names and ``--order COL=V1,V2`` orders, as the library's ``ordered=``.

    Columns given a ``--ground-distance COL=FILE`` matrix are left out: the matrix replaces the
    ordered distance, so they need no order of their own.

    Examples
    --------
    >>> ordered_columns(["age"], ["level=young, mid,old"])
    {'age': None, 'level': ['young', 'mid', 'old']}
    """
    out: dict[str, list | None] = dict.fromkeys(split_names(ordered))
    for spec in order or []:
        column, sep, values = spec.partition("=")
        column = column.strip()
        if not sep or not column or not values.strip():
            raise InputError(f"--order expects COLUMN=V1,V2,... (smallest first), got {spec!r}")
        out[column] = [v.strip() for v in values.split(",")]
    measured = {spec.partition("=")[0].strip() for spec in split_names(ground_distance)}
    return {name: o for name, o in out.items() if name not in measured}


def fail_input(error: Exception) -> typer.Exit:
    """Print a bad-input message and return the exit to raise (status 2)."""
    # Escape the message: rich would take `[dask]` in 'pip install "privface[dask]"' for markup.
    stderr.print(f"[bold red]privface: error:[/] {escape(str(error))}", markup=True,
                 soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def write_atomically(path: Path, text: str) -> None:
    """Write text to ``path`` through a temporary file and a rename: never half-written."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def progress(message: str, *, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr while a step runs (only on a terminal: logs stay clean)."""
    if enabled and sys.stderr.isatty():
        with stderr.status(message):
            yield
    else:
        yield


@dataclass
class LoadedTable:
    """A table read for a command, with what the command needs to know about it."""

    table: pd.DataFrame
    fmt: str  # celeba, csv, tsv or parquet: the format outputs are written in
    source: str
    path: Path | None


def load_table(data: Path | None, demo: bool, fmt: str | None,
               identities: Path | None = None) -> LoadedTable:
    """Read DATA (or the demo table) and join a CelebA identity file when one is given."""
    from privface.privmetrics import readers

    if fmt not in (None, "celeba", "csv", "tsv", "parquet"):
        raise InputError(f"--input-format must be celeba, csv, tsv or parquet, got {fmt!r}")
    if demo:
        if data is not None:
            raise InputError("give either DATA or --demo, not both")
        from privface.privmetrics.demo import demo_table

        loaded = LoadedTable(demo_table(), "celeba",
                             "demo (synthetic, from CelebA attribute statistics)", None)
    elif data is None:
        raise InputError("no DATA given: pass a CelebA attribute file, a CSV or Parquet table, "
                         "or --demo")
    elif data.is_dir():
        # A folder of photos: stage I predicts the attributes, then the table is audited as a
        # CelebA attribute file would be.
        from .photos import photos_table

        table, source = photos_table(data)
        loaded = LoadedTable(table, "celeba", source, None)
    else:
        table = readers.read_table(data, fmt=fmt)
        loaded = LoadedTable(table, fmt or readers.detect_format(data), str(data), data)
    if identities is not None:
        loaded.table = readers.join_identities(
            loaded.table, readers.read_celeba_identities(identities), source=str(identities))
    return loaded


def resolve_columns(loaded: LoadedTable, qi: Sequence[str] | None,
                    sensitive: Sequence[str] | None, *, need_sensitive: bool = False,
                    find_identities: bool = True) -> tuple[list[str], list[str], list[str]]:
    """The QI and SA columns a command uses, with CelebA defaults; returns (qi, sa, notes).

    For a CelebA file: the QIs default to its attributes and the SA to ``identity`` when the
    table has one. When a requirement needs an SA and none is known, the official
    ``identity_CelebA.txt`` beside the attribute file is joined (and a note says so).
    """
    from privface.privmetrics import readers

    notes: list[str] = []
    table = loaded.table
    sens = split_names(sensitive)
    if (not sens and need_sensitive and find_identities and "identity" not in table.columns
            and loaded.fmt == "celeba" and loaded.path is not None):
        beside = loaded.path.parent / "identity_CelebA.txt"
        if beside.is_file():
            loaded.table = table = readers.join_identities(
                table, readers.read_celeba_identities(beside), source=str(beside))
            notes.append(f"using identities from {beside} (found beside the attribute file) "
                         "as the sensitive attribute")
    if not sens and "identity" in table.columns:
        sens = ["identity"]
    if need_sensitive and not sens:
        raise InputError("l-diversity and t-closeness need a sensitive attribute: pass "
                         "--sensitive COLUMN or --identities FILE", file=loaded.source)
    qis = split_names(qi)
    if not qis:
        if loaded.fmt != "celeba":
            raise InputError("--qi is needed for a table that is not in CelebA's layout "
                             f"(columns: {', '.join(map(str, table.columns[:12]))})",
                             file=loaded.source)
        qis = [col for col in table.columns if col not in sens and col != "identity"]
    return qis, sens, notes
