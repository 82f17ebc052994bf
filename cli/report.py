"""``privface report``: an HTML report of a run that is already on disk."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.base.errors import InputError
from privface.base.files import check_distinct_paths

from .common import EXIT_OK, fail_input, stderr

CERTIFICATE_SCHEMA = "privface.anonymize-certificate/1"
_CERTIFICATE_KEYS = ("method", "quasi_identifiers", "sensitive", "requirements", "reached",
                     "passed", "information_loss", "n_records")


def read_table_certificate(path: Path) -> dict:
    """A table's ``OUT.certificate.json`` (``privface anonymize TABLE``), checked.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> _ = p.write_text('{"schema": "privface.audit/1"}')
    >>> try:
    ...     read_table_certificate(p)
    ... except InputError as exc:
    ...     print(exc.message)  # doctest: +ELLIPSIS
    expected a privface.anonymize-certificate/1 certificate ..., found 'privface.audit/1'
    """
    try:
        certificate = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the certificate: {exc}", file=str(path)) from None
    found = certificate.get("schema") if isinstance(certificate, dict) else None
    if found != CERTIFICATE_SCHEMA:
        raise InputError(f"expected a {CERTIFICATE_SCHEMA} certificate or a photo run's folder, "
                         f"found {found!r}", file=str(path))
    # A report must not dress up a truncated or hand-edited certificate as a real one.
    missing = [key for key in _CERTIFICATE_KEYS if key not in certificate]
    if missing:
        raise InputError(f"an incomplete certificate: it lacks {', '.join(missing)}",
                         file=str(path))
    return certificate



def report_command(
    run: Annotated[Path, typer.Argument(
        help="The --out folder of `privface anonymize PHOTOS_DIR` (with run.json), or a "
        "table's OUT.certificate.json.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the HTML report to this file instead of standard "
        "output.")] = None,
    originals: Annotated[Optional[Path], typer.Option(
        "--originals", help="Photo runs: the folder of the original photos, for the "
        "before/after thumbnails (the report then shows original faces: keep it with the data "
        "holder).")] = None,
    thumbnails: Annotated[int, typer.Option(
        "--thumbnails", min=0, help="Photo runs: how many photos the before/after grid shows "
        "(spread over the names; 0 for none).")] = 12,
) -> None:
    """Render a self-contained HTML report (charts, thumbnails) of a run already on disk.

    Exit status: 0 on success, 2 for bad input (not a run folder or certificate, a missing
    originals folder) or when the report extra (matplotlib) is not installed.
    """
    try:
        from privface.reports import (render_photo_run, render_table_anonymization,
                                      require_matplotlib, write_html)

        require_matplotlib()
        check_distinct_paths(inputs={"RUN": run, "--originals": originals},
                             outputs={"--output": output})
        if originals is not None and not originals.is_dir():
            raise InputError("expected the folder of the original photos", file=str(originals))
        if run.is_dir():
            html = render_photo_run(run, originals=originals, thumbnails=thumbnails)
        elif run.is_file():
            if originals is not None:
                raise InputError("--originals applies to photo runs, not to a table's "
                                 "certificate", file=str(run))
            html = render_table_anonymization(read_table_certificate(run))
        else:
            raise InputError("no such file or folder", file=str(run))
        if output is None:
            typer.echo(html, nl=False)
        else:
            write_html(output, html)
            stderr.print(f"privface report: wrote {output}")
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    raise typer.Exit(EXIT_OK)
