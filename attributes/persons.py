"""Who is who without identity labels: group photos of one person with a face recognizer.

k-Same's guarantee needs groups of k *different people* (AnonymousNet's person-specific set). When
the user gives no identities, photos are grouped by a recognizer instead: average-linkage
clustering of the embeddings, cut at the recognizer's threshold calibrated at a false-accept rate.
Average linkage does not chain photos of different people through look-alikes the way single
linkage (connected components) does, and a generous threshold errs towards merging two people into
one "person", which only makes the groups stricter.

Measured on the shared 200-identity CelebA set (5,993 photos, SFace, threshold at FAR 1e-2):
256 clusters for 200 people; 146 photos (2.4%) fall outside their person's main cluster, mostly
profiles and occluded faces that the recognizer cannot match to the person anyway.
"""

from __future__ import annotations

import numpy as np

from privface.base.errors import InputError

# Impostor-pair thresholds at FAR 1e-2 and 1e-3, measured on the 17.9M impostor pairs of the
# shared 200-identity CelebA set (benchmarks/bench_faces.py); cosine distance for SFace, Euclidean
# for dlib. They belong to the recognizer, not to a data set, but a user with labelled photos of
# their own population can calibrate again with ``calibrate_threshold``.
CALIBRATED_THRESHOLDS: dict[str, dict[float, float]] = {
    "sface": {1e-2: 0.6885, 1e-3: 0.6165},
    "dlib": {1e-2: 0.6357, 1e-3: 0.5699},
}
METRICS = {"sface": "cosine", "dlib": "euclidean"}

# Average linkage needs all pairwise distances in memory (8 bytes each): 20,000 photos is 1.6 GB.
MAX_PHOTOS = 20_000


def group_persons(embeddings: np.ndarray, *, recognizer: str = "sface", far: float = 1e-2,
                  threshold: float | None = None) -> np.ndarray:
    """Person label per embedding: average-linkage clusters cut at a calibrated threshold.

    Parameters
    ----------
    embeddings : ndarray
        ``(n, d)`` embeddings of one recognizer.
    recognizer : {"sface", "dlib"}
        Which recognizer made them (sets the metric and the calibrated threshold).
    far : float
        False-accept rate of the threshold (1e-2 or 1e-3) when ``threshold`` is not given.
    threshold : float, optional
        A distance threshold of your own (e.g. from ``calibrate_threshold`` on your data).

    Returns
    -------
    ndarray
        ``(n,)`` int labels, 0 .. n_persons - 1.

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]])
    >>> group_persons(e).tolist()
    [0, 0, 1, 1]
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    if recognizer not in METRICS:
        raise ValueError(f"recognizer must be one of {sorted(METRICS)}, got {recognizer!r}")
    embeddings = np.asarray(embeddings, np.float64)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (n, d), got shape {embeddings.shape}")
    n = len(embeddings)
    if n > MAX_PHOTOS:
        raise InputError(f"grouping {n:,} photos by face needs {n * (n - 1) * 4 / 1e9:.1f} GB; "
                         f"give the identities instead (at most {MAX_PHOTOS:,} photos)")
    if threshold is None:
        thresholds = CALIBRATED_THRESHOLDS[recognizer]
        if far not in thresholds:
            raise ValueError(f"no calibrated threshold for FAR {far}; use one of "
                             f"{sorted(thresholds)} or give threshold=")
        threshold = thresholds[far]
    if n < 2:
        return np.zeros(n, np.int64)
    tree = linkage(pdist(embeddings, METRICS[recognizer]), method="average")
    labels = fcluster(tree, t=threshold, criterion="distance")
    # Number the persons in order of first appearance, so the labels do not depend on scipy.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse.reshape(-1)].astype(np.int64)
