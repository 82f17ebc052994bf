"""Identity leakage: thresholds from impostor pairs, match rates and top-1 re-identification.

Also the photo run's per-photo check (:class:`LeakageCheck`, :func:`summarise_leakage`): one
module, and one definition of a match for both (:func:`~privface.attributes.recognizers.matches`:
a distance at or below the threshold).

Top-1 re-identification is reported per face (``top1_reid``: the share of anonymized faces whose
nearest original is the same person, or with no identities their own photo) and, with
identities, per person (``top1_reid_person``: the mean over persons of each person's share, so
that every person weighs the same however many photos they have). Both come with a 95% interval
(:func:`top1_rates`): the face-level one is Wilson's score interval, which treats the faces as
independent draws; the person-level one is the normal approximation over persons, mean +- 1.96
standard errors of the per-person shares (sample standard deviation over sqrt(persons)), clipped to
[0, 1]. The person-level interval accounts for photos of one person being alike; it needs two
persons, and collapses to a point when every person has the same share (say none is ever
re-identified), where the face-level Wilson interval is the one to quote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from privface.attributes.recognizers import calibrate_threshold, matches, pairwise_distances
from privface.base.jsonenc import json_value

#: Distances computed per block (rows x gallery): 4M float64 values, 32 MB at a time.
_BLOCK_VALUES = 1 << 22

DEFAULT_RECOGNIZERS = ("sface", "dlib")

#: The two-sided 95% quantile of the standard normal distribution.
Z95 = 1.959963984540054


def far_key(far: float) -> str:
    """The short name of a false-accept rate used in report keys.

    Examples
    --------
    >>> far_key(1e-3), far_key(0.01), far_key(0.025)
    ('1e-3', '1e-2', '2.5e-2')
    """
    return np.format_float_scientific(float(far), trim="-", exp_digits=1)




def wilson_interval(hits: int, n: int, *, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval for a share of ``hits`` out of ``n`` (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not a point at 0 or n hits.
    None when ``n`` is 0.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(3, 4)]
    [0.3006, 0.9544]
    >>> [round(x, 4) for x in wilson_interval(0, 100)]
    [0.0, 0.037]
    >>> wilson_interval(0, 0) is None
    True
    """
    if n <= 0:
        return None
    if not 0 <= hits <= n:
        raise ValueError(f"hits must lie between 0 and n = {n}, got {hits}")
    p = hits / n
    zz = z * z
    denominator = 1.0 + zz / n
    centre = (p + zz / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + zz / (4 * n * n)) / denominator
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == n else min(1.0, centre + half)
    return (float(low), float(high))


