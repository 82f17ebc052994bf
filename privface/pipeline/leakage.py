"""Identity leakage of each written photo: does SFace still match the output to its source?

Every certificate carries what the run measured for its photo: the cosine distance between SFace's
embedding of the original face and of the anonymized face, both cut at the same place (the
detector's five points on the original, where face analysis cut SFace's crop: the pasted face sits
where the original was), and whether that distance is below SFace's threshold at a false-accept
rate of 1e-3 (a recognizer would call them the same person). When face analysis embedded the
originals with SFace (to find the persons), those embeddings are reused: only the output is
embedded again. Without the detector's points (plans saved by older versions), five points taken
from the 68 landmarks stand in. ``privface evaluate`` measures leakage more fully (top-1
re-identification against a gallery, two recognizers); this is the per-photo number the certificate
records (docs/photo-pipeline.md), at about 30 ms per face.
"""

from __future__ import annotations

import numpy as np

from privface.attributes.detection import DetectedFace
from privface.attributes.landmarks import eye_centres
from privface.attributes.persons import CALIBRATED_THRESHOLDS
from privface.attributes.recognizers import SFaceRecognizer

FAR = 1e-3


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """YuNet's five points from 68 landmarks: eye centres, nose tip, mouth corners.

    In YuNet's order (the image-left eye first), as ``FaceRecognizerSF.alignCrop`` expects.

    Examples
    --------
    >>> points = np.zeros((68, 2)); points[36:42] = (10, 20); points[42:48] = (30, 20)
    >>> points[30] = (20, 30); points[48] = (12, 40); points[54] = (28, 40)
    >>> five_points(points).tolist()
    [[10.0, 20.0], [30.0, 20.0], [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]]
    """

    points = np.asarray(landmarks68, np.float64)
    left, right = eye_centres(points)
    return np.stack([left, right, points[30], points[48], points[54]])


class LeakageCheck:
    """SFace distance between original and anonymized faces, and the match verdict.

    Examples
    --------
    >>> check = LeakageCheck()
    >>> round(check.threshold, 4)
    0.6165
    >>> photo = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    >>> points = np.zeros((1, 68, 2)); points[0, 36:42] = (70, 112); points[0, 42:48] = (107, 112)
    >>> points[0, 30] = (89, 135); points[0, 48] = (75, 155); points[0, 54] = (103, 155)
    >>> out = check.measure(photo, photo, [(40, 60, 100, 130)], points)
    >>> out[0]["matches_source"], out[0]["distance"] < 1e-4
    (True, True)
    """

    def __init__(self) -> None:
        self.recognizer = SFaceRecognizer()
        self.threshold = CALIBRATED_THRESHOLDS["sface"][FAR]

    def measure(self, original: np.ndarray, anonymized: np.ndarray, boxes, landmarks, *,
                points5=None, original_embeddings=None) -> list:
        """One record per face: ``distance``, ``matches_source``, and how they were measured.

        ``points5`` (n, 5, 2): where to cut both crops, the detector's five points on the
        original (default: five points from the 68 ``landmarks``). ``original_embeddings``
        (n, 128): SFace's embeddings of the originals cut there, if already computed.
        """

        if points5 is None:
            points5 = [five_points(points) for points in landmarks]
        faces = [DetectedFace(tuple(float(v) for v in box), 1.0, np.asarray(p, np.float32))
                 for box, p in zip(boxes, points5)]
        if not faces:
            return []
        outputs = [self.recognizer.chip(anonymized, face, points)
                   for face, points in zip(faces, landmarks)]
        if original_embeddings is None:
            sources = [self.recognizer.chip(original, face, points)
                       for face, points in zip(faces, landmarks)]
            original_embeddings = self.recognizer.embed_chips(sources)
        # The recognizer's own metric (cosine), each face against its own source.
        distance = self.recognizer.distances(original_embeddings,
                                             self.recognizer.embed_chips(outputs)).diagonal()
        return [{"recognizer": "sface", "distance": round(float(d), 4),
                 "threshold": self.threshold, "far": FAR,
                 "matches_source": bool(d < self.threshold)} for d in distance]


def summarise_leakage(records: list[dict]) -> dict:
    """The run's share of released faces that SFace still matches to their source.

    Examples
    --------
    >>> summarise_leakage([{"distance": 0.2, "matches_source": True, "threshold": 0.6165},
    ...                    {"distance": 0.9, "matches_source": False, "threshold": 0.6165}])
    {'recognizer': 'sface', 'far': 0.001, 'threshold': 0.6165, 'faces': 2, 'match_rate': 0.5,
     'mean_distance': 0.55}
    """

    distances = np.array([r["distance"] for r in records], float)
    matches = np.array([r["matches_source"] for r in records], bool)
    return {"recognizer": "sface", "far": FAR, "threshold": CALIBRATED_THRESHOLDS["sface"][FAR],
            "faces": int(len(records)),
            "match_rate": round(float(matches.mean()), 4) if len(records) else None,
            "mean_distance": round(float(distances.mean()), 4) if len(records) else None}
