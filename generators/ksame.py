"""k-Same-Select (Newton et al. 2005; Gross et al. 2005): replace each face by a group average.

Faces are split by their target attribute class, each class is partitioned into groups of at
least k faces, and every face of a group is replaced by the group's pixel-wise average of aligned
faces. All faces of a group come out identical, so a recognizer that sees the output can do no
better than pick one of the group's members: at most one in k is right.

That guarantee needs the groups to hold k *different people*: two photos of one person in a group
would make the average look like that person (the paper's Definition 3.3, a person-specific set).
With ``persons`` given, every group holds one face each of at least k different persons, so a
top-1 guess is right for at most one face in k. Without ``persons`` each face counts as its own
person and the guarantee only holds if no two photos show the same person.

A class that cannot be split into groups of k different persons (fewer than k persons, or one
person with more photos than the class has groups of k) is merged into its nearest class (Hamming
distance between the target vectors); the faces concerned then come out as the average of a mixed
group, and the result says so (``class_merged``). Within a class the grouping is greedy, as in
MDAV: take the remaining face farthest from the remaining centroid, add the nearest face of each of
the next nearest persons, repeat; persons with many photos left go first so that every group ends
with k to 2k-1 faces of k to 2k-1 different persons, one face each.
Distances are taken in a PCA space of the aligned pixels (no weights needed), or in features the
caller gives (an identity embedding, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import check_faces


@dataclass(frozen=True)
class KSameResult:
    """What :func:`k_same_select` did, face by face.

    Attributes
    ----------
    faces : ndarray
        The output faces, ``(n, height, width, 3)`` uint8; faces of a group are identical.
    group : ndarray
        Group number of each face (0 .. n_groups - 1).
    k : ndarray
        Achieved k per face: the number of different persons in its group.
    group_size : ndarray
        Number of faces in its group.
    class_merged : ndarray
        True where the face's target class had fewer than k persons and was merged with its
        nearest class, so the average mixes attribute classes.
    """

    faces: np.ndarray
    group: np.ndarray
    k: np.ndarray
    group_size: np.ndarray
    class_merged: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per face: group, k, group_size, class_merged.

        Examples
        --------
        >>> faces = np.zeros((4, 8, 8, 3), np.uint8)
        >>> k_same_select(faces, k=2).to_frame().columns.tolist()
        ['group', 'k', 'group_size', 'class_merged']
        """
        return pd.DataFrame({"group": self.group, "k": self.k, "group_size": self.group_size,
                             "class_merged": self.class_merged})


def pixel_features(faces: np.ndarray, n_components: int = 50) -> np.ndarray:
    """A PCA space of the aligned faces (grey, 32 x 32), for choosing similar faces.

    Examples
    --------
    >>> faces = np.random.default_rng(0).integers(0, 256, (10, 40, 30, 3), dtype=np.uint8)
    >>> pixel_features(faces, n_components=4).shape
    (10, 4)
    """
    import cv2
    from sklearn.decomposition import PCA

    faces = check_faces(faces)
    small = np.stack([cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (32, 32),
                                 interpolation=cv2.INTER_AREA) for face in faces])
    flat = small.reshape(len(faces), -1).astype(np.float32) / 255.0
    components = max(1, min(n_components, len(faces) - 1, flat.shape[1]))
    if len(faces) < 2 or not flat.std(axis=0).any():  # nothing to tell the faces apart by
        return np.zeros((len(faces), 1), np.float32)
    return PCA(n_components=components, svd_solver="randomized", random_state=0
               ).fit_transform(flat).astype(np.float32)