def mean_interval(values: np.ndarray, *, z: float = Z95) -> tuple[float, float] | None:
    """Normal-approximation interval of a mean of shares: mean +- z * sd / sqrt(n), in [0, 1].

    ``sd`` is the sample standard deviation (n - 1). None for fewer than two values.

    Examples
    --------
    >>> [round(x, 4) for x in mean_interval(np.array([0.5, 0.7, 0.9]))]
    [0.4737, 0.9263]
    >>> mean_interval(np.array([1.0, 0.0]))
    (0.0, 1.0)
    >>> mean_interval(np.array([0.25])) is None
    True
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return None
    mean = float(values.mean())
    half = z * float(values.std(ddof=1)) / math.sqrt(values.size)
    return (max(0.0, mean - half), min(1.0, mean + half))


@dataclass
class Top1Rates:
    """Top-1 re-identification per face and per person (see :func:`top1_rates`)."""

    face: float | None
    face_ci95: tuple[float, float] | None
    person: float | None
    person_ci95: tuple[float, float] | None
    persons: int | None


def top1_rates(hits: np.ndarray, identities: np.ndarray | None = None) -> Top1Rates:
    """Face-level and person-level top-1 re-identification, each with a 95% interval.

    Parameters
    ----------
    hits : ndarray of bool (n,)
        Per face, whether its nearest original was a hit (a face with no embedding is a miss).
    identities : ndarray (n,), optional
        Person per face. Without it there is no person-level rate (None).

    Returns
    -------
    Top1Rates
        ``face``: the share of faces hit, with Wilson's interval ``face_ci95``; ``person``: the
        mean over persons of each person's share of faces hit (every person weighs the same),
        with the normal approximation over persons ``person_ci95`` (None for one person);
        ``persons``: how many there are. Rates are None without faces.

    Examples
    --------
    Person A has three faces, all re-identified; person B one face, missed:

    >>> rates = top1_rates(np.array([True, True, True, False]), np.array(["A", "A", "A", "B"]))
    >>> rates.face, rates.person, rates.persons
    (0.75, 0.5, 2)
    >>> rates.person_ci95
    (0.0, 1.0)
    >>> top1_rates(np.array([True, False])).person is None
    True
    """
    hits = np.asarray(hits, dtype=bool)
    n = int(hits.size)
    face = float(hits.mean()) if n else None
    face_ci95 = wilson_interval(int(hits.sum()), n)
    if identities is None or not n:
        return Top1Rates(face, face_ci95, None, None, 0 if identities is not None else None)
    identities = np.asarray(identities)
    if identities.shape != hits.shape:
        raise ValueError(f"expected one identity per face, got {identities.shape[0]} for {n}")
    _, inverse = np.unique(identities, return_inverse=True)
    inverse = inverse.ravel()
    per_person = np.bincount(inverse, weights=hits.astype(np.float64)) / np.bincount(inverse)
    return Top1Rates(face, face_ci95, float(per_person.mean()), mean_interval(per_person),
                     int(per_person.size))


def _paired_distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Distance between ``a[i]`` and ``b[i]`` for every ``i``, as ``pairwise_distances`` has it."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if metric == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - (a * b).sum(axis=1), 0.0, 2.0).astype(np.float32)
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=1).astype(np.float32)
    raise ValueError(f"unknown metric {metric!r}; expected 'cosine' or 'euclidean'")


def _blocks(rows: int, columns: int) -> list[slice]:
    step = max(1, _BLOCK_VALUES // max(1, columns))
    return [slice(start, min(rows, start + step)) for start in range(0, rows, step)]


def impostor_distances(gallery: np.ndarray, metric: str,
                       identities: np.ndarray | None = None) -> np.ndarray:
    """Distances of every pair ``i < j`` of gallery rows (with identities: of different persons).

    Computed in blocks of rows and kept as float32: 6,000 faces give 18 million pairs, 72 MB.

    Examples
    --------
    >>> g = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    >>> impostor_distances(g, "euclidean").tolist()
    [5.0, 10.0, 5.0]
    >>> impostor_distances(g, "euclidean", np.array([1, 1, 2])).tolist()
    [10.0, 5.0]
    """

    n = len(gallery)
    out = []
    for rows in _blocks(n, n):
        block = pairwise_distances(gallery[rows], gallery, metric).astype(np.float32)
        keep = np.arange(n)[None, :] > np.arange(rows.start, rows.stop)[:, None]
        if identities is not None:
            keep &= identities[rows, None] != identities[None, :]
        out.append(block[keep])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def nearest_in_gallery(probes: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """Index of the nearest gallery row of every probe (the first of ties).

    Examples
    --------
    >>> nearest_in_gallery(np.array([[1.0, 0.1], [0.0, 1.0]]),
    ...                    np.array([[0.0, 2.0], [2.0, 0.0]]), "cosine").tolist()
    [1, 0]
    """

    out = np.zeros(len(probes), np.int64)
    for rows in _blocks(len(probes), len(gallery)):
        block = pairwise_distances(probes[rows], gallery, metric).astype(np.float32)
        out[rows] = np.argmin(block, axis=1)
    return out


def _nearest_with_and_without(probes: np.ndarray, gallery: np.ndarray, metric: str,
                              own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_in_gallery`, and the nearest once each probe's ``own`` gallery row is
    left out (the attacker without the released photo's original), from one pass of distances.

    Examples
    --------
    >>> gallery = np.array([[0.0, 2.0], [2.0, 0.0], [1.0, 1.0]])
    >>> near, other = _nearest_with_and_without(np.array([[1.0, 0.1], [0.0, 1.0]]), gallery,
    ...                                         "cosine", np.array([1, 0]))
    >>> near.tolist(), other.tolist()
    ([1, 0], [2, 2])
    """
    nearest = np.zeros(len(probes), np.int64)
    without = np.zeros(len(probes), np.int64)
    for rows in _blocks(len(probes), len(gallery)):
        block = pairwise_distances(probes[rows], gallery, metric).astype(np.float32)
        nearest[rows] = np.argmin(block, axis=1)
        block[np.arange(len(block)), own[rows]] = np.inf
        without[rows] = np.argmin(block, axis=1)
    return nearest, without


