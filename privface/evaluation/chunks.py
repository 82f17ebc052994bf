"""The work of an evaluation, in chunks of photo pairs: here or in worker processes.

Each chunk of pairs is read, detected, cropped, embedded, predicted and scored by
:func:`evaluate_chunk`; :func:`run_in_workers` spreads the chunks over spawned processes. The
chunks depend on the number of pairs only, never on the workers, so the numbers that
:mod:`~privface.evaluation.run` assembles from them are the same whatever the workers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from privface.attributes.alignment import align_face
from privface.attributes.model import load_default_model
from privface.attributes.recognizers import FaceRecognizer, RECOGNIZERS, load_recognizer
from privface.base.errors import InputError
from privface.base.workers import worker_pool
from privface.quality import QualityMeter, QualityScores

from .reuse import RunFace, bytes_sha256

#: One pair to evaluate: original, anonymized, whether the original has an identity, and the
#: anonymize run's analysis of the original (None: none to reuse).
Item = tuple[Path, Path, bool, "RunFace | None"]



def recognizer_objects(recognizers) -> list:
    """Recognizer names or objects as objects, each name at most once."""
    if isinstance(recognizers, (str, FaceRecognizer)):
        recognizers = (recognizers,)
    out = [load_recognizer(r) if isinstance(r, str) else r for r in recognizers]
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise InputError(f"each recognizer may be named once, got {names}")
    return out


class _Batcher:
    """Feeds items to ``compute`` in lists of ``size``; identical items are computed once.

    ``add`` returns a ticket: the item's row in :meth:`results`. An item whose result is known
    already (the anonymize run computed it) is added with ``known`` and is not computed; an
    identical item added later shares its ticket.
    """

    def __init__(self, compute: Callable[[list[np.ndarray]], np.ndarray], size: int) -> None:
        self.compute = compute
        self.size = max(1, int(size))
        self._tickets: dict[bytes, int] = {}
        self._queue: list[np.ndarray] = []
        self._waiting: list[int] = []
        self._values: list[np.ndarray | None] = []

    def add(self, item: np.ndarray, known: np.ndarray | None = None) -> int:
        item = np.ascontiguousarray(item)
        digest = hashlib.blake2b(item.data, digest_size=16)
        digest.update(repr((item.shape, item.dtype.str)).encode())
        key = digest.digest()
        if key in self._tickets:
            return self._tickets[key]
        self._tickets[key] = ticket = len(self._values)
        self._values.append(known)
        if known is None:
            self._queue.append(item)
            self._waiting.append(ticket)
            if len(self._queue) >= self.size:
                self._flush()
        return ticket

    def _flush(self) -> None:
        if self._queue:
            for ticket, value in zip(self._waiting, np.asarray(self.compute(self._queue))):
                self._values[ticket] = value
            self._queue, self._waiting = [], []

    def results(self) -> np.ndarray | None:
        self._flush()
        return np.stack(self._values) if self._values else None


# --------------------------------------------------------------------------------------------
# Chunks of pairs: evaluated here or in worker processes, assembled here


#: Small folders are cut into about this many chunks, so that several workers share them.
_MIN_CHUNKS = 16


def chunk_size(pairs: int, batch_size: int) -> int:
    """Pairs per chunk: at most ``batch_size``; about ``pairs / 16`` for smaller folders.

    Depends on the number of pairs only (never on the workers), so that every batch of the
    recognizers, the attribute model and the quality meter holds the same faces whatever the
    number of workers, and the numbers come out the same to the last bit.

    Examples
    --------
    >>> chunk_size(6000, 64), chunk_size(200, 64), chunk_size(8, 64), chunk_size(0, 64)
    (64, 13, 1, 1)
    """
    return max(1, min(int(batch_size), math.ceil(pairs / _MIN_CHUNKS)))


@dataclass
class Parts:
    """What evaluates a chunk: the face analyzer, recognizers, attribute model and limits.

    The same record starts a worker process, where it must pickle: ``analyzer`` None builds the
    default one in the worker, and a recognizer of the registry travels as its name
    (:func:`portable`) and is loaded there.
    """

    analyzer: Any
    recognizers: list
    model: Any
    batch_size: int
    max_pixels: int


@dataclass
class Chunk:
    """What one chunk of pairs gave, in pair order.

    ``rows`` are the usable pairs (file names, detection, landmarks); per recognizer name,
    ``embeddings`` holds the originals' embeddings (one per row), the anonymized faces'
    (one per row where ``embedded``) and ``embedded``; ``predictions`` the same for the attribute
    model; ``quality`` the scores of the rows where ``scored``.
    """

    rows: list[dict]
    skipped: list[dict]
    embeddings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    predictions: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    quality: QualityScores
    scored: np.ndarray = field(repr=False)
    reused: int = 0
    changed: list[str] = field(default_factory=list)
    reused_written: int = 0
    changed_written: list[str] = field(default_factory=list)


def default_attribute_model():
    """The shipped attribute model (a function, so that workers load it once each)."""
    return load_default_model()


def portable(recognizer):
    """A registry recognizer as its name (its weights do not pickle), any other as itself."""

    return recognizer.name if type(recognizer) is RECOGNIZERS.get(recognizer.name) else \
        recognizer


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch (the quality scores) on one thread, then restore the caller's setting.

    SSIM's float32 sums depend on how torch splits them among threads; on one thread they come
    out the same in this process and in any worker, whatever the cores.
    """
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def evaluate_chunk(parts: Parts, items: Sequence[Item],
                    advance: Callable[[str], None] | None = None) -> Chunk:
    """Detect, crop, embed, predict and score a few pairs ``(original, anonymized, has_id,
    run_face)``; an original whose bytes are those of ``run_face`` is not analysed again."""
    with _one_torch_thread():
        return _evaluate_pairs(parts, items, advance)


