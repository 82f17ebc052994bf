"""Groups of at least k different persons, face by face (k-Same-Select's partition).

Within each class, faces are grouped greedily, similar faces together, as in MDAV, so that every
group holds one face each of k to 2k-1 different persons. A class that cannot be cut that way
(fewer than k persons, or one person with more photos than the class has groups of k) is merged
into its nearest class (Hamming distance between the class vectors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def class_codes(sources, targets=None, n: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number the attribute classes that faces show (``sources``) and are meant to show.

    Parameters
    ----------
    sources : DataFrame or array (n, q), or None
        The class vector each face is grouped by; None: one class.
    targets : DataFrame or array (n, q), optional
        The class vector each face should come out in, same columns; default ``sources``.
    n : int
        Number of faces (used when ``sources`` is None).

    Returns
    -------
    source_codes, target_codes : ndarray (n,)
        Class numbers, one numbering for both.
    vectors : ndarray (n_classes, q)
        Each class's attribute vector (for merging by Hamming distance).

    Examples
    --------
    >>> s, t, v = class_codes([[1], [1], [-1]], [[-1], [1], [-1]])
    >>> s.tolist(), t.tolist(), v.tolist()
    ([1, 1, 0], [0, 1, 0], [[-1], [1]])
    """

    def values(table, what: str) -> np.ndarray:
        array = table.to_numpy() if isinstance(table, pd.DataFrame) else np.asarray(table)
        array = array.reshape(len(array), -1)
        if len(array) != n:
            raise ValueError(f"{what} has {len(array)} rows for {n} faces")
        return array

    if sources is None and targets is None:
        one = np.zeros(n, np.int64)
        return one, one, np.zeros((1, 0), np.int8)
    n = len(sources if sources is not None else targets)
    src = values(sources if sources is not None else targets, "classes")
    dst = src if targets is None else values(targets, "target classes")
    if src.shape[1] != dst.shape[1]:
        raise ValueError(f"source classes have {src.shape[1]} attributes, target classes "
                         f"{dst.shape[1]}")
    if src.shape[1] == 0:  # every attribute generalised: one class
        one = np.zeros(n, np.int64)
        return one, one, np.zeros((1, 0), np.int8)
    vectors, codes = np.unique(np.concatenate([src, dst]), axis=0, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    return codes[:n], codes[n:], vectors


def balanced(counts: np.ndarray, k: int) -> np.ndarray:
    """Whether groups of k..2k-1 faces, no person twice in a group, can cover each class.

    ``counts`` is a class x person table of photo counts. That is possible exactly when no person
    has more photos in the class than the class has groups to offer (its size // k).

    Examples
    --------
    >>> balanced(np.array([[1, 1, 1], [3, 1, 0]]), 2).tolist()  # 3 photos of one person, 2 groups
    [True, False]
    """
    return counts.max(axis=1) <= counts.sum(axis=1) // k


def groupable_classes(classes: pd.DataFrame, persons, k: int) -> pd.DataFrame:
    """The classes (rows of ``classes``: what each face shows) that k-Same can cut into groups
    of k different persons without merging them: at least k persons, and no person with more
    photos than the class has groups (:func:`balanced`). Only these can be realised: k-Same gives
    a face its class with an average of faces that show it.

    Examples
    --------
    >>> shows = pd.DataFrame({"Male": [1, 1, 1, -1, -1, -1]})
    >>> groupable_classes(shows, ["a", "b", "c", "d", "d", "e"], 2)["Male"].tolist()
    [1]
    """
    if not len(classes) or not classes.shape[1]:
        return classes.iloc[:0]
    vectors, codes = np.unique(classes.to_numpy(), axis=0, return_inverse=True)
    codes = codes.reshape(-1)
    _, person_codes = np.unique(np.asarray(persons).astype(str), return_inverse=True)
    counts = np.zeros((len(vectors), person_codes.max() + 1), np.int64)
    np.add.at(counts, (codes, person_codes.reshape(-1)), 1)
    ok = balanced(counts, k) & ((counts > 0).sum(axis=1) >= k)
    return pd.DataFrame(vectors[ok], columns=classes.columns)


def merge_small_classes(codes: np.ndarray, vectors: np.ndarray, persons: np.ndarray,
                        k: int) -> np.ndarray:
    """Merge classes that cannot be split into groups of k different persons into their
    nearest class (Hamming distance between class vectors; among equally near ones the largest).

    Returns
    -------
    ndarray (n_classes,)
        For each class, the class its faces are grouped in (itself when it was not merged).

    Examples
    --------
    >>> codes = np.array([0, 0, 1, 1, 2])  # class 2 has one person: too few for k = 2
    >>> merge_small_classes(codes, np.array([[1, 1], [1, -1], [-1, -1]]), np.arange(5), 2)
    array([0, 1, 1])
    """
    n_classes = len(vectors)
    owner = np.arange(n_classes)  # class -> the class it was merged into
    # Photo counts per class and person (classes and persons are few next to faces, and the
    # loop below runs over classes, never over faces).
    counts = np.zeros((n_classes, persons.max() + 1), np.int64)
    np.add.at(counts, (codes, persons), 1)
    alive = counts.sum(axis=1) > 0  # a class only targets, never shown, takes no one in
    if vectors.shape[1]:
        hamming = (vectors[:, None, :] != vectors[None, :, :]).sum(axis=2).astype(float)
    else:
        hamming = np.zeros((n_classes, n_classes))
    while alive.sum() > 1:
        bad = np.flatnonzero(alive & ~balanced(counts, k))
        if not len(bad):
            break
        small = int(bad[np.argmin(counts[bad].sum(axis=1))])
        distance = np.where(alive, hamming[small], np.inf)
        distance[small] = np.inf
        # Nearest class first; among equally near ones, the largest.
        into = int(np.lexsort((-counts.sum(axis=1), distance))[0])
        counts[into] += counts[small]
        counts[small] = 0
        alive[small] = False
        owner[owner == small] = into
    return owner


def group_class(features: np.ndarray, persons: np.ndarray, k: int) -> np.ndarray:
    """Group one class: group number per face (0-based within the block).

    Greedy, similar faces together, as in MDAV: the remaining face farthest from the remaining
    centroid seeds a group, which takes the nearest face of each of the nearest other persons.
    Persons with so many photos left that they could not otherwise fit ("critical") join first,
    which keeps every person's remaining photos <= remaining faces // k: so each group gets
    k .. 2k-1 faces of different persons and no face is left over. When the class breaks that
    bound from the start (one person dominates the whole input), leftovers join the nearest
    group that lacks their person, or the nearest group at all.

    Examples
    --------
    >>> features = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> group_class(features, np.array([0, 1, 2, 3]), 2).tolist()
    [0, 0, 1, 1]
    """
    n = len(features)
    group = np.full(n, -1, np.int64)
    remaining = np.arange(n)
    counts = np.bincount(persons, minlength=persons.max() + 1)
    balanced = counts.max() <= n // k
    n_groups = 0
    # One iteration per group, each vectorised over the remaining faces: greedy k-member
    # clustering is sequential by nature.
    while len(remaining) >= k:
        left = persons[remaining]
        if balanced and len(remaining) < 2 * k:
            group[remaining] = n_groups  # at most one photo per person is left
            n_groups += 1
            remaining = remaining[:0]
            break
        if not balanced and len(np.unique(left)) < k:
            break
        points = features[remaining]
        critical = np.flatnonzero(counts > (len(remaining) - k) // k) if balanced else \
            np.zeros(0, np.int64)
        spread = ((points - points.mean(axis=0)) ** 2).sum(axis=1)
        if len(critical):
            spread = np.where(np.isin(left, critical), spread, -np.inf)
        seed = int(np.argmax(spread))
        distance = ((points - points[seed]) ** 2).sum(axis=1)
        distance[seed] = -1.0  # the seed comes first even when another face is as close
        order = np.argsort(distance, kind="stable")
        _, first = np.unique(left[order], return_index=True)
        nearest = order[np.sort(first)]  # each person's nearest face, nearest persons first
        must = np.isin(left[nearest], critical)
        size = max(k, int(must.sum()))
        chosen = np.concatenate([nearest[must], nearest[~must][:size - int(must.sum())]])
        group[remaining[chosen]] = n_groups
        n_groups += 1
        np.subtract.at(counts, left[chosen], 1)
        remaining = np.delete(remaining, chosen)
    if len(remaining):
        centroids = np.stack([features[group == g].mean(axis=0) for g in range(n_groups)])
        members = np.zeros((n_groups, persons.max() + 1), bool)
        members[group[group >= 0], persons[group >= 0]] = True
        for face in remaining:  # fewer than k persons are left: a handful of faces
            distance = ((centroids - features[face]) ** 2).sum(axis=1)
            free = np.where(members[:, persons[face]], np.inf, distance)
            target = int(np.argmin(free)) if np.isfinite(free).any() else int(np.argmin(distance))
            group[face] = target
            members[target, persons[face]] = True
    return group
