"""Photos become a table: detect, find landmarks, align, predict attributes, embed.

:class:`FaceAnalyzer` composes the parts of stage I; :func:`analyze_photos` runs it over files and
returns one row per detected face (file, face index, box, 40 attributes, optional identity), the
table the privacy engine audits. Photos that cannot be used are listed with the reason, never
silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base.workers import worker_pool

from .alignment import CELEBA, AlignedFace, FaceGeometry, align_face
from .detection import DetectedFace, FaceDetector
from .images import MAX_PIXELS, ImageError, list_images, load_image
from .landmarks import LandmarkPredictor
from .model import load_default_model


@dataclass
class Face:
    """One face of a photo: its detection, 68 landmarks and CelebA-aligned crop."""

    index: int
    detection: DetectedFace
    landmarks68: np.ndarray = field(repr=False)
    aligned: AlignedFace = field(repr=False)


@dataclass
class PhotoAnalysis:
    """What :func:`analyze_photos` found.

    Attributes
    ----------
    faces : DataFrame
        One row per face: ``file``, ``face`` (0 is the largest), ``x``, ``y``, ``width``,
        ``height``, ``score``, then the 40 attributes as CelebA's 1 / -1, then ``identity`` when
        identities were given.
    skipped : DataFrame
        ``file`` and ``reason`` for every photo that gave no row.
    landmarks : ndarray
        ``(n_faces, 68, 2)`` dlib landmarks in photo pixels, row for row with ``faces`` (what
        alignment and paste-back need).
    embeddings : ndarray or None
        ``(n_faces, d)`` identity embeddings, when the analyzer has a ``recognizer``.
    landmarks5 : ndarray or None
        ``(n_faces, 5, 2)``: the detector's five points (eye centres, nose tip, mouth corners),
        where the recognizer cut its crop.
    scores : ndarray or None
        ``(n_faces, n_attributes)``: the attribute model's signed scores (positive: present),
        from which the 1 / -1 columns were read; :meth:`AttributeModel.probability` turns them
        into the probability that each attribute is present.
    """

    faces: pd.DataFrame
    skipped: pd.DataFrame
    landmarks: np.ndarray | None = field(default=None, repr=False)
    embeddings: np.ndarray | None = field(default=None, repr=False)
    landmarks5: np.ndarray | None = field(default=None, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)

    def largest_faces(self) -> pd.DataFrame:
        """One row per photo (its largest face), indexed by file name as in CelebA's files."""
        largest = self.faces[self.faces["face"] == 0]
        return largest.set_index("file").rename_axis("image_id")


class FaceAnalyzer:
    """Stage I: photo -> faces (detection, 68 landmarks, alignment) -> attributes.

    Parameters
    ----------
    detector : FaceDetector, optional
    landmarks : LandmarkPredictor, optional
    attribute_model : AttributeModel, optional
        Default: the model shipped with privface (:func:`~privface.attributes.load_default_model`).
    geometry : FaceGeometry
        The aligned crop the attribute model takes (CelebA's 178 x 218 for the shipped model).
    recognizer : FaceRecognizer, optional
        Also embed every face with it (``PhotoAnalysis.embeddings``), e.g. to tell who is who.

    Examples
    --------
    >>> analyzer = FaceAnalyzer()
    >>> analyzer.faces(np.zeros((100, 100, 3), np.uint8))
    []
    """

    def __init__(self, detector: FaceDetector | None = None,
                 landmarks: LandmarkPredictor | None = None, attribute_model=None,
                 geometry: FaceGeometry = CELEBA, recognizer=None) -> None:
        self.detector = detector or FaceDetector()
        self.recognizer = recognizer
        self.landmarks = landmarks or LandmarkPredictor()
        self._attribute_model = attribute_model
        self.geometry = geometry

    @property
    def attribute_model(self):
        """The attribute model, loaded on first use."""
        if self._attribute_model is None:
            self._attribute_model = load_default_model()
        return self._attribute_model

    def faces(self, image: np.ndarray, *, max_faces: int | None = None) -> list[Face]:
        """Detect, landmark and align every face of an RGB photo, largest first."""
        detections = self.detector.detect(image)[:max_faces]
        out = []
        for index, detection in enumerate(detections):
            points = self.landmarks.predict(image, detection)
            out.append(Face(index, detection, points, align_face(image, points, self.geometry)))
        return out