@dataclass
class IdentityLeakage:
    """How well one face recognizer still links anonymized faces to their originals.

    Attributes
    ----------
    recognizer, metric : str
        The recognizer's name and distance (``cosine`` or ``euclidean``).
    gallery : int
        Originals in the gallery (every usable pair).
    probes : int
        Anonymized faces the recognizer could embed; the others count as misses.
    impostor_pairs : int
        Pairs of originals the thresholds were calibrated on.
    by_identity : bool
        Impostors are pairs of different persons and top-1 counts same-person hits.
    thresholds, match_rates : dict
        FAR -> distance threshold, FAR -> share of pairs within it of their own original.
    top1_reid : float
        Share of pairs whose nearest original is their own (with identities: the same person).
    top1_reid_ci95 : (float, float) or None
        Wilson's 95% interval of ``top1_reid`` (faces as independent draws).
    top1_same_photo : float
        Share whose nearest original is exactly their own photo (equals ``top1_reid`` without
        identities).
    top1_chance : float
        ``top1_reid`` of a guess drawn uniformly from the gallery.
    distances : ndarray
        Per pair, the distance to its own original (``inf`` where no face was embedded).
    top1_hits : ndarray of bool
        Per pair, whether it was re-identified at rank 1.
    top1_reid_person : float or None
        With identities: the mean over persons of each person's share of pairs re-identified
        (every person weighs the same); None without identities.
    top1_reid_person_ci95 : (float, float) or None
        Its 95% interval, the normal approximation over persons (None for fewer than two).
    persons : int or None
        Persons in the gallery (None without identities).
    top1_chance_person : float or None
        ``top1_reid_person`` of a uniform guess: ``1 / persons`` (None without identities).
    top1_other_photos_person : float or None
        With identities: ``top1_reid_person`` for an attacker who holds the person's *other*
        photos but not the one released (the gallery without the probe's own original), over
        the persons with at least two photos. What a recognizer reads off the face itself,
        without matching the photo's kept surroundings to its source; None without identities
        or when no person has two photos.
    top1_other_photos_person_ci95 : (float, float) or None
        Its 95% interval (normal approximation over persons).
    """

    recognizer: str
    metric: str
    gallery: int
    probes: int
    impostor_pairs: int
    by_identity: bool
    thresholds: dict[float, float | None]
    match_rates: dict[float, float | None]
    top1_reid: float | None
    top1_same_photo: float | None
    top1_chance: float | None
    distances: np.ndarray = field(repr=False)
    top1_hits: np.ndarray = field(repr=False)
    top1_reid_ci95: tuple[float, float] | None = None
    top1_reid_person: float | None = None
    top1_reid_person_ci95: tuple[float, float] | None = None
    persons: int | None = None
    top1_other_photos_person: float | None = None
    top1_other_photos_person_ci95: tuple[float, float] | None = None

    @property
    def top1_chance_person(self) -> float | None:
        """The person-level chance level, ``1 / persons`` (each person's share of the gallery,
        averaged over persons)."""
        return 1.0 / self.persons if self.persons else None

    def to_dict(self) -> dict:
        """JSON-ready; ``match_rate_far_<far>`` keys (``match_rate_far_1e-3``, ...).

        Intervals are ``[low, high]`` lists or None; ``top1_reid_person``, its interval and
        ``persons`` are None without identities.
        """
        out: dict[str, Any] = {
            "metric": self.metric,
            "gallery": self.gallery,
            "probes": self.probes,
            "impostor_pairs": self.impostor_pairs,
            "impostors": "different persons" if self.by_identity else "different photos",
            "top1_by": "identity" if self.by_identity else "photo",
            "top1_reid": json_value(self.top1_reid),
            "top1_reid_ci95": _interval(self.top1_reid_ci95),
            "top1_reid_person": json_value(self.top1_reid_person),
            "top1_reid_person_ci95": _interval(self.top1_reid_person_ci95),
            "persons": self.persons,
            "top1_chance_person": json_value(self.top1_chance_person),
            "top1_same_photo": json_value(self.top1_same_photo),
            "top1_chance": json_value(self.top1_chance),
            "top1_other_photos_person": json_value(self.top1_other_photos_person),
            "top1_other_photos_person_ci95": _interval(self.top1_other_photos_person_ci95),
        }
        for far, rate in self.match_rates.items():
            out[f"match_rate_far_{far_key(far)}"] = json_value(rate)
        out["thresholds"] = {far_key(f): json_value(t) for f, t in self.thresholds.items()}
        return out


