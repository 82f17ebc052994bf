"""The per-photo half of the pipeline: paste back, check, perturb, measure, write.

Once the generator has made every new face (in its aligned geometry), each photo is finished on
its own: the faces are pasted back into their face regions (outside them the photo is untouched),
the attribute model checks that the written faces show their
targets (a photo that does not is withheld), stage IV's perturbation is added, SFace measures how
close each released face still is to its source, and the photo is written. Nothing here depends
on another photo, so :func:`write_photos` hands chunks of photos to worker processes; the main
process keeps the bookkeeping (certificates, resume state), so the result is the same with any
number of workers. Workers write into the run's staging folder (``OUT/.partial``): only the main
process moves a photo into OUT, after its certificate (:mod:`~.outdir`).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from privface.attributes.alignment import paste_back
from privface.attributes.face_region import SMALL_FACE_PX, blur_region, eye_to_chin, paste_face
from privface.base.workers import worker_pool
from privface.evaluation.leakage import LeakageCheck

from .verify import predict_outputs


@dataclass
class PhotoJob:
    """One photo to finish: its new faces and where they go.

    Attributes
    ----------
    name : str
        File name (the output keeps it).
    source, target : Path
        The original photo and where the anonymized one is written (in the staging folder).
    faces : list of ndarray (h, w, 3) uint8
        The generated aligned faces, in the photo's face order.
    matrices : list of ndarray (2, 3)
        Photo -> aligned-crop matrices of the original faces.
    landmarks : ndarray (n, 68, 2)
        The original faces' landmarks (the pasted faces sit where the originals were).
    boxes : ndarray (n, 4)
        The original faces' detection boxes (x, y, width, height).
    wanted : ndarray (n, c)
        The target values (1 / -1) of the controlled attributes.
    points5 : ndarray (n, 5, 2), optional
        The detector's five points on the originals (where SFace cuts its crop).
    source_embeddings : ndarray (n, 128), optional
        SFace's embeddings of the originals cut there, when face analysis computed them.
    """

    name: str
    source: Path
    target: Path
    faces: list
    matrices: list
    landmarks: np.ndarray
    boxes: np.ndarray
    wanted: np.ndarray
    points5: np.ndarray | None = None
    source_embeddings: np.ndarray | None = None


@dataclass
class PhotoOutcome:
    """What finishing one photo gave.

    Attributes
    ----------
    name : str
    withheld : bool
        The model read another value than the target off a written face, for an attribute the
        generator sets; the photo was not written.
    observed : ndarray (n, c) or None
        The controlled attributes read off the released photo (None without verification).
    generated : ndarray (n, c) or None
        The same, read before the perturbation (only when one was added), off the photo as its
        file would decode without it.
    leakage : list of dict
        Per face: SFace's distance to the source (:class:`~.leakage.LeakageCheck`).
    max_change_levels : int or None
        With a perturbation: the largest change it made to any pixel, in grey levels.
    written : WrittenFace or None
        The checks' SFace embedding and attribute readings of the photo's first face, as they
        were computed from the written file (for ``privface evaluate``; None without checks).
    """

    name: str
    withheld: bool
    observed: np.ndarray | None = None
    generated: np.ndarray | None = None
    leakage: list | None = None
    max_change_levels: int | None = None
    written: WrittenFace | None = None


@dataclass
class WrittenFace:
    """What the checks computed on the first (largest) face of a written photo.

    Both come from the pixels the written file decodes to, cut where ``privface evaluate`` cuts
    the anonymized face of a pair (the original's 68 landmarks and five detector points), so an
    evaluation of the same file can take them instead of computing them again.

    Attributes
    ----------
    sha256 : str
        The SHA-256 of the written file's bytes.
    sface : ndarray (128,) float32
        SFace's embedding of the face (the leakage check's).
    labels : ndarray (n_attributes,) int8
        The attribute model's 1 / -1 readings of every attribute, in the model's order.
    """

    sha256: str
    sface: np.ndarray
    labels: np.ndarray


class PhotoWriter:
    """Finishes photos: paste back into the face region, check, perturb, measure, write.

    Parameters
    ----------
    feather_px : float
        Width of the blended seam in aligned-crop pixels.
    paste : {"blend", "face", "crop"}
        How faces go back (:attr:`~privface.generators.base.Capabilities.paste`): into the face
        region colour-matched and pyramid-blended, into the face region as generated, or the
        whole crop. A face smaller than
        :data:`~privface.attributes.face_region.SMALL_FACE_PX` (eyes to chin) gets its region
        blurred instead, unless the whole crop is pasted.
    model : AttributeModel, optional
        Reads the written faces' attributes; None skips the check and the leakage measure.
    columns : sequence of int
        The controlled attributes' columns in the model's output.
    sets : ndarray of bool
        Which controlled attributes the generator sets (only those are held to their targets).
    withhold : bool
        Do not write a photo whose faces do not show their targets.
    perturber : PhotoPerturber, optional
        Stage IV: added after the check, so the check judges the generator and a perturbation
        never causes a photo to be withheld. The released photo is read back from disk for the
        measurements: JPEG compression changes a perturbation, and what counts is the file.
    keep_readings : bool
        Return each written photo's first face's SFace embedding and attribute readings
        (:class:`WrittenFace`), for an evaluation of the run to reuse: only when ``model`` is
        the shipped model, the one ``privface evaluate`` reads with.

    Examples
    --------
    >>> writer = PhotoWriter(feather_px=4.0)
    >>> writer.model is None, writer.perturber is None
    (True, True)
    """

    def __init__(self, *, feather_px: float, model=None, columns: Sequence[int] = (),
                 sets: np.ndarray | None = None, withhold: bool = True, perturber=None,
                 paste: str = "blend", keep_readings: bool = False) -> None:
        if paste not in ("blend", "face", "crop"):
            raise ValueError(f"paste must be 'blend', 'face' or 'crop', got {paste!r}")
        self.feather_px = float(feather_px)
        self.paste = paste
        self.model = model
        self.columns = list(columns)
        self.sets = np.ones(len(self.columns), bool) if sets is None else np.asarray(sets, bool)
        self.withhold = bool(withhold)
        self.perturber = perturber
        self.keep_readings = bool(keep_readings)
        self._leakage = None

    def __getstate__(self) -> dict:
        # SFace's OpenCV network does not pickle; a worker builds its own on first use.
        return {**self.__dict__, "_leakage": None}

    @property
    def leakage(self):
        if self._leakage is None:
            self._leakage = LeakageCheck()
        return self._leakage

    def _read(self, photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Every attribute the model reads off the faces of ``photo`` (n, n_attributes)."""
        return predict_outputs(photo, landmarks, self.model)

    def _paste(self, image: np.ndarray, face: np.ndarray, matrix: np.ndarray,
               points: np.ndarray) -> np.ndarray:
        if self.paste == "crop":
            return paste_back(image, face, matrix, feather=self.feather_px)
        if eye_to_chin(points) < SMALL_FACE_PX:
            # Too small to carry identity: a new face would be a visible tile, a blur is not.
            return blur_region(image, points)
        blend = self.paste == "blend"
        return paste_face(image, face, matrix, points, feather=self.feather_px, colour=blend,
                          blend="pyramid" if blend else "alpha")

    def write(self, job: PhotoJob) -> PhotoOutcome:
        """Finish one photo; the file is written (atomically) unless it is withheld.

        The attributes and leakage recorded are measured on the pixels the written file decodes
        to (JPEG changes them): what an attacker, or ``privface evaluate``, reads off the release.
        """
        # imported on use: it loads Pillow
        from privface.attributes.images import encode_image, load_image, save_image

        original = image = load_image(job.source)
        for face, matrix, points in zip(job.faces, job.matrices, job.landmarks):
            image = self._paste(image, face, matrix, points)
        verify = self.model is not None
        data = readings = generated = levels = None
        if verify:
            # With a perturbation the check judges the generator's face, before it is added,
            # as its file would decode (JPEG moves a reading near its threshold): the same
            # photos go out, with the same readings, whether a perturbation follows or not.
            encoded = encode_image(image, job.target.suffix)
            checked = load_image(job.target, data=encoded)
            if self.perturber is None:
                data = encoded
            readings = self._read(checked, job.landmarks)
            if self.withhold and (readings[:, self.columns] != job.wanted)[:, self.sets].any():
                return PhotoOutcome(job.name, withheld=True)
        if self.perturber is not None:
            clean = image
            image = self.perturber(image, job.landmarks, key=job.name)
            levels = int(np.abs(image.astype(np.int16) - clean).max())
        save_image(image, job.target, data=data)
        if not verify:
            return PhotoOutcome(job.name, False, max_change_levels=levels)
        if self.perturber is None:
            released = checked
        else:
            generated = readings[:, self.columns]
            data = job.target.read_bytes()
            released = load_image(job.target, data=data)
            readings = self._read(released, job.landmarks)
        leakage, embeddings = self.leakage.measure(
            original, released, job.boxes, job.landmarks, points5=job.points5,
            original_embeddings=job.source_embeddings, return_embeddings=True)
        written = WrittenFace(hashlib.sha256(data).hexdigest(), embeddings[0], readings[0]) \
            if self.keep_readings and len(readings) else None
        return PhotoOutcome(job.name, False, readings[:, self.columns], generated, leakage,
                            levels, written)

    def write_all(self, jobs: Sequence[PhotoJob]) -> list[PhotoOutcome]:
        return [self.write(job) for job in jobs]

    def load_models(self) -> None:
        """Load the networks the checks use now rather than on the first photo."""
        if self.model is not None:
            self.leakage.recognizer.load()  # SFace's network, the model's extractor's too


