"""The output folder of a photo run: its staging area, and what a restart clears.

A photo run promises that every photo in ``OUT`` has a certificate that describes it, whatever
stops the run (docs/files.md). Three things keep that promise:

* one run at a time: :func:`~privface.base.files.lock_output` holds an exclusive ``flock`` on
  ``OUT/.privface.lock`` for the whole run; a second run into the folder is refused with its PID;
* photos are finished in ``OUT/.partial`` (:data:`PARTIAL`) and moved into place by
  :func:`release` only after their certificate is written: a certificate without its photo can
  exist for an instant, a photo without its certificate never;
* a photo counts as done only when its certificate records the SHA-256 of its bytes
  (:func:`finished_photos`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path


from privface.base.files import fsync_folder

from .records import CERTIFICATES, REPORT
from .state import STATE_DIR, file_sha256

PARTIAL = ".partial"
def fresh_partial(out: Path) -> Path:
    """A new, empty staging folder ``OUT/.partial/RUN``; what earlier runs left there is gone.

    Each run stages in its own subfolder: a worker of a killed run, still finishing a photo for
    the half second before it notices, writes into a folder that no longer exists instead of
    over a photo this run has staged.
    """
    partial = out / PARTIAL
    if partial.is_symlink() or partial.is_file():
        partial.unlink()
    elif partial.is_dir():
        # ignore_errors: such a worker may add a file while the folder is being removed
        shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=partial))


def release(staged: Path, target: Path) -> None:
    """Move a finished photo from the staging folder into place (its certificate is written)."""
    os.replace(staged, target)
    fsync_folder(target.parent)


def finished_photos(out: Path, names: Iterable[str]) -> list[str]:
    """The photos among ``names`` that are in ``out`` with a certificate recording their SHA-256.

    Examples
    --------
    >>> import tempfile
    >>> finished_photos(Path(tempfile.mkdtemp()), ["a.jpg"])
    []
    """
    done = []
    for name in names:
        photo = out / name
        try:
            certificate = json.loads((out / CERTIFICATES / f"{name}.json").read_text())
            if not photo.is_file() or photo.is_symlink():
                continue
            if certificate.get("sha256") == file_sha256(photo):
                done.append(name)
        except (OSError, ValueError, AttributeError):
            continue
    return done


def count_released(out: Path) -> int:
    """How many photos lie in ``out`` beside their certificate (cheap: no hashing).

    Examples
    --------
    >>> import tempfile
    >>> count_released(Path(tempfile.mkdtemp()))
    0
    """
    certificates = out / CERTIFICATES
    if not certificates.is_dir():
        return 0
    return sum((out / path.name[:-len(".json")]).is_file()
               for path in certificates.glob("*.json"))


def previous_outputs(out: Path, names: Iterable[str]) -> list[str]:
    """What a photo run may have written into ``out``: its report, certificates and photos."""
    found = [REPORT] if (out / REPORT).exists() else []
    certificates = out / CERTIFICATES
    if certificates.is_dir():
        found += [f"{CERTIFICATES}/{p.name}" for p in certificates.iterdir()
                  if p.name.endswith(".json")]
    found += [name for name in names if (out / name).exists() or (out / name).is_symlink()]
    return found


def clear_outputs(out: Path, names: Iterable[str]) -> int:
    """Remove every output of a previous run from ``out`` (``--restart``); how many files went.

    The photos named like an input photo or like a certificate, the certificates, the report,
    the saved plan and the staging folder. Nothing else in ``out`` is touched.
    """
    names = set(names)
    removed = 0
    certificates = out / CERTIFICATES
    if certificates.is_dir():
        for path in certificates.iterdir():
            if path.name.endswith(".json"):
                names.add(path.name[:-len(".json")])
                path.unlink()
                removed += 1
    for name in sorted(names) + [REPORT]:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink()
            removed += 1
    for folder in (out / STATE_DIR, out / PARTIAL):
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)  # as in fresh_partial
    return removed