def _interval(interval: tuple[float, float] | None) -> list | None:
    return None if interval is None else [json_value(v) for v in interval]


def identity_leakage(originals: np.ndarray, anonymized: np.ndarray, embedded: np.ndarray, *,
                     metric: str, fars: Sequence[float], identities: np.ndarray | None = None,
                     recognizer: str = "") -> IdentityLeakage:
    """Match rates and top-1 re-identification from embeddings.

    Parameters
    ----------
    originals : ndarray (n, d)
        Embeddings of the n originals (the gallery), one per pair.
    anonymized : ndarray (m, d)
        Embeddings of the anonymized faces that could be embedded, in pair order.
    embedded : ndarray of bool (n,)
        Which pairs have a row in ``anonymized`` (``m`` of them are true).
    metric : str
        ``cosine`` or ``euclidean``.
    fars : sequence of float
        False-accept rates to set thresholds at.
    identities : ndarray (n,), optional
        Person per pair: impostors are pairs of different persons, top-1 counts a gallery
        photo of the same person as a hit, and the person-level rate is computed
        (:func:`top1_rates`).

    Examples
    --------
    >>> g = np.eye(4)
    >>> leak = identity_leakage(g, g[[0, 2]], np.array([True, False, True, False]),
    ...                         metric="cosine", fars=[0.5])
    >>> leak.top1_reid, leak.match_rates, leak.top1_chance
    (0.5, {0.5: 0.5}, 0.25)
    >>> leak.top1_reid_person is None
    True
    """
    n = len(originals)
    embedded = np.asarray(embedded, dtype=bool)
    if identities is not None:
        identities = np.asarray(identities)
    distances = np.full(n, np.inf, np.float32)
    top1 = np.zeros(n, dtype=bool)
    same_photo = np.zeros(n, dtype=bool)
    impostors = impostor_distances(originals, metric, identities) if n >= 2 else \
        np.zeros(0, np.float32)
    nearest_other = None
    if len(anonymized):
        distances[embedded] = _paired_distances(anonymized, originals[embedded], metric)
        nearest, nearest_other = _nearest_with_and_without(anonymized, originals, metric,
                                                           np.flatnonzero(embedded))
        same_photo[embedded] = nearest == np.flatnonzero(embedded)
        top1[embedded] = (identities[nearest] == identities[embedded]
                          if identities is not None else same_photo[embedded])
    thresholds: dict[float, float | None] = {}
    rates: dict[float, float | None] = {}
    for far in fars:
        if impostors.size:
            thresholds[far] = calibrate_threshold(impostors, far)
            rates[far] = float(np.mean(matches(distances, thresholds[far]))) if n else None
        else:
            thresholds[far] = rates[far] = None
    reid = top1_rates(top1, identities)
    others = _top1_other_photos(nearest_other, embedded, identities)
    if n and identities is not None:
        _, inverse, counts = np.unique(identities, return_inverse=True, return_counts=True)
        chance = float(np.mean(counts[inverse] / n))
    else:
        chance = 1.0 / n if n else None
    return IdentityLeakage(
        recognizer=recognizer, metric=metric, gallery=n, probes=int(embedded.sum()),
        impostor_pairs=int(impostors.size), by_identity=identities is not None,
        thresholds=thresholds, match_rates=rates,
        top1_reid=float(top1.mean()) if n else None,
        top1_same_photo=float(same_photo.mean()) if n else None,
        top1_chance=chance, distances=distances, top1_hits=top1,
        top1_reid_ci95=reid.face_ci95, top1_reid_person=reid.person,
        top1_reid_person_ci95=reid.person_ci95, persons=reid.persons,
        top1_other_photos_person=others.person if others else None,
        top1_other_photos_person_ci95=others.person_ci95 if others else None)