def _evaluate_pairs(parts: Parts, items: Sequence[Item],
                    advance: Callable[[str], None] | None) -> Chunk:
    # imported on use: it loads Pillow
    from privface.attributes.analysis import Face
    from privface.attributes.images import ImageError

    analyzer, recs, model = parts.analyzer, parts.recognizers, parts.model
    max_pixels, batch_size = parts.max_pixels, parts.batch_size
    geometry = analyzer.geometry
    embedders = {r.name: _Batcher(r.embed_chips, batch_size) for r in recs}
    predictor = _Batcher(lambda crops: model.predict(crops, batch_size=batch_size),
                         4 * batch_size) if model is not None else None
    meter = QualityMeter()
    rows: list[dict] = []
    skipped: list[dict] = []

    def skip(path: Path, folder: str, reason: str) -> None:
        skipped.append({"file": path.name, "folder": folder, "reason": reason})

    reused, changed_originals = 0, []
    reused_written, changed_written = 0, []
    for orig_path, anon_path, has_identity, prior in items:
        try:
            if not has_identity:
                skip(orig_path, "originals", "no identity for this file in the identity file")
                continue
            try:
                original, known = _read_original(orig_path, prior, max_pixels)
            except ImageError as error:
                skip(orig_path, "originals", error.message)
                continue
            if prior is not None and known is None:
                changed_originals.append(orig_path.name)
            try:
                faces = [Face(0, known.detection, known.landmarks68,
                              align_face(original, known.landmarks68, geometry))] \
                    if known is not None else analyzer.faces(original, max_faces=1)
            except ValueError as error:  # degenerate landmarks: the eyes coincide
                skip(orig_path, "originals", f"cannot align the face: {error}")
                continue
            if not faces:
                skip(orig_path, "originals", "no face found in the original")
                continue
            reused += known is not None
            try:
                changed, written = _read_anonymized(anon_path, known, max_pixels)
            except ImageError as error:
                skip(anon_path, "anonymized", error.message)
                continue
            if known is not None and known.written is not None and written is None:
                changed_written.append(anon_path.name)
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
            # The run cut its written faces with the original's points: the same crops as here
            # only when evaluation cuts there too.
            if where != "original":
                written = None
            reused_written += written is not None and any(v is not None for v in written[1:])
            for rec in recs:
                batcher = embedders[rec.name]
                sface = rec.name == "sface" and type(rec) is RECOGNIZERS["sface"]
                row[f"_{rec.name}_orig"] = batcher.add(
                    rec.chip(original, face.detection, face.landmarks68),
                    known.sface if known is not None and sface else None)
                row[f"_{rec.name}_anon"] = batcher.add(
                    rec.chip(changed, box, points),
                    written[1] if written is not None and sface else None) \
                    if box is not None else -1
            if predictor is not None:
                row["_attr_orig"] = predictor.add(
                    face.aligned.image, known.labels if known is not None else None)
                row["_attr_anon"] = predictor.add(
                    crop, written[2] if written is not None else None) \
                    if crop is not None else -1
            row["_quality"] = changed.shape == original.shape
            if row["_quality"]:
                meter.add(original, changed)
            rows.append(row)
        finally:
            if advance is not None:
                advance(orig_path.name)

    def split(batcher: _Batcher, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values = batcher.results()
        orig_t = np.array([r[f"_{key}_orig"] for r in rows], np.int64)
        anon_t = np.array([r[f"_{key}_anon"] for r in rows], np.int64)
        has = anon_t >= 0
        if values is None:
            empty = np.zeros((0, 0), np.float32)
            return empty, empty, has
        return values[orig_t], values[anon_t[has]], has

    embeddings = {name: split(batcher, name) for name, batcher in embedders.items()}
    predictions = split(predictor, "attr") if predictor is not None else None
    scored = np.array([r["_quality"] for r in rows], dtype=bool)
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return Chunk(rows, skipped, embeddings, predictions, meter.scores(), scored, reused,
                 changed_originals, reused_written, changed_written)


def _read_checked(path: Path, sha256: str | None, max_pixels: int) -> tuple[np.ndarray, bool]:
    """A photo, and whether its bytes hash to ``sha256`` (read once: hashed, then decoded from
    memory)."""
    # imported on use: it loads Pillow
    from privface.attributes.images import load_image

    if sha256 is None:
        return load_image(path, max_pixels=max_pixels), False
    try:
        data = path.read_bytes()
    except OSError:
        return load_image(path, max_pixels=max_pixels), False  # its own error message
    return load_image(path, max_pixels=max_pixels, data=data), bytes_sha256(data) == sha256


def _read_original(path: Path, prior: RunFace | None, max_pixels: int
                   ) -> tuple[np.ndarray, RunFace | None]:
    """The original photo, and the run's analysis of it when its bytes are those the run read."""
    image, same = _read_checked(path, prior.sha256 if prior is not None else None, max_pixels)
    return image, prior if same else None


def _read_anonymized(path: Path, known: RunFace | None, max_pixels: int
                     ) -> tuple[np.ndarray, tuple | None]:
    """The anonymized photo, and the run's check of it when its bytes are those the run wrote
    (and its original's analysis is reused: the run cut the face with the original's points).
    """
    written = known.written if known is not None else None
    image, same = _read_checked(path, written[0] if written is not None else None, max_pixels)
    return image, written if same else None


_WORKER: dict = {}


def _start_worker(setup: Parts) -> None:
    """Worker initializer: the parts, once. Ctrl-C is left to the main process, which ends
    the workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # imported on use: it loads Pillow
    from privface.attributes.analysis import FaceAnalyzer

    analyzer = setup.analyzer if setup.analyzer is not None else \
        FaceAnalyzer(attribute_model=setup.model)
    _WORKER["parts"] = Parts(analyzer, recognizer_objects(setup.recognizers), setup.model,
                              setup.batch_size, setup.max_pixels)


def _worker_chunk(items: Sequence[Item]) -> Chunk:
    return evaluate_chunk(_WORKER["parts"], items)


def run_in_workers(setup: Parts, chunks: list[list[Item]], processes: int,
                    on_pair: Callable[[str, int, int], None] | None) -> list[Chunk]:
    """Evaluate the chunks in ``processes`` spawned workers; results in chunk order."""
    from concurrent.futures import FIRST_COMPLETED, wait

    total = sum(len(chunk) for chunk in chunks)
    results: list[Chunk | None] = [None] * len(chunks)
    done = 0
    # Ctrl-C or a failed chunk stops the workers at once (worker_pool), not after the chunks
    # already handed out.
    with worker_pool(processes, _start_worker, (setup,)) as pool:
        pending = {pool.submit(_worker_chunk, chunk): i for i, chunk in enumerate(chunks)}
        while pending:
            # A timeout: the main thread comes back now and then to see a Ctrl-C (a signal
            # that another thread received does not wake a blocked wait).
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                results[index] = future.result()
                for orig_path, *_ in chunks[index]:
                    done += 1
                    if on_pair is not None:
                        on_pair(orig_path.name, done, total)
    return results  # type: ignore[return-value]
