"""What an attack does to a face recognizer's search, measured with the evaluation's own search.

The attacks themselves (:mod:`privface.adversarial`) sit below the evaluation; their measures
that need the evaluation's nearest-neighbour search live here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .leakage import nearest_in_gallery


def top1_change_rate(clean: np.ndarray, perturbed: np.ndarray, gallery: np.ndarray,
                     gallery_identities: Sequence, metric: str) -> float:
    """Share of probes whose nearest gallery identity differs between clean and perturbed.

    Examples
    --------
    >>> gallery = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> top1_change_rate(np.array([[1.0, 0.1], [0.1, 1.0]]),
    ...                  np.array([[0.1, 1.0], [0.1, 1.0]]), gallery, ["a", "b"], "cosine")
    0.5
    """
    ids = np.asarray(gallery_identities)
    before = ids[nearest_in_gallery(clean, gallery, metric)]
    after = ids[nearest_in_gallery(perturbed, gallery, metric)]
    return float((before != after).mean()) if len(before) else 0.0