def _top1_other_photos(nearest: np.ndarray | None, embedded: np.ndarray,
                       identities: np.ndarray | None) -> Top1Rates | None:
    """Top-1 against the gallery without each probe's own original (``nearest``: each embedded
    probe's nearest there), over the pairs whose person has another photo in the gallery (the
    others cannot be hit; counting them would dilute the rate)."""
    if identities is None or not len(embedded):
        return None
    _, inverse, counts = np.unique(identities, return_inverse=True, return_counts=True)
    eligible = counts[inverse.ravel()] >= 2
    if not eligible.any():
        return None
    hits = np.zeros(len(embedded), dtype=bool)
    if nearest is not None:
        own = np.flatnonzero(embedded)
        hits[own] = identities[nearest] == identities[own]
    return top1_rates(hits[eligible], identities[eligible])


# The photo run's per-photo check. Every certificate carries what the run measured for its photo:
# the cosine distance between SFace's embedding of the original face and of the anonymized face,
# both cut at the same place (the detector's five points on the original, where face analysis cut
# SFace's crop: the pasted face sits where the original was), and whether that distance is a match
# at SFace's threshold for a false-accept rate of 1e-3 (a recognizer would call them the same
# person; :func:`~privface.attributes.recognizers.matches`, as for the rates above). When face
# analysis embedded the originals with SFace (to find the persons), those embeddings are reused:
# only the output is embedded again. Without the detector's points (plans saved by older
# versions), five points taken from the 68 landmarks stand in. About 30 ms per face.

#: The false-accept rate of the photo run's per-photo leakage check.
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
    from privface.attributes.landmarks import eye_centres

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
        from privface.attributes.persons import CALIBRATED_THRESHOLDS
        from privface.attributes.recognizers import SFaceRecognizer

        self.recognizer = SFaceRecognizer()
        self.threshold = CALIBRATED_THRESHOLDS["sface"][FAR]

    def measure(self, original: np.ndarray, anonymized: np.ndarray, boxes, landmarks, *,
                points5=None, original_embeddings=None, return_embeddings: bool = False):
        """One record per face: ``distance``, ``matches_source``, and how they were measured.

        ``points5`` (n, 5, 2): where to cut both crops, the detector's five points on the
        original (default: five points from the 68 ``landmarks``). ``original_embeddings``
        (n, 128): SFace's embeddings of the originals cut there, if already computed. With
        ``return_embeddings``, returns ``(records, embeddings)``: also SFace's (n, 128)
        embeddings of the anonymized faces.
        """
        from privface.attributes.detection import DetectedFace

        if points5 is None:
            points5 = [five_points(points) for points in landmarks]
        faces = [DetectedFace(tuple(float(v) for v in box), 1.0, np.asarray(p, np.float32))
                 for box, p in zip(boxes, points5)]
        if not faces:
            return ([], np.zeros((0, 128), np.float32)) if return_embeddings else []
        outputs = [self.recognizer.chip(anonymized, face, points)
                   for face, points in zip(faces, landmarks)]
        if original_embeddings is None:
            sources = [self.recognizer.chip(original, face, points)
                       for face, points in zip(faces, landmarks)]
            original_embeddings = self.recognizer.embed_chips(sources)
        # The recognizer's own metric (cosine), each face against its own source.
        embeddings = self.recognizer.embed_chips(outputs)
        distance = self.recognizer.distances(original_embeddings, embeddings).diagonal()
        verdicts = matches(distance, self.threshold)
        records = [{"recognizer": "sface", "distance": round(float(d), 4),
                    "threshold": self.threshold, "far": FAR,
                    "matches_source": bool(match)} for d, match in zip(distance, verdicts)]
        return (records, embeddings) if return_embeddings else records


def summarise_leakage(records: list[dict]) -> dict:
    """The run's share of released faces that SFace still matches to their source.

    Examples
    --------
    >>> summarise_leakage([{"distance": 0.2, "matches_source": True, "threshold": 0.6165},
    ...                    {"distance": 0.9, "matches_source": False, "threshold": 0.6165}])
    {'recognizer': 'sface', 'far': 0.001, 'threshold': 0.6165, 'faces': 2, 'match_rate': 0.5,
     'mean_distance': 0.55}
    """
    from privface.attributes.persons import CALIBRATED_THRESHOLDS

    distances = np.array([r["distance"] for r in records], float)
    matches = np.array([r["matches_source"] for r in records], bool)
    return {"recognizer": "sface", "far": FAR, "threshold": CALIBRATED_THRESHOLDS["sface"][FAR],
            "faces": int(len(records)),
            "match_rate": round(float(matches.mean()), 4) if len(records) else None,
            "mean_distance": round(float(distances.mean()), 4) if len(records) else None}