def analyze_photos(photos: str | os.PathLike | Sequence[str | os.PathLike], *,
                   analyzer: FaceAnalyzer | None = None,
                   identities: pd.Series | None = None,
                   largest_only: bool = False,
                   batch_size: int = 64,
                   max_pixels: int = MAX_PIXELS,
                   workers: int = 1,
                   on_photo: Callable[[Path], None] | None = None) -> PhotoAnalysis:
    """Predict the 40 CelebA attributes of every face in a folder or list of photos.

    Parameters
    ----------
    photos : path or sequence of paths
        A folder (its photos, sorted by name) or the photo files themselves.
    analyzer : FaceAnalyzer, optional
        The parts to use; default: YuNet, dlib landmarks and the shipped attribute model.
    identities : Series, optional
        Identity per file name (as :func:`~privface.privmetrics.readers.read_celeba_identities`
        returns), added as the column ``identity``; photos without one are skipped.
    largest_only : bool
        Keep only the largest face of each photo.
    batch_size : int
        Faces per call of the attribute model (and photos per task with several workers).
    workers : int
        Processes to run in parallel (the models use one core each); the result is the same.
    on_photo : callable, optional
        Called with each photo's path once it is done (for progress bars).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (64, 64)).save(folder / "blank.png")
    >>> result = analyze_photos(folder)
    >>> len(result.faces), result.skipped.to_dict("records")
    (0, [{'file': 'blank.png', 'reason': 'no face found'}])
    """
    analyzer = analyzer or FaceAnalyzer()
    model = analyzer.attribute_model
    paths = list_images(photos) if isinstance(photos, (str, os.PathLike)) else \
        [Path(p) for p in photos]
    order = {p.name: i for i, p in enumerate(paths)}  # skipped photos are listed in this order
    skipped: list[dict] = []
    if identities is not None:
        known = [p.name in identities.index for p in paths]
        skipped += [{"file": p.name, "reason": "no identity for this file in the identity file"}
                    for p, ok in zip(paths, known) if not ok]
        paths = [p for p, ok in zip(paths, known) if ok]
    chunks = photo_chunks(paths, batch_size, workers)
    parts: list[_Part] = []
    if workers > 1 and len(chunks) > 1:
        with worker_pool(min(workers, len(chunks)), _start_worker,
                         (analyzer, largest_only, batch_size, max_pixels)) as pool:
            for chunk, part in zip(chunks, pool.map(_worker_chunk, chunks)):
                parts.append(part)
                for path in chunk:
                    if on_photo is not None:
                        on_photo(path)
    else:
        for chunk in chunks:
            parts.append(_analyze_chunk(analyzer, chunk, largest_only, batch_size, max_pixels))
            for path in chunk:
                if on_photo is not None:
                    on_photo(path)
    rows = [row for part in parts for row in part.rows]
    skipped += [item for part in parts for item in part.skipped]
    labels = [part.labels for part in parts if len(part.labels)]
    scores = [part.scores for part in parts if len(part.scores)]
    landmarks = np.concatenate([part.landmarks for part in parts]) if parts else \
        np.zeros((0, 68, 2), np.float32)
    landmarks5 = np.concatenate([part.landmarks5 for part in parts]) if parts else \
        np.zeros((0, 5, 2), np.float32)
    embeddings = None
    if analyzer.recognizer is not None:
        found = [part.embeddings for part in parts if len(part.embeddings)]
        embeddings = np.concatenate(found) if found else np.zeros((0, 0), np.float32)
    table = pd.DataFrame(rows, columns=["file", "face", "x", "y", "width", "height", "score"])
    predicted = np.vstack(labels) if labels else np.zeros((0, len(model.attributes)), np.int8)
    table = pd.concat([table, pd.DataFrame(predicted, columns=list(model.attributes))], axis=1)
    if identities is not None:
        table["identity"] = identities.reindex(table["file"]).to_numpy()
    skipped.sort(key=lambda item: order.get(item["file"], len(order)))
    scores = np.vstack(scores) if scores else np.zeros((0, len(model.attributes)), np.float32)
    return PhotoAnalysis(table, pd.DataFrame(skipped, columns=["file", "reason"]), landmarks,
                         embeddings, landmarks5, scores)


