"""Identity leakage: thresholds from impostor pairs, match rates and top-1 re-identification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from privface.privmetrics.report import json_number



#: Distances computed per block (rows x gallery): 4M float64 values, 32 MB at a time.
_BLOCK_VALUES = 1 << 22

_DEFAULT_RECOGNIZERS = ("sface", "dlib")


def far_key(far: float) -> str:
    """The short name of a false-accept rate used in report keys.

    Examples
    --------
    >>> far_key(1e-3), far_key(0.01), far_key(0.025)
    ('1e-3', '1e-2', '2.5e-2')
    """
    return np.format_float_scientific(float(far), trim="-", exp_digits=1)




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
    from privface.attributes.recognizers import pairwise_distances

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
    from privface.attributes.recognizers import pairwise_distances

    out = np.zeros(len(probes), np.int64)
    for rows in _blocks(len(probes), len(gallery)):
        block = pairwise_distances(probes[rows], gallery, metric).astype(np.float32)
        out[rows] = np.argmin(block, axis=1)
    return out


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
    top1_same_photo : float
        Share whose nearest original is exactly their own photo (equals ``top1_reid`` without
        identities).
    top1_chance : float
        ``top1_reid`` of a guess drawn uniformly from the gallery.
    distances : ndarray
        Per pair, the distance to its own original (``inf`` where no face was embedded).
    top1_hits : ndarray of bool
        Per pair, whether it was re-identified at rank 1.
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

    def to_dict(self) -> dict:
        """JSON-ready; ``match_rate_far_<far>`` keys (``match_rate_far_1e-3``, ...)."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "gallery": self.gallery,
            "probes": self.probes,
            "impostor_pairs": self.impostor_pairs,
            "impostors": "different persons" if self.by_identity else "different photos",
            "top1_by": "identity" if self.by_identity else "photo",
            "top1_reid": json_number(self.top1_reid),
            "top1_same_photo": json_number(self.top1_same_photo),
            "top1_chance": json_number(self.top1_chance),
        }
        for far, rate in self.match_rates.items():
            out[f"match_rate_far_{far_key(far)}"] = json_number(rate)
        out["thresholds"] = {far_key(f): json_number(t) for f, t in self.thresholds.items()}
        return out


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
        Person per pair: impostors are pairs of different persons and top-1 counts a gallery
        photo of the same person as a hit.

    Examples
    --------
    >>> g = np.eye(4)
    >>> leak = identity_leakage(g, g[[0, 2]], np.array([True, False, True, False]),
    ...                         metric="cosine", fars=[0.5])
    >>> leak.top1_reid, leak.match_rates, leak.top1_chance
    (0.5, {0.5: 0.5}, 0.25)
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
    if len(anonymized):
        distances[embedded] = _paired_distances(anonymized, originals[embedded], metric)
        nearest = nearest_in_gallery(anonymized, originals, metric)
        same_photo[embedded] = nearest == np.flatnonzero(embedded)
        top1[embedded] = (identities[nearest] == identities[embedded]
                          if identities is not None else same_photo[embedded])
    thresholds: dict[float, float | None] = {}
    rates: dict[float, float | None] = {}
    for far in fars:
        if impostors.size:
            from privface.attributes.recognizers import calibrate_threshold

            thresholds[far] = calibrate_threshold(impostors, far)
            rates[far] = float(np.mean(distances <= thresholds[far])) if n else None
        else:
            thresholds[far] = rates[far] = None
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
        top1_chance=chance, distances=distances, top1_hits=top1)
