"""Running an evaluation: photos in, :class:`~privface.evaluation.report.EvaluationReport` out."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privface.privmetrics.errors import InputError
from privface.quality import QualityMeter

from .leakage import _DEFAULT_RECOGNIZERS, IdentityLeakage, far_key, identity_leakage
from .pairing import pair_photos
from .report import AttributeAgreement, EvaluationReport



class _Batcher:
    """Feeds items to ``compute`` in lists of ``size``; identical items are computed once.

    ``add`` returns a ticket: the item's row in :meth:`results`.
    """

    def __init__(self, compute: Callable[[list[np.ndarray]], np.ndarray], size: int) -> None:
        self.compute = compute
        self.size = max(1, int(size))
        self._tickets: dict[bytes, int] = {}
        self._queue: list[np.ndarray] = []
        self._done: list[np.ndarray] = []

    def add(self, item: np.ndarray) -> int:
        item = np.ascontiguousarray(item)
        digest = hashlib.blake2b(item.data, digest_size=16)
        digest.update(repr((item.shape, item.dtype.str)).encode())
        key = digest.digest()
        if key in self._tickets:
            return self._tickets[key]
        self._tickets[key] = ticket = len(self._tickets)
        self._queue.append(item)
        if len(self._queue) >= self.size:
            self._flush()
        return ticket

    def _flush(self) -> None:
        if self._queue:
            self._done.append(np.asarray(self.compute(self._queue)))
            self._queue = []

    def results(self) -> np.ndarray | None:
        self._flush()
        return np.concatenate(self._done) if self._done else None


def _recognizer_objects(recognizers) -> list:
    from privface.attributes.recognizers import FaceRecognizer, load_recognizer

    if isinstance(recognizers, (str, FaceRecognizer)):
        recognizers = (recognizers,)
    out = [load_recognizer(r) if isinstance(r, str) else r for r in recognizers]
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise ValueError(f"each recognizer may be named once, got {names}")
    return out


def _identity_series(identities) -> pd.Series | None:
    if identities is None or isinstance(identities, pd.Series):
        return identities
    from privface.privmetrics.readers import read_celeba_identities

    return read_celeba_identities(identities)


def evaluate_anonymization(
    originals: str | os.PathLike,
    anonymized: str | os.PathLike,
    *,
    identities: pd.Series | str | os.PathLike | None = None,
    recognizers: Sequence = _DEFAULT_RECOGNIZERS,
    attribute_model=None,
    fars: Sequence[float] = (1e-3, 1e-2),
    analyzer=None,
    on_pair: Callable[[str, int, int], None] | None = None,
    attributes: bool = True,
    batch_size: int = 64,
    max_pixels: int | None = None,
) -> EvaluationReport:
    """Measure identity leakage, image quality and attribute utility of an anonymized folder.

    Parameters
    ----------
    originals, anonymized : path-like
        Folders of photos; files pair by name (``a.jpg`` with ``a.jpg``, else with ``a.png``).
    identities : Series or path, optional
        Person per original file name (as
        :func:`~privface.privmetrics.readers.read_celeba_identities` returns, or the path of a
        CelebA identity file). Impostor pairs are then pairs of different persons and top-1
        counts a nearest original of the same person as re-identified. Originals without an
        identity are skipped.
    recognizers : sequence of str or FaceRecognizer
        Face recognizers to attack with, by name (``sface``, ``dlib``) or as objects.
    attribute_model : optional
        An object with ``attributes`` (names) and ``predict(crops, batch_size)`` returning 1 / -1
        per attribute for CelebA-aligned crops. Default: the analyzer's (the shipped model).
    fars : sequence of float
        False-accept rates at which match rates are reported.
    analyzer : FaceAnalyzer, optional
        Detector, landmarks and alignment geometry; default: YuNet and dlib's 68 landmarks.
    on_pair : callable, optional
        Called as ``on_pair(file_name, done, total)`` after each pair (for progress bars).
    attributes : bool
        Evaluate attribute preservation (needs an attribute model).
    batch_size : int
        Faces per call of the recognizers and the attribute model.
    max_pixels : int, optional
        Refuse photos larger than this (decompression bombs); default that of
        :func:`~privface.attributes.images.load_image`.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    InputError
        A folder that is missing or holds no photos, no file names in common, a bad identity
        file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> a, b = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> Image.new("RGB", (64, 64)).save(a / "x.png"); Image.new("RGB", (64, 64)).save(b / "x.png")
    >>> report = evaluate_anonymization(a, b, recognizers=["sface"], attributes=False)
    >>> report.pairs, report.skipped["reason"].tolist()
    (0, ['no face found in the original'])
    """
    from privface.attributes.alignment import align_face
    from privface.attributes.analysis import FaceAnalyzer
    from privface.attributes.images import MAX_PIXELS, ImageError, list_images, load_image

    fars = tuple(float(f) for f in fars)
    if not fars or not all(0 < f < 1 for f in fars):
        raise ValueError(f"every FAR must lie in (0, 1), got {list(fars)}")
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    originals, anonymized = Path(originals), Path(anonymized)
    original_files, anonymized_files = list_images(originals), list_images(anonymized)
    for folder, files in ((originals, original_files), (anonymized, anonymized_files)):
        if not files:
            raise InputError("the folder holds no photos (JPEG, PNG, BMP, WebP or TIFF)",
                             file=str(folder))
    pairs, skipped = pair_photos(original_files, anonymized_files)
    if not pairs:
        raise InputError(f"no photo of {originals} has a namesake in {anonymized}: the "
                         "anonymized photos must keep the original file names",
                         file=str(anonymized))
    id_series = _identity_series(identities)
    recs = _recognizer_objects(recognizers)
    analyzer = analyzer if analyzer is not None else FaceAnalyzer(attribute_model=attribute_model)
    model = None
    if attributes:
        # Load it before the long loop, so that a missing model fails in the first second.
        model = attribute_model if attribute_model is not None else analyzer.attribute_model
    geometry = analyzer.geometry

    embedders = {r.name: _Batcher(r.embed_chips, batch_size) for r in recs}
    predictor = _Batcher(lambda crops: model.predict(crops, batch_size=batch_size),
                         4 * batch_size) if model is not None else None
    meter = QualityMeter()
    rows: list[dict] = []
    quality_skipped = 0

    def skip(path: Path, folder: str, reason: str) -> None:
        skipped.append({"file": path.name, "folder": folder, "reason": reason})

    for done, (orig_path, anon_path) in enumerate(pairs, 1):
        try:
            if id_series is not None and orig_path.name not in id_series.index:
                skip(orig_path, "originals", "no identity for this file in the identity file")
                continue
            try:
                original = load_image(orig_path, max_pixels=max_pixels)
            except ImageError as error:
                skip(orig_path, "originals", error.message)
                continue
            try:
                faces = analyzer.faces(original, max_faces=1)
            except ValueError as error:  # degenerate landmarks: the eyes coincide
                skip(orig_path, "originals", f"cannot align the face: {error}")
                continue
            if not faces:
                skip(orig_path, "originals", "no face found in the original")
                continue
            try:
                changed = load_image(anon_path, max_pixels=max_pixels)
            except ImageError as error:
                skip(anon_path, "anonymized", error.message)
                continue
            face = faces[0]
            detections = analyzer.detector.detect(changed)
            row: dict[str, Any] = {"original": orig_path.name, "anonymized": anon_path.name,
                                   "face_detected": bool(detections)}
            if changed.shape[:2] == original.shape[:2]:
                where, box, points = "original", face.detection, face.landmarks68
            elif detections:
                where, box = "anonymized", detections[0]
                points = analyzer.landmarks.predict(changed, box)
            else:
                where, box, points = "anonymized", None, None
            crop = None
            if points is not None:
                try:
                    crop = align_face(changed, points, geometry).image
                except ValueError:
                    box = points = None
            row["landmarks"] = where
            for rec in recs:
                batcher = embedders[rec.name]
                row[f"_{rec.name}_orig"] = batcher.add(
                    rec.chip(original, face.detection, face.landmarks68))
                row[f"_{rec.name}_anon"] = batcher.add(rec.chip(changed, box, points)) \
                    if box is not None else -1
            if predictor is not None:
                row["_attr_orig"] = predictor.add(face.aligned.image)
                row["_attr_anon"] = predictor.add(crop) if crop is not None else -1
            if changed.shape == original.shape:
                row["_quality"] = meter.add(original, changed)
            else:
                row["_quality"] = -1
                quality_skipped += 1
            rows.append(row)
        finally:
            if on_pair is not None:
                on_pair(orig_path.name, done, len(pairs))

    table = pd.DataFrame(rows) if rows else \
        pd.DataFrame(columns=["original", "anonymized", "face_detected", "landmarks"])
    n = len(rows)
    names = [r["original"] for r in rows]
    ids = id_series.reindex(names).to_numpy() if id_series is not None else None
    if id_series is not None:
        table.insert(2, "identity", ids)
    notes: list[str] = []

    identity: dict[str, IdentityLeakage] = {}
    for rec in recs:
        embeddings = embedders[rec.name].results()
        orig_t = np.array([r[f"_{rec.name}_orig"] for r in rows], np.int64)
        anon_t = np.array([r[f"_{rec.name}_anon"] for r in rows], np.int64)
        has = anon_t >= 0
        gallery = embeddings[orig_t] if n else np.zeros((0, 1), np.float32)
        probes = embeddings[anon_t[has]] if n else np.zeros((0, 1), np.float32)
        leak = identity_leakage(gallery, probes, has, metric=rec.metric, fars=fars,
                                identities=ids, recognizer=rec.name)
        identity[rec.name] = leak
        if n:
            table[f"{rec.name}_distance"] = np.where(np.isfinite(leak.distances),
                                                     leak.distances, np.nan)
            table[f"{rec.name}_top1"] = leak.top1_hits
        low = [far_key(f) for f in fars if 0 < leak.impostor_pairs < 1 / f]
        if low:
            notes.append(f"{rec.name}: {leak.impostor_pairs:,} impostor pairs are fewer than "
                         f"1/FAR for FAR {', '.join(low)}: the threshold there lies just below "
                         "the closest impostor pair (stricter than the FAR asked)")
    if n == 1:
        notes.append("one usable pair: no impostor pairs, so no thresholds or match rates")

    quality_index = np.array([r["_quality"] for r in rows], np.int64)
    scores = meter.scores()
    for column in ("psnr", "ssim", "ms_ssim"):
        values = np.full(n, np.nan)
        values[quality_index >= 0] = getattr(scores, column)[quality_index[quality_index >= 0]]
        if n:
            table[column] = values
    if quality_skipped:
        notes.append(f"{quality_skipped:,} pairs differ in size: no quality scores for them, and "
                     "their anonymized faces were located by the anonymized photo's own detection")

    agreement = None
    if model is not None:
        labels = np.asarray(model.attributes, dtype=object)
        predictions = predictor.results()
        orig_t = np.array([r["_attr_orig"] for r in rows], np.int64)
        anon_t = np.array([r["_attr_anon"] for r in rows], np.int64)
        has = anon_t >= 0
        if has.any():
            same = predictions[orig_t[has]] == predictions[anon_t[has]]
            per_attribute = same.mean(axis=0)
            per_pair = np.full(n, np.nan)
            per_pair[has] = same.mean(axis=1)
        else:
            per_attribute = np.full(len(labels), np.nan)
            per_pair = np.full(n, np.nan)
        if n:
            table["attributes_preserved"] = per_pair
        agreement = AttributeAgreement(model=str(getattr(model, "name", type(model).__name__)),
                                       attributes=tuple(str(a) for a in labels),
                                       per_attribute=per_attribute, pairs=int(has.sum()))

    own = sum(1 for r in rows if r["landmarks"] == "anonymized")
    landmarks = None if not n else "original" if own == 0 else "anonymized" if own == n else \
        "mixed"
    table = table.drop(columns=[c for c in table.columns if c.startswith("_")])
    return EvaluationReport(
        originals=str(originals), anonymized=str(anonymized), pairs=n,
        faces_detected=sum(1 for r in rows if r["face_detected"]), landmarks=landmarks,
        pairs_own_detection=own, identity=identity, fars=fars, quality=scores,
        quality_skipped=quality_skipped, attributes=agreement,
        skipped=pd.DataFrame(skipped, columns=["file", "folder", "reason"]),
        per_pair=table, notes=notes)