def photo_chunks(paths: Sequence, batch_size: int, workers: int = 1) -> list[list]:
    """The photos in order, cut into the chunks that :func:`analyze_photos` hands out.

    At most ``batch_size`` photos per chunk; with several workers, also at least four chunks per
    worker where there are photos enough, so that no worker is left alone with one long chunk
    (80 photos in chunks of 64 kept one of two workers busy for 80% of the time). Every face is
    analysed on its own, so the chunks change nothing in the result.

    Examples
    --------
    >>> [len(c) for c in photo_chunks(range(80), 64)]
    [64, 16]
    >>> [len(c) for c in photo_chunks(range(80), 64, workers=2)]
    [10, 10, 10, 10, 10, 10, 10, 10]
    """
    paths = list(paths)
    size = max(1, batch_size)
    if workers > 1:
        size = max(1, min(size, -(-len(paths) // (4 * workers))))
    return [paths[i:i + size] for i in range(0, len(paths), size)]


@dataclass
class _Part:
    """What one chunk of photos gave (rows, labels, skipped photos, landmarks, embeddings)."""

    rows: list[dict]
    labels: np.ndarray
    skipped: list[dict]
    landmarks: np.ndarray
    embeddings: np.ndarray | None
    landmarks5: np.ndarray
    scores: np.ndarray


def _analyze_chunk(analyzer: FaceAnalyzer, paths: Sequence[Path], largest_only: bool,
                   batch_size: int, max_pixels: int) -> _Part:
    """Rows, predicted labels, skipped photos, landmarks and embeddings of a few photos."""
    rows: list[dict] = []
    crops: list[np.ndarray] = []
    skipped: list[dict] = []
    points: list[np.ndarray] = []
    points5: list[np.ndarray] = []
    chips: list[np.ndarray] = []
    recognizer = analyzer.recognizer
    for path in paths:
        try:
            image = load_image(path, max_pixels=max_pixels)
        except ImageError as error:
            skipped.append({"file": path.name, "reason": error.message})
            continue
        try:
            faces = analyzer.faces(image, max_faces=1 if largest_only else None)
        except ValueError as error:  # degenerate landmarks: the two eyes coincide
            skipped.append({"file": path.name, "reason": f"cannot align the face: {error}"})
            continue
        if not faces:
            skipped.append({"file": path.name, "reason": "no face found"})
        for face in faces:
            x, y, w, h = face.detection.box
            rows.append({"file": path.name, "face": face.index, "x": x, "y": y, "width": w,
                         "height": h, "score": face.detection.score})
            crops.append(face.aligned.image)
            points.append(np.asarray(face.landmarks68, np.float32))
            points5.append(np.asarray(face.detection.landmarks5, np.float32))
            if recognizer is not None:
                chips.append(recognizer.chip(image, face.detection, face.landmarks68))
    model = analyzer.attribute_model
    if not crops:
        scores = np.zeros((0, len(model.attributes)), np.float32)
    elif hasattr(model, "decision_function"):
        scores = np.asarray(model.decision_function(crops, batch_size=batch_size), np.float32)
    else:  # a plug-in model with labels only: its readings count as certain
        scores = np.asarray(model.predict(crops, batch_size=batch_size), np.float32)
    labels = np.where(scores > 0, 1, -1).astype(np.int8)  # as AttributeModel.predict reads them
    embeddings = None
    if recognizer is not None:
        embeddings = recognizer.embed_chips(chips) if chips else np.zeros((0, 0), np.float32)
    landmarks = np.stack(points) if points else np.zeros((0, 68, 2), np.float32)
    landmarks5 = np.stack(points5) if points5 else np.zeros((0, 5, 2), np.float32)
    return _Part(rows, labels, skipped, landmarks, embeddings, landmarks5, scores)


_WORKER: dict = {}


def _start_worker(analyzer: FaceAnalyzer, largest_only: bool, batch_size: int,
                  max_pixels: int) -> None:
    _WORKER.update(analyzer=analyzer, largest_only=largest_only, batch_size=batch_size,
                   max_pixels=max_pixels)


def _worker_chunk(paths: Sequence[Path]) -> _Part:
    return _analyze_chunk(_WORKER["analyzer"], paths, _WORKER["largest_only"],
                          _WORKER["batch_size"], _WORKER["max_pixels"])