_WORKER: dict = {}


def _start_worker(writer: PhotoWriter) -> None:
    _WORKER["writer"] = writer


def _load_models() -> None:
    _WORKER["writer"].load_models()


def _worker_chunk(jobs: Sequence[PhotoJob]) -> list[PhotoOutcome]:
    return _WORKER["writer"].write_all(jobs)


def write_photos(writer: PhotoWriter, chunks: Iterable[Sequence[PhotoJob]], *, workers: int = 1,
                 on_outcome: Callable[[PhotoOutcome], None]) -> None:
    """Finish chunks of photos, in parallel with ``workers > 1``; outcomes come back in order.

    ``chunks`` is consumed lazily and at most two chunks per worker are in flight, so a
    generator that makes faces batch by batch keeps memory bounded. ``on_outcome`` runs in this
    process, in the jobs' order, as soon as each chunk is done. On an interruption the chunks
    not started are cancelled and the running ones end (no file is left half-written); photos
    they wrote stay in the staging folder, and a resumed run does them again.

    Examples
    --------
    >>> seen = []
    >>> write_photos(PhotoWriter(feather_px=4.0), [], on_outcome=seen.append)
    >>> seen
    []
    """
    if workers <= 1:
        for chunk in chunks:
            for outcome in writer.write_all(chunk):
                on_outcome(outcome)
        return

    # A stop lets running chunks end: a worker killed while writing would leave a temporary file.
    with worker_pool(workers, _start_worker, (writer,), finish_running=True) as pool:
        # The workers start (imports, networks: seconds) while this process makes the first
        # chunks: a group generator such as k-Same makes every face before the first chunk.
        for _ in range(workers):
            pool.submit(_load_models)
        pending: deque = deque()

        def drain(limit: int) -> None:
            while len(pending) > limit:
                for outcome in pending.popleft().result():
                    on_outcome(outcome)

        for chunk in chunks:
            if chunk:
                pending.append(pool.submit(_worker_chunk, list(chunk)))
            drain(2 * workers)
        drain(0)
