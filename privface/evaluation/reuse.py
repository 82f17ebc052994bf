"""What an evaluation can take from the anonymize run that wrote the folder it evaluates.

``privface anonymize`` analyses every original before it writes anything and keeps that analysis
in ``OUT/.privface-run/`` (:mod:`privface.pipeline.state`): each face's box, score and five
detector points (``faces.csv``, ``landmarks.npz``), its 68 landmarks, the attribute model's
readings and, when SFace told the persons apart, SFace's embedding of the original face. These are
exactly what ``privface evaluate`` computes again for the originals: for the largest face of each
photo, the same detector, landmarks, crop and networks give the same numbers. Reusing them saves,
per pair, the original's detection, its 68 landmarks, its SFace pass and the attribute model's two
SFace passes.

The run also keeps what its checks computed on each written photo's first face, from the pixels
the written file decodes to and cut with the original's points, as evaluation cuts it: SFace's
embedding (the leakage check's) and the attribute model's readings (``written.npz``, keyed by the
written file's SHA-256). Evaluation takes them for an anonymized photo whose bytes hash to the
recorded SHA-256, when its original was reused too: two or three SFace passes fewer per pair.

They are reused only for originals whose bytes are the ones the run read (the run records every
input photo's SHA-256; evaluation hashes the bytes it decodes, so a photo is still read once) and
only when the run's models are the installed ones (package versions and the SHA-256 of privface's
model files, as the run records them). Anything else falls back to computing, and the report says
how many originals were reused and which differed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from privface.attributes.detection import DetectedFace
from privface.attributes.model import load_default_model
from privface.attributes.recognizers import RECOGNIZERS
from privface.pipeline.state import SCHEMA, STATE_DIR, load_written, model_identity


@dataclass
class RunFace:
    """The run's analysis of one original's largest face, and the bytes it was made from.

    ``sface`` is SFace's embedding (None when the run did not compute one), ``labels`` the
    attribute model's 1 / -1 readings in the evaluation model's order (None when not reusable).
    ``written`` is the run's check of the photo it wrote from this original: the written file's
    SHA-256, SFace's embedding of its first face and the model's readings of it (either None
    when not reusable); None when the run kept no such record.
    """

    sha256: str
    detection: DetectedFace = field(repr=False)
    landmarks68: np.ndarray = field(repr=False)
    sface: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    written: tuple[str, np.ndarray | None, np.ndarray | None] | None = field(default=None,
                                                                            repr=False)


@dataclass
class RunAnalysis:
    """The reusable part of a run folder: one :class:`RunFace` per original file name."""

    faces: dict[str, RunFace]
    sface: bool
    attributes: bool
    note: str | None = None
    written: bool = False


def bytes_sha256(data: bytes) -> str:
    """The SHA-256 of some bytes, as hex (as the run records each photo's).

    Examples
    --------
    >>> bytes_sha256(b"abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(data).hexdigest()


def read_run_analysis(anonymized: Path, names: Sequence[str], recognizers: Sequence,
                      model) -> RunAnalysis | None:
    """The run's analysis of the originals ``names``, from ``anonymized/.privface-run``.

    Parameters
    ----------
    anonymized : Path
        The folder evaluated, as ``privface anonymize --out`` wrote it.
    names : sequence of str
        File names of the originals to look up.
    recognizers : sequence of FaceRecognizer
        The evaluation's recognizers; SFace's embeddings are reused for the registry's SFace.
    model : AttributeModel or None
        The evaluation's attribute model; readings are reused only for the shipped model (the one
        the run's CLI used).

    Returns
    -------
    RunAnalysis or None
        None when the folder holds no run state; an empty analysis with a ``note`` when it holds
        one that cannot be reused (other models, another format, unreadable).

    Examples
    --------
    >>> import tempfile
    >>> read_run_analysis(Path(tempfile.mkdtemp()), ["a.jpg"], [], None) is None
    True
    """
    folder = anonymized / STATE_DIR
    if not (folder / "plan.json").exists():
        return None

    def refuse(why: str) -> RunAnalysis:
        return RunAnalysis({}, False, False, f"the anonymize run's analysis in {folder} was not "
                           f"reused ({why}): every original was analysed again")

    try:
        info = json.loads((folder / "plan.json").read_text())
        if not isinstance(info, dict) or info.get("schema") != SCHEMA:
            return refuse(f"its format is not {SCHEMA}")
        identity = info.get("identity")
        if not isinstance(identity, dict):
            return refuse("it records no photos or models")
        photos = identity.get("photos") or {}
        recorded = identity.get("models") or {}
        installed = model_identity({})
        changed = sorted(k for k, v in installed.items() if recorded.get(k) != v)
        if changed:
            return refuse("models differ from the installed ones: " + ", ".join(changed))
        faces = pd.read_csv(folder / "faces.csv", dtype={"file": str},
                            float_precision="round_trip")
        with np.load(folder / "landmarks.npz", allow_pickle=False) as arrays:
            landmarks = arrays["landmarks"]
            landmarks5 = arrays["landmarks5"] if "landmarks5" in arrays else None
            embeddings = arrays["embeddings"] if "embeddings" in arrays else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return refuse(f"cannot read it: {error!r}")
    if len(faces) == 0:
        return None  # the run found no face: nothing to take from it
    if landmarks5 is None or len(landmarks5) != len(faces) or len(landmarks) != len(faces):
        return refuse("it holds no detector points for its faces")
    wanted = set(names)
    largest = (faces["face"].to_numpy() == 0) & faces["file"].isin(wanted).to_numpy() & \
        faces["file"].isin(list(photos)).to_numpy()
    rows = np.flatnonzero(largest)
    registry_sface = any(type(r) is RECOGNIZERS["sface"] for r in recognizers)
    sface = embeddings is not None and len(embeddings) == len(faces) and registry_sface
    labels = None
    shipped = model is not None and model is load_default_model()
    if shipped:
        # The run keeps the model's own reading of a controlled attribute as ``model:<name>``
        # (the plain column then holds PPAS's pooled reading).
        columns = [f"model:{a}" if f"model:{a}" in faces.columns else a
                   for a in model.attributes]
        if all(c in faces.columns for c in columns):
            labels = faces[columns].to_numpy(np.int8)
    boxes = faces[["x", "y", "width", "height"]].to_numpy(np.float64)
    scores = faces["score"].to_numpy(np.float64)
    # The written faces' records serve only where something reads them: the registry's SFace,
    # or the shipped model (whose order of attributes the run's readings follow).
    written = load_written(anonymized) if registry_sface or shipped else {}
    width = len(model.attributes) if shipped else -1
    out = {}
    for row in rows:
        name = faces.at[row, "file"]
        detection = DetectedFace(box=tuple(float(v) for v in boxes[row]),
                                 score=float(scores[row]),
                                 landmarks5=landmarks5[row].astype(np.float64))
        record = written.get(name)
        if record is not None:
            record = (record[0], record[1] if registry_sface else None,
                      record[2] if len(record[2]) == width else None)
        out[name] = RunFace(str(photos[name]), detection, landmarks[row].astype(np.float64),
                            embeddings[row] if sface else None,
                            labels[row] if labels is not None else None, record)
    return RunAnalysis(out, sface, labels is not None, written=bool(written))
