"""``privface predict``: photos in, a table of predicted facial attributes out."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.base.errors import InputError

from .common import EXIT_OK, fail_input, stderr


_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
             ".txt": "celeba"}


def _output_format(output: Path, all_faces: bool) -> str:
    """The format the output's suffix names (CelebA's layout: .txt, one row per photo only)."""
    fmt = _SUFFIXES.get(output.suffix.lower())
    if fmt is None or (fmt == "celeba" and all_faces):
        usable = ".csv, .tsv, .parquet" + ("" if all_faces else " or .txt (CelebA's layout)")
        raise InputError(f"cannot write a table ending in {output.suffix or 'no suffix'!r}: the "
                         f"suffix decides the format; use {usable}", file=str(output))
    return fmt


def _check_celeba_names(photos: Path, output: Path) -> None:
    """Before any work: CelebA's space-separated layout cannot hold a name with whitespace."""
    from privface.attributes.images import list_images

    spaced = [p.name for p in list_images(photos) if any(c.isspace() for c in p.name)]
    if spaced:
        raise InputError(
            f"{len(spaced):,} photo name(s) contain whitespace, e.g. {spaced[0]!r}, which "
            "CelebA's space-separated layout cannot hold: write CSV instead (--output "
            f"{output.with_suffix('.csv')}) or rename the photos", file=str(photos))


def predict_command(
    photos: Annotated[Path, typer.Argument(help="Folder of photos (jpg, png, bmp, webp, tif).",
                                           show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the table, in the format its suffix names: "
        ".txt CelebA's attribute-file layout (one row per photo, its largest face), .csv, .tsv "
        "or .parquet.")] = Path("attrs.txt"),
    all_faces: Annotated[bool, typer.Option(
        "--all-faces", help="One row per detected face (file, face index, box, score, "
        "attributes); OUTPUT then ends in .csv, .tsv or .parquet.")] = False,
    model: Annotated[Optional[Path], typer.Option(
        "--model", help="An attribute model from `privface train attributes` (default: the "
        "shipped CelebA model).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Processes to run (default: one per core).", min=1)] = None,
) -> None:
    """Predict CelebA's 40 attributes for the faces in PHOTOS (stage I of AnonymousNet).

    Photos with no face, or that cannot be read, are listed on stderr with the reason.
    Exit status: 0 on success, 2 for bad input.
    """
    from privface.base.files import check_distinct_paths
    from privface.privmetrics.readers import write_celeba_attributes, write_table

    from .common import analyze_folder, photos_table, report_skipped

    try:
        if not photos.is_dir():
            raise InputError("expected a folder of photos", file=str(photos))
        check_distinct_paths(inputs={"PHOTOS": photos, "--model": model},
                             outputs={"--output": output})
        fmt = _output_format(output, all_faces)
        if all_faces:
            analysis = analyze_folder(photos, largest_only=False, model=model, workers=workers)
            report_skipped(analysis)
            write_table(analysis.faces.set_index("file"), output, fmt=fmt)
            rows = len(analysis.faces)
        else:
            if fmt == "celeba":
                _check_celeba_names(photos, output)
            table, _ = photos_table(photos, model=model, workers=workers)
            if fmt == "celeba":
                write_celeba_attributes(table, output)
            else:
                write_table(table, output, fmt=fmt)
            rows = len(table)
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    stderr.print(f"privface predict: {rows:,} row(s) written to {output}")
    raise typer.Exit(EXIT_OK)

