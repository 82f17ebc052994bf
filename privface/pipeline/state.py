"""The saved plan of a photo run, so that an interrupted run resumes where it stopped.

Everything decided before generation is saved once, in ``OUT_DIR/.privface-run/``: the faces found
(file, box, landmarks), who is who, and the PPAS targets. The targets must never be drawn twice:
each draw of the randomised response spends the privacy budget again. A resumed run loads the plan
(when its settings match) and only writes the photos that have no certificate yet.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privface.privmetrics.readers import atomic_write

STATE_DIR = ".privface-run"
SCHEMA = "privface.photo-plan/1"


@dataclass
class Plan:
    """Faces, persons and targets of a run: everything generation needs.

    Attributes
    ----------
    faces : DataFrame
        One row per face: ``file``, ``face``, box, source attributes, ``person``, ``feasible``,
        ``reason``, and the targets as ``target:<attribute>``.
    landmarks : ndarray
        ``(n_faces, 68, 2)`` in photo pixels.
    skipped : DataFrame
        ``file``, ``reason`` of photos without a usable face.
    info : dict
        JSON-ready: persons case, PPAS summary and certificates, settings fingerprint.
    landmarks5 : ndarray, optional
        ``(n_faces, 5, 2)``: the detector's five points, where SFace cuts its crop.
    embeddings : ndarray, optional
        ``(n_faces, 128)``: SFace's embeddings of the original faces (when persons were found
        by SFace), reused to measure each output's leakage.
    """

    faces: pd.DataFrame
    landmarks: np.ndarray
    skipped: pd.DataFrame
    info: dict
    landmarks5: np.ndarray | None = None
    embeddings: np.ndarray | None = None


def fingerprint(settings: dict, photos: list[Path]) -> str:
    """A hash of the run's settings and its input photos (names, sizes, times).

    Examples
    --------
    >>> len(fingerprint({"k": 5}, []))
    64
    """
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in photos]
    text = json.dumps({"settings": settings, "photos": stats}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def save_plan(plan: Plan, out_dir: Path) -> None:
    """Write the plan atomically into ``out_dir/.privface-run/``."""
    folder = out_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)

    def write_arrays(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            arrays = {"landmarks": plan.landmarks.astype(np.float32)}
            for name in ("landmarks5", "embeddings"):
                value = getattr(plan, name)
                if value is not None and len(value) == len(plan.landmarks):
                    arrays[name] = np.asarray(value, np.float32)
            np.savez(handle, **arrays)

    atomic_write(folder / "landmarks.npz", write_arrays)
    atomic_write(folder / "faces.csv", lambda tmp: plan.faces.to_csv(tmp, index=False))
    atomic_write(folder / "skipped.csv", lambda tmp: plan.skipped.to_csv(tmp, index=False))
    # The JSON goes last: its presence means the plan is complete.
    text = json.dumps({"schema": SCHEMA, **plan.info}, indent=1, default=str)
    atomic_write(folder / "plan.json", lambda tmp: Path(tmp).write_text(text))


def load_plan(out_dir: Path, expected_fingerprint: str) -> Plan | None:
    """The saved plan when it exists and was made with the same settings, else None."""
    folder = out_dir / STATE_DIR
    try:
        info = json.loads((folder / "plan.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("schema") != SCHEMA or info.get("fingerprint") != expected_fingerprint:
        return None
    faces = pd.read_csv(folder / "faces.csv", keep_default_na=False,
                        na_values={"reason": [""], "person": []},
                        dtype={"file": str, "person": str})
    faces["reason"] = faces["reason"].astype(object).where(faces["reason"].notna(), None)
    with np.load(folder / "landmarks.npz", allow_pickle=False) as arrays:
        landmarks = arrays["landmarks"]
        # Plans saved before these arrays existed still resume (leakage then recomputes).
        landmarks5 = arrays["landmarks5"] if "landmarks5" in arrays else None
        embeddings = arrays["embeddings"] if "embeddings" in arrays else None
    skipped = pd.read_csv(folder / "skipped.csv", dtype=str, keep_default_na=False)
    info.pop("schema", None)
    return Plan(faces, landmarks, skipped, info, landmarks5, embeddings)


def remove_plan(out_dir: Path) -> None:
    """Forget a finished or abandoned plan."""
    folder = out_dir / STATE_DIR
    for name in ("plan.json", "faces.csv", "skipped.csv", "landmarks.npz"):
        try:
            os.remove(folder / name)
        except FileNotFoundError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass
