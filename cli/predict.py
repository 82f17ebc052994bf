"""``privface predict``: photos in, a table of predicted facial attributes out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.privmetrics.errors import InputError

from .common import EXIT_OK, fail_input, stderr


def predict_command(
    photos: Annotated[Path, typer.Argument(help="Folder of photos (jpg, png, bmp, webp, tif).",
                                           show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the table. CelebA's attribute-file layout "
        "(one row per photo, its largest face) unless --all-faces.")] = Path("attrs.txt"),
    all_faces: Annotated[bool, typer.Option(
        "--all-faces", help="One row per detected face (file, face index, box, score, "
        "attributes) as CSV, or Parquet when OUTPUT ends in .parquet.")] = False,
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
    from privface.privmetrics.readers import (check_distinct_paths, write_celeba_attributes,
                                              write_table)

    from .photos import analyze_folder, photos_table, report_skipped

    try:
        if not photos.is_dir():
            raise InputError("expected a folder of photos", file=str(photos))
        check_distinct_paths(inputs={"PHOTOS": photos, "--model": model},
                             outputs={"--output": output})
        if all_faces:
            analysis = analyze_folder(photos, largest_only=False, model=model, workers=workers)
            report_skipped(analysis)
            fmt = "parquet" if output.suffix.lower() == ".parquet" else "csv"
            write_table(analysis.faces.set_index("file"), output, fmt=fmt)
            rows = len(analysis.faces)
        else:
            table, _ = photos_table(photos, model=model, workers=workers)
            write_celeba_attributes(table, output)
            rows = len(table)
    except InputError as exc:
        raise fail_input(exc) from None
    stderr.print(f"privface predict: {rows:,} row(s) written to {output}")
    raise typer.Exit(EXIT_OK)