def _class_codes(classes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Class number per face and the classes' attribute vectors (for merging by Hamming)."""
    if classes is None:
        return np.zeros(n, np.int64), np.zeros((1, 0), np.int8)
    if isinstance(classes, pd.DataFrame):
        values = classes.to_numpy()
    else:
        values = np.asarray(classes)
        values = values.reshape(n, -1)
    if len(values) != n:
        raise ValueError(f"classes has {len(values)} rows for {n} faces")
    if values.shape[1] == 0:  # every attribute generalised: one class
        return np.zeros(n, np.int64), np.zeros((1, 0), np.int8)
    vectors, codes = np.unique(values, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), vectors


def _balanced(counts: np.ndarray, k: int) -> np.ndarray:
    """Whether groups of k..2k-1 faces, no person twice in a group, can cover each class.

    ``counts`` is a class x person table of photo counts. That is possible exactly when no person
    has more photos in the class than the class has groups to offer (its size // k).
    """
    return counts.max(axis=1) <= counts.sum(axis=1) // k


def _merge_small_classes(codes: np.ndarray, vectors: np.ndarray, persons: np.ndarray,
                         k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge classes that cannot be split into groups of k different persons into their
    nearest class (Hamming distance between target vectors); returns new codes and a flag.
    """
    n_classes = len(vectors)
    owner = np.arange(n_classes)  # class -> the class it was merged into
    # Photo counts per class and person (classes and persons are few next to faces, and the
    # loop below runs over classes, never over faces).
    counts = np.zeros((n_classes, persons.max() + 1), np.int64)
    np.add.at(counts, (codes, persons), 1)
    alive = np.ones(n_classes, bool)
    if vectors.shape[1]:
        hamming = (vectors[:, None, :] != vectors[None, :, :]).sum(axis=2).astype(float)
    else:
        hamming = np.zeros((n_classes, n_classes))
    while alive.sum() > 1:
        bad = np.flatnonzero(alive & ~_balanced(counts, k))
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
    merged = owner[codes] != codes
    return owner[codes], merged


def _group_block(features: np.ndarray, persons: np.ndarray, k: int) -> np.ndarray:
    """Group one class: group number per face (0-based within the block).

    Greedy, similar faces together, as in MDAV: the remaining face farthest from the remaining
    centroid seeds a group, which takes the nearest face of each of the nearest other persons.
    Persons with so many photos left that they could not otherwise fit ("critical") join first,
    which keeps every person's remaining photos <= remaining faces // k: so each group gets
    k .. 2k-1 faces of different persons and no face is left over. When the class breaks that
    bound from the start (one person dominates the whole input), leftovers join the nearest
    group that lacks their person, or the nearest group at all.
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


def _group_means(faces: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Pixel-wise mean of each group's faces, as uint8, in bounded memory."""
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups))
    out = np.empty((n_groups,) + faces.shape[1:], np.uint8)
    chunk = 256
    for first in range(0, n_groups, chunk):
        last = min(first + chunk, n_groups)
        stop = starts[last] if last < n_groups else len(order)
        block = faces[order[starts[first]:stop]].astype(np.float32)
        sums = np.add.reduceat(block, starts[first:last] - starts[first], axis=0)
        sizes = np.diff(np.append(starts[first:last], stop)).reshape(-1, 1, 1, 1)
        out[first:last] = np.clip(np.rint(sums / sizes), 0, 255).astype(np.uint8)
    return out


def k_same_select(faces: np.ndarray, classes=None, *, k: int, persons=None, features=None,
                  n_components: int = 50) -> KSameResult:
    """Replace every face by the average of a group of at least k persons of its class.

    Parameters
    ----------
    faces : ndarray
        Aligned faces, ``(n, height, width, 3)`` uint8 (all in one geometry).
    classes : DataFrame or array, optional
        The target attribute vector of each face (one row per face); groups never mix classes
        unless a class has fewer than k persons. Default: one class.
    k : int
        Minimum number of different persons per group (>= 1).
    persons : array, optional
        Person label of each face (identities, or clusters of a recognizer). Default: every face
        is a different person.
    features : ndarray, optional
        ``(n, d)`` vectors to measure face similarity with; default :func:`pixel_features`.
    n_components : int
        PCA dimensions of the default features.

    Returns
    -------
    KSameResult

    Raises
    ------
    ValueError
        Bad k, mismatched lengths, or fewer than k persons in the whole input.

    Examples
    --------
    >>> faces = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (0, 10, 100, 110)])
    >>> result = k_same_select(faces, k=2)
    >>> result.faces[:, 0, 0, 0].tolist(), result.k.tolist()
    ([5, 5, 105, 105], [2, 2, 2, 2])
    >>> result = k_same_select(faces, k=2, persons=["a", "a", "b", "b"])
    >>> result.faces[:, 0, 0, 0].tolist()  # each group holds one face of each person
    [50, 60, 50, 60]
    """
    faces = check_faces(faces)
    n = len(faces)
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    k = int(k)
    if persons is None:
        person_codes = np.arange(n)
    else:
        persons = np.asarray(persons)
        if len(persons) != n:
            raise ValueError(f"persons has {len(persons)} labels for {n} faces")
        if pd.isna(persons).any():
            raise ValueError("persons has missing labels")
        _, person_codes = np.unique(persons, return_inverse=True)
        person_codes = person_codes.reshape(-1)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return KSameResult(faces.copy(), empty, empty, empty, np.zeros(0, bool))
    distinct = len(np.unique(person_codes))
    if distinct < k:
        raise ValueError(f"k-Same needs at least k = {k} different persons, the input has "
                         f"{distinct}")
    if features is None:
        features = pixel_features(faces, n_components)
    features = np.asarray(features, np.float32).reshape(n, -1)
    codes, vectors = _class_codes(classes, n)
    codes, class_merged = _merge_small_classes(codes, vectors, person_codes, k)

    group = np.empty(n, np.int64)
    offset = 0
    for block in np.unique(codes):  # one iteration per (merged) class, never per face
        members = np.flatnonzero(codes == block)
        local = _group_block(features[members], person_codes[members], k)
        group[members] = local + offset
        offset += int(local.max()) + 1
    sizes = np.bincount(group, minlength=offset)
    pairs = np.unique(np.stack([group, person_codes]), axis=1)
    k_reached = np.bincount(pairs[0], minlength=offset)
    means = _group_means(faces, group, offset)
    return KSameResult(faces=means[group], group=group, k=k_reached[group],
                       group_size=sizes[group], class_merged=class_merged)


class KSameSelectGenerator:
    """k-Same-Select as a stage III generator (the pipeline's default).

    Parameters
    ----------
    k : int
        Minimum number of different persons per group.
    attributes : sequence of str, optional
        Target attributes that define the classes; default: every column of
        ``target_attributes``.
    n_components : int
        PCA dimensions used to choose similar faces.

    Examples
    --------
    >>> faces = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 10, 100, 110)])
    >>> targets = pd.DataFrame({"Smiling": [1, 1, -1, -1]})
    >>> out = KSameSelectGenerator(k=2).generate(faces, None, targets)
    >>> out[:, 0, 0, 0].tolist()
    [5, 5, 105, 105]
    """

    name = "ksame"
    uses_persons = True  # the pipeline passes persons= so that groups hold k different people

    def __init__(self, k: int = 5, attributes=None, n_components: int = 50) -> None:
        from privface.attributes.alignment import CELEBA

        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        if int(n_components) < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        self.k = int(k)
        self.attributes = None if attributes is None else tuple(attributes)
        self.n_components = int(n_components)
        self.geometry = CELEBA
        self.last_result: KSameResult | None = None

    @property
    def editable(self) -> tuple[str, ...]:
        """The attributes that define classes (the average has its class's attributes)."""
        from privface.attributes.model import CELEBA_ATTRIBUTES

        return self.attributes if self.attributes is not None else tuple(CELEBA_ATTRIBUTES)

    def generate(self, faces: np.ndarray, source_attributes=None, target_attributes=None, *,
                 persons=None, features=None) -> np.ndarray:
        """Group averages; the details of the last call are in ``last_result``."""
        classes = None
        if target_attributes is not None:
            table = pd.DataFrame(target_attributes)
            if self.attributes is not None:
                missing = [a for a in self.attributes if a not in table.columns]
                if missing:
                    raise ValueError(f"target attributes lack the column(s) {missing}")
                table = table[list(self.attributes)]
            classes = table
        self.last_result = k_same_select(faces, classes, k=self.k, persons=persons,
                                         features=features, n_components=self.n_components)
        return self.last_result.faces
