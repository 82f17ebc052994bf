"""k-Same-Select (Newton et al. 2005; Gross et al. 2005): replace each face by a group average.

Faces are split by their target attribute class, each class is partitioned into groups of at
least k faces, and every face of a group is replaced by the group's pixel-wise average of aligned
faces. All faces of a group receive the same average, so a recognizer that sees the output can do
no better than pick one of the group's members: at most one in k is right.

With 68 landmarks (the pipeline passes them) only the face is averaged and replaced: each face's
output crop is the average of the group's skin over its face up to its hairline
(:mod:`privface.attributes.face_region`), in its own mean colour, its own crop blurred over the
ring by which the face region grows and above its hairline, and its own crop elsewhere, so that
no other person's hair or background can enter a photo (:class:`KSameSelectGenerator`'s default;
``region=False`` averages the whole aligned crop). What a photo keeps around its face lets a
recognizer that holds that very photo tell the members of a group apart, so the generator
averages ``margin * k`` persons (2k by default) in region mode: measured, top-1
re-identification then stays under 1/k.

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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from privface.attributes.alignment import CELEBA
from privface.attributes.face_region import (OUTSIDE_FACE_ATTRIBUTES, below_hairline, face_mask,
                                             match_colour, match_shading)
from privface.attributes.model import CELEBA_ATTRIBUTES
from privface.base.errors import InputError

from .base import Capabilities, GenerationResult, check_faces
from .grouping import class_codes, group_class, merge_small_classes
from .shape import warp_to_shapes


@dataclass(frozen=True)
class KSameResult:
    """What :func:`k_same_select` did, face by face.

    Attributes
    ----------
    faces : ndarray
        The output faces, ``(n, height, width, 3)`` uint8; faces of a group are identical
        (with 68 landmarks: over the face; each keeps its own surroundings).
    group : ndarray
        Group number of each face (0 .. n_groups - 1).
    k : ndarray
        Achieved k per face: the number of different persons in its group.
    group_size : ndarray
        Number of faces in its group.
    class_merged : ndarray
        True where the face's target class had too few persons and was merged with its nearest
        class, so its average comes from a mix of attribute classes.
    realised : ndarray
        True where the face received an average of its target class that passed the ``accept``
        check (when one was given): the output shows what the face was meant to show.
    own_group : ndarray
        True where the face is one of the faces its average was made of (plain k-Same); False
        where it received another group's average, because its own group's class is not its
        target or its own group's average failed the check.
    member : ndarray
        The group each face's own pixels went into (``group`` where ``own_group``).
    retargeted : ndarray
        True where no usable group of the face's target class existed, so it received an
        average of the nearest class that has one (fewest attributes different).
    shown : ndarray (n, q), optional
        The class vector of the average each face received.
    regions : ndarray (n, height, width) bool, optional
        With 68 landmarks: each face's region (:func:`~privface.attributes.face_region.face_mask`);
        outside it the output is the face's own crop, bit for bit.
    """

    faces: np.ndarray
    group: np.ndarray
    k: np.ndarray
    group_size: np.ndarray
    class_merged: np.ndarray
    realised: np.ndarray | None = None
    own_group: np.ndarray | None = None
    member: np.ndarray | None = None
    retargeted: np.ndarray | None = None
    shown: np.ndarray | None = None
    regions: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.group)
        if self.realised is None:
            object.__setattr__(self, "realised", ~np.asarray(self.class_merged, bool))
        if self.own_group is None:
            object.__setattr__(self, "own_group", np.ones(n, bool))
        if self.member is None:
            object.__setattr__(self, "member", np.asarray(self.group))
        if self.retargeted is None:
            object.__setattr__(self, "retargeted", np.zeros(n, bool))

    def to_frame(self) -> pd.DataFrame:
        """One row per face: group, k, group_size, class_merged, realised, own_group,
        retargeted.

        Examples
        --------
        >>> faces = np.zeros((4, 8, 8, 3), np.uint8)
        >>> k_same_select(faces, k=2).to_frame().columns.tolist()
        ['group', 'k', 'group_size', 'class_merged', 'realised', 'own_group', 'retargeted']
        """
        return pd.DataFrame({"group": self.group, "k": self.k, "group_size": self.group_size,
                             "class_merged": self.class_merged, "realised": self.realised,
                             "own_group": self.own_group, "retargeted": self.retargeted})


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


# Attributes outside the face region that the targets fix (hair colour, given as targets): one
# that differs outweighs any difference of the faces (2 * sqrt(2) times their spread: the
# distance between 1 and -1, times sqrt 2), so that the members' hairlines, which reach into
# the averaged forehead, match the photo's own hair.
OUTSIDE_WEIGHT = 2.0 * np.sqrt(2.0)
# Attributes the faces of an average should share, as read off the faces (the pipeline's
# ``readings``), with their weights: an average of open and closed mouths, smiles and straight
# faces shows neither. Preferring alike faces (weight 1, a soft preference) raised the
# attributes a model reads alike on original and output from 0.868 to 0.901 (20 persons) and
# 0.863 to 0.887 (60 persons) with top-1 re-identification still under 1/k; a hard partition
# by all of them, or hair colour as well, let recognizers re-identify more on small sets. Glasses
# are the exception: a few members' glasses show as ghost frames on a face without them, so
# they partition (OUTSIDE_WEIGHT): on the 200-identity run groups mixing glasses fell from 65 to
# 32 of about 600, with top-1 unchanged on both small sets (benchmarks/README.md, "The ring
# around the face and alike faces"); the rest are forced by persons with many glasses photos,
# and their members receive a pure group's average where one lacks their person.
ALIKE_ATTRIBUTES = {"Smiling": 1.0, "Mouth_Slightly_Open": 1.0, "High_Cheekbones": 1.0,
                    "Eyeglasses": OUTSIDE_WEIGHT}

# Gaussian sigma (crop pixels) of the face's own crop in the ring its region grew by: the
# sharpest that kept top-1 re-identification under 1/k on both small sets measured, with the
# groups as they are now (alike faces, glasses partitioned): SFace 0.175 and 0.167 at k = 5; at
# 4, 0.22 on 20 persons; at 2, 0.31-0.345. SSIM +0.016 and MS-SSIM +0.03 over 8 (0.80 against
# 0.786; benchmarks/README.md, "The ring around the face and alike faces").
RING_BLUR = 5.0
# Inside the face region proper, where a face gets no average (its forehead above its own
# hairline or above where half of its group has skin), its own crop is blurred this many times
# RING_BLUR. Stopping the averages at the hairlines keeps the members' fringes off every
# forehead of a group (dark hairline shapes), but shows each face's own forehead: at RING_BLUR
# SFace re-identified 0.29 of 20 persons at k = 5 (bound 0.2); 1.6 times, 0.225; 2, 0.21;
# 2.5, 0.18, with SSIM 0.799 against 0.805 for the averaged hair (benchmarks/README.md,
# "The hairline").
INNER_RING_FACTOR = 2.5
# The average fades into the ring along its outline blurred by a Gaussian of EDGE_FADE times
# ring_blur (crop pixels): at 0.5 the pale dotted arcs that a pixel-by-pixel fade drew along a
# ragged edge are gone and the numbers hold (600 set: SSIM 0.7993 -> 0.79996, SFace 0.180 and
# 0.180, attributes kept 0.901); at 1 the edge is softer still but attributes kept fell to 0.899
# and SSIM to 0.7985 (benchmarks/README.md, "Smooth edges"). Where the fade lies, outside the
# outline or inside it, depends on the height in the face: :func:`_fade`.
EDGE_FADE = 0.5


def _face_regions(faces: np.ndarray, landmarks) -> np.ndarray:
    """The faces to compare when choosing groups: with 68 landmarks, each warped onto the mean
    shape of all and cut to that shape's face region (black elsewhere), so that similar faces,
    not similar hair or backgrounds, end up together; otherwise the faces as they are."""
    if landmarks is None:
        return faces
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (len(faces), 68, 2):
        return faces
    mean = np.broadcast_to(landmarks.mean(axis=0), landmarks.shape)
    region = face_mask(mean[0], faces.shape[1:3]) > 0
    warped = warp_to_shapes(faces, landmarks, mean)
    warped *= region[None, :, :, None]  # in place: no second copy of every face
    return warped


#: Groups whose faces :func:`_group_means` holds in float32 at once (about 75 MB for k = 5), and
#: whose members' warped masks :func:`_region_averages` holds at once (about 40 MB):
#: :func:`_blocks_of_groups`.
MEAN_BLOCK = 32
#: A pixel of a group's average goes into its faces where at least this share of the group's
#: members has skin there (below its hairline): with 2k persons per group, about k of them.
SKIN_QUORUM = 0.5
#: Crop pixels over which a member's share of its group's average fades in from its hairline.
SKIN_FADE = 4.0


def _blocks_of_groups(group: np.ndarray, n_groups: int):
    """:data:`MEAN_BLOCK` groups at a time: ``(first, last, faces, starts)``, the faces of
    groups ``first .. last - 1`` in group order and where each group starts among them. Each
    group's average is its own, so blocks only bound the memory a block's faces take."""
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups))
    for first in range(0, n_groups, MEAN_BLOCK):
        last = min(first + MEAN_BLOCK, n_groups)
        stop = starts[last] if last < n_groups else len(order)
        yield first, last, order[starts[first]:stop], starts[first:last] - starts[first]


def _group_means(faces: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Pixel-wise mean of each group's faces, as uint8, in bounded memory."""
    out = np.empty((n_groups,) + faces.shape[1:], np.uint8)
    # Blocks of groups bound the float32 copy of their faces (256 groups of 5 CelebA crops
    # were 600 MB).
    for first, last, members, local in _blocks_of_groups(group, n_groups):
        sums = np.add.reduceat(faces[members].astype(np.float32), local, axis=0)
        sizes = np.diff(np.append(local, len(members))).reshape(-1, 1, 1, 1)
        out[first:last] = np.clip(np.rint(sums / sizes), 0, 255).astype(np.uint8)
    return out


def k_same_select(faces: np.ndarray, classes=None, *, k: int, persons=None, features=None,
                  n_components: int = 50, sources=None, landmarks=None,
                  accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                  fit: bool = False, region: bool = False,
                  ring_blur: float = RING_BLUR, shading: float = 0.0,
                  partition=None) -> KSameResult:
    """Replace every face by the average of a group of at least k persons of its class.

    Groups form within the classes the faces *show* (``sources``, default ``classes``); each
    face then receives the average of a group of its *target* class (``classes``): its own
    group's when that is of its target class, else the nearest such group that lacks its
    person. An average of faces that show a class shows that class; one made of faces that do
    not, does not, so this is how k-Same realises attribute targets it cannot paint.

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
    sources : DataFrame or array, optional
        The attribute vector each face shows (same columns as ``classes``); groups form within
        these classes. Default: ``classes``.
    landmarks : ndarray (n, p, 2), optional
        Landmarks of each aligned face, in crop pixels. When given, every face is warped onto its
        group's mean shape before averaging (:mod:`privface.generators.shape`), so that no
        member's own geometry shows through the average.
    accept : callable, optional
        ``accept(averages, vectors) -> bool per group``: whether each group's average shows its
        class vector (an attribute model's check, say). Groups that fail are not handed out.
    fit : bool
        With ``region``: warp the average onto each face's own landmarks before it goes into
        the face's region, so that it follows the face's own jaw and features. Off by default:
        the own shape is identity, and on CelebA it let dlib re-identify 70% of the persons at
        k = 5 instead of 32% (benchmarks/README.md, "The face region").
    region : bool
        With 68 landmarks: average the face region only and keep each face's own crop outside
        it (its own hair, background). What the region keeps (outline, hair, pose) lets a
        recognizer holding the very photo find its member in a group of k more often than 1 in
        k, so :class:`KSameSelectGenerator` asks this function for groups of 2k persons
        (benchmarks/README.md, "The face region"). Off here: the whole aligned crop is averaged.
    ring_blur : float
        With ``region``: Gaussian sigma (crop pixels) of the face's own crop in the ring between
        the averaged face and the region's edge (its silhouette, hairline, the sides of the
        head), which a recognizer reads, and :data:`INNER_RING_FACTOR` times it where the face
        proper gets no average (above the hairline); 0 keeps the ring sharp. Smaller is sharper
        and lets recognizers re-identify more (benchmarks/README.md, "The ring around the face
        and alike faces", "The hairline").
    shading : float
        With ``region``: give each average its face's own light, the photo's low frequencies
        over the face proper (a Gaussian of ``shading`` times the square root of the face
        proper's area, in pixels; :func:`~privface.attributes.face_region.match_shading`).
        0 (the default) moves the mean colour only. The light is also what ties a released
        face to its own original: on the 600-photo set, 0.25 gave +0.5 dB PSNR and +0.003 SSIM
        at k = 5, and SFace re-identified 0.207 of the persons instead of 0.180, over 1/k
        (benchmarks/README.md, "The photo's own light").
    partition : array (n, m), optional
        Labels the faces of an average must share (glasses, say; :data:`ALIKE_ATTRIBUTES` at
        the partition weight). Groups are formed from ``features``, which should already keep
        them apart; where a group still mixes them (a person with more such photos than there
        are pure groups forces it), its members receive the nearest usable group of their class
        that is pure in their labels and lacks their person, if there is one, instead of their
        own group's average, which would show a faint mix (ghost glasses).

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

    A face meant to show another class gets that class's average:

    >>> shows, meant = [[1], [1], [-1], [-1]], [[1], [-1], [-1], [-1]]
    >>> result = k_same_select(faces, meant, k=2, sources=shows)
    >>> result.faces[:, 0, 0, 0].tolist(), result.own_group.tolist()
    ([5, 105, 105, 105], [True, False, True, True])
    """
    faces = check_faces(faces)
    n = len(faces)
    if int(k) != k or k < 1:
        raise InputError(f"k must be a positive integer, got {k}")
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
    if partition is not None:
        partition = np.asarray(partition)
        if len(partition) != n:
            raise ValueError(f"partition has {len(partition)} rows for {n} faces")
    if n == 0:
        empty = np.zeros(0, np.int64)
        return KSameResult(faces.copy(), empty, empty, empty, np.zeros(0, bool))
    distinct = len(np.unique(person_codes))
    if distinct < k:
        raise InputError(f"k-Same needs at least k = {k} different persons, the input has "
                         f"{distinct}")
    if features is None:
        features = pixel_features(_face_regions(faces, landmarks), n_components)
    features = np.asarray(features, np.float32).reshape(n, -1)
    if sources is None:
        source_codes, target_codes, vectors = class_codes(classes, None, n)
    else:
        source_codes, target_codes, vectors = class_codes(sources, classes, n)
    owner = merge_small_classes(source_codes, vectors, person_codes, k)
    codes = owner[source_codes]

    member = np.empty(n, np.int64)  # the group each face's own pixels go into
    offset = 0
    for block in np.unique(codes):  # one iteration per (merged) class, never per face
        members = np.flatnonzero(codes == block)
        local = group_class(features[members], person_codes[members], k)
        member[members] = local + offset
        offset += int(local.max()) + 1
    group_code = np.zeros(offset, np.int64)
    group_code[member] = codes
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64)
        if landmarks.shape[0] != n:
            raise ValueError(f"{landmarks.shape[0]} landmark sets for {n} faces")
        shapes = np.zeros((offset,) + landmarks.shape[1:])
        np.add.at(shapes, member, landmarks)
        shapes /= np.bincount(member, minlength=offset).reshape(-1, 1, 1)
        own = faces
        faces = warp_to_shapes(faces, landmarks, shapes[member])
    regional = region and landmarks is not None and landmarks.shape[1:] == (68, 2)
    if regional:
        regions, inner = _face_masks(landmarks, own)
        means, covered = _region_averages(faces, landmarks, shapes, member, offset, inner)
    else:
        means = _group_means(faces, member, offset)
    faces = None  # the warped crops (0.7 GB on 6,000 CelebA crops) are not needed again
    usable = np.ones(offset, bool)
    if accept is not None:
        # Only the groups of a class some face wants are checked (the check may be costly).
        asked = np.isin(group_code, target_codes)
        usable = asked.copy()
        if asked.any():
            shown = means[asked]
            if regional:
                # What gets written: the average in one member's photo (the first's), not the
                # bare average, whose surroundings are a blur of nobody's.
                first = np.unique(member, return_index=True)[1][asked]
                shown = _compose(means, shapes, landmarks[first], own[first],
                                 regions[first], inner[first], fit, covered,
                                 np.flatnonzero(asked), ring_blur, shading)
            usable[asked] = np.asarray(accept(shown, vectors[group_code[asked]]),
                                       bool).reshape(-1)
        has = np.bincount(group_code[usable], minlength=len(vectors))
        rest = ~asked
        if (has[target_codes] == 0).any() and rest.any():
            # Some wanted class has no usable average: the others are checked too, so that its
            # faces can be re-targeted to the nearest class that has one.
            shown = means[rest]
            if regional:
                first = np.unique(member, return_index=True)[1][rest]
                shown = _compose(means, shapes, landmarks[first], own[first],
                                 regions[first], inner[first], fit, covered,
                                 np.flatnonzero(rest), ring_blur, shading)
            usable[rest] = np.asarray(accept(shown, vectors[group_code[rest]]),
                                      bool).reshape(-1)

    # A face whose class was merged into another wants the class its pixels were grouped in.
    has = np.bincount(group_code[usable], minlength=len(vectors))
    wanted = np.where((has[target_codes] == 0) & (has[owner[target_codes]] > 0),
                      owner[target_codes], target_codes)
    wanted = _nearest_usable(wanted, group_code, usable, vectors)
    if partition is not None:  # one code per distinct label vector
        partition = np.unique(partition.reshape(n, -1), axis=0, return_inverse=True)[1]
        partition = partition.reshape(-1)
    group, realised = _hand_out(member, group_code, usable, wanted, target_codes, features,
                                person_codes, partition)
    retargeted = wanted != target_codes
    realised = realised | (retargeted & usable[group] & (group_code[group] == wanted))
    sizes = np.bincount(member, minlength=offset)
    pairs = np.unique(np.stack([member, person_codes]), axis=1)
    k_reached = np.bincount(pairs[0], minlength=offset)
    if regional:
        out = _compose(means, shapes, landmarks, own, regions, inner, fit, covered, group,
                       ring_blur, shading)
    else:
        out, regions = means[group], None
    return KSameResult(faces=out, group=group, k=k_reached[group],
                       group_size=sizes[group],
                       class_merged=owner[target_codes] != target_codes, realised=realised,
                       own_group=group == member, member=member, retargeted=retargeted,
                       shown=vectors[np.where(retargeted, group_code[group], target_codes)],
                       regions=regions)


def _nearest_usable(wanted: np.ndarray, group_code: np.ndarray, usable: np.ndarray,
                    vectors: np.ndarray) -> np.ndarray:
    """Each face's wanted class, or, where that class has no usable group, the nearest class
    (fewest attributes different; among equally near ones the one with most usable groups)
    that has one: a face is re-targeted rather than left without an average of its class.

    Examples
    --------
    >>> vectors = np.array([[1, 1], [1, -1], [-1, -1]])
    >>> _nearest_usable(np.array([0, 2]), np.array([0, 1]), np.array([False, True]),
    ...                 vectors).tolist()
    [1, 1]
    """
    n_classes = len(vectors)
    has = np.bincount(group_code[usable], minlength=n_classes)
    if not has.any():
        return wanted
    missing = np.unique(wanted[has[wanted] == 0])
    if not len(missing) or vectors.shape[1] == 0:
        return wanted
    distance = (vectors[missing][:, None, :] != vectors[None, :, :]).sum(axis=2).astype(float)
    distance[:, has == 0] = np.inf
    # Nearest first; ties go to the class with most usable groups.
    best = np.lexsort((-np.broadcast_to(has, distance.shape), distance), axis=1)[:, 0]
    remap = np.arange(n_classes)
    remap[missing] = best
    return remap[wanted]


def _face_masks(landmarks: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face's region and its face proper (the region before it grows, up to the face's
    hairline), ``(n, h, w)`` bool in its own crop: the average goes into the face proper; the
    ring between the two is the face's own crop, blurred (see :func:`_compose`), so that no one
    else's hair or background enters it. Stopping the face proper at each member's hairline
    keeps the members' bangs out of the averaged forehead (dark hairline shapes on every
    forehead of a group with one fringe) and the average off the face's own fringe."""
    shape = crops.shape[1:3]
    regions = np.stack([face_mask(points, shape) > 0 for points in landmarks])
    inner = np.stack([below_hairline(crop, points, face_mask(points, shape, grow=0.0) > 0)
                      for crop, points in zip(crops, landmarks)])
    return regions, inner


def _region_averages(warped: np.ndarray, landmarks: np.ndarray, shapes: np.ndarray,
                     member: np.ndarray, n_groups: int, inner: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each group's average of its members' skin in its mean shape, and where it may go
    ((n_groups, h, w) bool).

    ``inner`` is each face's face proper in its own crop, cut at its hairline
    (:func:`_face_masks`). A pixel's average is taken over the members whose face proper covers
    it (in the group's mean shape; a member's weight fades in over a few pixels from its
    hairline, so no member's hairline shows as an edge), and it may go where every member's
    face region covers the pixel and at least half of the members' skin does
    (:data:`SKIN_QUORUM`): each averaged pixel holds about k persons or more, and no member's hair
    or background. The rest of the crop is filled by extending that average smoothly
    (normalised Gaussian smoothing of the average itself), never by one member's pixels.
    """
    import cv2

    height, width = warped.shape[1:3]
    # Eroded by two pixels before the warp: a bilinear sample at the region's rim must not
    # reach a pixel outside it.
    kernel = np.ones((5, 5), np.uint8)
    covered = np.empty((n_groups, height, width), bool)
    filled = np.empty((n_groups, height, width, 3), np.uint8)
    # Blocks of groups: their members' masks and float32 faces only (all faces' masks at once
    # were 1.4 GB of a 6,000-photo run's peak as warped images); each group is its own.
    for first, _, faces, local in _blocks_of_groups(member, n_groups):
        masks = np.zeros((len(faces), height, width, 3), np.uint8)
        for row, i in enumerate(faces):  # one distance transform per face (OpenCV, in C)
            skin = cv2.erode(inner[i].astype(np.uint8), kernel)
            ramp = cv2.distanceTransform(skin, cv2.DIST_L2, 5) / SKIN_FADE
            masks[row, ..., 0] = np.rint(np.clip(ramp, 0.0, 1.0) * 255)
            whole = face_mask(landmarks[i], (height, width), grow=0.0).astype(np.uint8)
            masks[row, ..., 1] = cv2.erode(whole, kernel) * 255
        moved = warp_to_shapes(masks, landmarks[faces], shapes[member[faces]])
        masks = None
        everyone = np.logical_and.reduceat(moved[..., 1] == 255, local, axis=0)
        ends = np.append(local[1:], len(faces))
        for g, (a, b) in enumerate(zip(local, ends)):  # one group's float32 faces at a time
            weight = moved[a:b, ..., 0].astype(np.float32) / 255.0
            sums = np.einsum("nhw,nhwc->hwc", weight, warped[faces[a:b]].astype(np.float32))
            counts = weight.sum(axis=0)
            quorum = counts >= SKIN_QUORUM * (b - a)
            covered[first + g] = everyone[g] & quorum
            average = sums / np.maximum(counts, 1e-6)[..., None]
            filled[first + g] = _extend(average, quorum & (counts > 0))
    return filled, covered


def _compose(averages: np.ndarray, shapes: np.ndarray, landmarks: np.ndarray, own: np.ndarray,
             regions: np.ndarray, inner: np.ndarray, fit: bool,
             covered: np.ndarray, group: np.ndarray,
             ring_blur: float = RING_BLUR, shading: float = 0.0) -> np.ndarray:
    """What each face's crop becomes: its group's average (in the mean shape; with ``fit``,
    warped onto the face's own landmarks) over the face proper, the face's own crop blurred
    over the rest of its region (the ring the region grew by: silhouette, hairline, the sides
    of the head), and outside the region its own crop, bit for bit. ``regions`` and ``inner``
    are :func:`_face_masks`'s. The average is first moved to the mean colour of the face proper
    it replaces (Lab; :func:`~privface.attributes.face_region.match_colour` without spread)
    and, with ``shading``, its low frequencies (:func:`~privface.attributes.face_region.
    match_shading`).

    ``covered`` (per group, where its average may go: :func:`_region_averages`; ``group[i]``
    is face i's) bounds the face proper: beyond it the average is only its own smooth
    extension, which showed as a flat band across the forehead where a face reaches higher than
    its group's mean shape.

    ``averages`` and ``shapes`` are one per group; face i takes ``group[i]``'s, indexed, not
    copied per face (0.7 GB on 6,000 CelebA crops)."""
    import cv2

    made, rows = averages, group
    if fit:  # the warp makes one average per face anyway
        made = warp_to_shapes(averages[group], shapes[group], landmarks)
        rows = np.arange(len(landmarks))
    out = own.copy()
    for i in range(len(landmarks)):  # one blur per face (OpenCV, in C)
        face = inner[i].astype(np.uint8)
        if not fit:
            face &= covered[group[i]].astype(np.uint8)
        average = made[rows[i]]
        if face.any():
            # The average takes the mean colour and light of the face it replaces (three
            # numbers, no shape): the photo's own colour match reads the whole region, whose
            # ring is the face's own blur, so a lighter average stayed lighter than the cheek
            # beside it (a tone step down a turned face). Means only: matching the spread too
            # made a soft average's remaining structure look painted on.
            average = match_colour(average, own[i], face, spread=False)
            if shading > 0:  # the photo's own light, at the scale of the face
                average = match_shading(average, own[i], face,
                                        shading * np.sqrt(float(face.sum())))
        ring = regions[i] & (face == 0)
        if ring_blur > 0 and ring.any():
            blurred = cv2.GaussianBlur(own[i], (0, 0), ring_blur,
                                       borderType=cv2.BORDER_REFLECT_101)
            # Where the face itself gets no average (its forehead above its own or its
            # group's hairline, a jaw beyond the group's average) the blur is heavier, fading
            # in over a few pixels: forehead and hairline are what recognizers read there (on
            # the forehead alone, SFace re-identified 0.21 of 20 persons at k = 5, not 0.18).
            proper = cv2.GaussianBlur(face_mask(landmarks[i], face.shape, grow=0.0), (0, 0),
                                      3.0)[..., None]
            heavy = cv2.GaussianBlur(own[i], (0, 0), INNER_RING_FACTOR * ring_blur,
                                     borderType=cv2.BORDER_REFLECT_101)
            blurred = proper * heavy + (1.0 - proper) * blurred
            # The average fades out over the ring (its smooth extension, not anyone's pixels)
            # along a smoothed outline of the face proper, so the face has no edge inside the
            # region: where that outline is ragged (a group's hairlines meeting at its skin
            # quorum) a fade that followed it pixel by pixel showed as a pale, ragged patch on
            # the forehead. Inside the face proper only its corners and slivers take some of
            # the blur below the eyes, and above the brows the rim of its outline (the own
            # hairline's, which the average must not draw: :func:`_fade`).
            weight = _fade(face, landmarks[i], EDGE_FADE * ring_blur)[..., None]
            mixed = np.rint(weight * average + (1.0 - weight) * blurred).astype(np.uint8)
            inside = regions[i] | (face > 0)
            out[i][inside] = mixed[inside]
        else:
            out[i][face > 0] = average[face > 0]
    return out


def _fade(face: np.ndarray, points: np.ndarray, sigma: float) -> np.ndarray:
    """How much of the average each pixel of a crop takes (0 to 1): the face proper ``face``
    (its crop's mask) with its outline smoothed by a Gaussian of ``sigma`` pixels.

    Below the eyes the fade lies outside the outline: the average covers the face proper whole
    up to its edge (the cheeks, mouth and jaw that smiles and cheekbones are read off) and fades
    out over the ring. Above the brows it lies inside: there the outline is the face's own
    hairline wherever that is lower than its group's, and an average at full strength up to it
    drew that hairline, pale and sharp, on the heavily blurred forehead (the share of persons
    SFace re-identified fell from 0.180 to 0.140 on the 600-photo set with the fade inside, and
    SSIM rose to 0.801: benchmarks/README.md, "The hairline's outline"). Between the eyes and the
    brows one turns into the other, along the face's own upright axis (``points``: its 68
    landmarks in the crop), so a tilted face fades as an upright one.

    Examples
    --------
    >>> import numpy as np
    >>> face = np.zeros((100, 100), np.uint8)
    >>> face[30:90, 20:80] = 1
    >>> points = np.zeros((68, 2))
    >>> points[:, 0] = 50
    >>> points[17:27, 1], points[36:48, 1], points[48:68, 1] = 40, 50, 75  # brows, eyes, mouth
    >>> weight = _fade(face, points, 2.5)
    >>> [round(float(w), 2) for w in weight[26:34, 50]]  # the forehead's edge, row 30: inside
    [0.0, 0.0, 0.0, 0.0, 0.16, 0.45, 0.69, 0.84]
    >>> [round(float(w), 2) for w in weight[86:94, 50]]  # the jaw's edge, row 89: outside
    [1.0, 1.0, 1.0, 1.0, 0.84, 0.55, 0.31, 0.16]
    """
    import cv2

    smooth = cv2.GaussianBlur(face.astype(np.float32), (0, 0), sigma)
    outside = np.minimum(2.0 * smooth, 1.0)
    inside = np.clip(2.0 * smooth - 1.0, 0.0, 1.0)
    eyes = points[36:48].mean(axis=0)
    brows = points[17:27].mean(axis=0)
    up = eyes - points[48:68].mean(axis=0)  # mouth to eyes: the face's own upright axis
    up /= max(float(np.hypot(*up)), 1e-6)
    rows, cols = np.mgrid[0:face.shape[0], 0:face.shape[1]].astype(np.float32)
    height = (cols - eyes[0]) * up[0] + (rows - eyes[1]) * up[1]  # above the eyes, in pixels
    above = np.clip(height / max(float(np.dot(brows - eyes, up)), 1.0), 0.0, 1.0)
    return above * inside + (1.0 - above) * outside


def _extend(average: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``average`` where ``valid``, and elsewhere a smooth extension of it (normalised Gaussian
    smoothing at growing scales: the nearest valid pixels' colours, blurred)."""
    import cv2

    out = average.copy()
    missing = ~valid
    weight = valid.astype(np.float32)
    for sigma in (3.0, 8.0, 24.0, 64.0):
        if not missing.any():
            break
        spread = cv2.GaussianBlur(weight, (0, 0), sigma)
        values = cv2.GaussianBlur(average * weight[..., None], (0, 0), sigma)
        reached = missing & (spread > 1e-3)
        out[reached] = values[reached] / spread[reached][:, None]
        missing &= ~reached
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _hand_out(member: np.ndarray, group_code: np.ndarray, usable: np.ndarray,
              wanted: np.ndarray, targets: np.ndarray, features: np.ndarray,
              persons: np.ndarray, labels: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The group whose average each face receives, and whether that realises its target.

    A face keeps its own group when the group is usable and of the (merged) class it wants;
    otherwise it takes the usable group of that class nearest to it (centroids in ``features``)
    that holds none of its person's photos, or, failing that, the nearest at all. A face whose
    class has no usable group keeps its own (and is not realised). With ``labels`` (one code
    per face, the partition's label vector), a face whose own group mixes labels also moves, to
    the nearest such group whose members all carry its label, when one lacks its person; faces
    that move anyway prefer such groups.

    Examples
    --------
    Faces 0-3 form a group that mixes labels; face 0 (label 1) moves to the pure group 1:

    >>> member = np.array([0, 0, 0, 0, 1, 1])
    >>> group, _ = _hand_out(member, np.array([0, 0]), np.array([True, True]),
    ...                      np.zeros(6, int), np.zeros(6, int), np.zeros((6, 1)),
    ...                      np.arange(6), np.array([1, 0, 0, 0, 1, 1]))
    >>> group.tolist()
    [1, 0, 0, 0, 1, 1]
    """
    n_groups = len(group_code)
    group = member.copy()
    moving = ~(usable[member] & (group_code[member] == wanted))
    label_of = None
    if labels is not None:
        # A group's label: its members' one label, or -1 where they mix.
        low = np.full(n_groups, labels.max() + 1)
        high = np.full(n_groups, -1)
        np.minimum.at(low, member, labels)
        np.maximum.at(high, member, labels)
        label_of = np.where(low == high, low, -1)
        mixed = label_of[member] < 0
        stay_if_none = mixed & ~moving  # these would otherwise keep their own group
        moving = moving | mixed
    if moving.any():
        counts = np.bincount(member, minlength=n_groups).astype(np.float32)[:, None]
        centroids = np.zeros((n_groups, features.shape[1]), np.float32)
        np.add.at(centroids, member, features)
        centroids /= counts
        holds = np.zeros((n_groups, persons.max() + 1), bool)
        holds[member, persons] = True
        for code in np.unique(wanted[moving]):  # one iteration per class, never per face
            faces = np.flatnonzero(moving & (wanted == code))
            options = np.flatnonzero(usable & (group_code == code))
            if not len(options):
                continue
            # |a - b|^2 without the (faces x options x dims) block
            distance = ((features[faces] ** 2).sum(1)[:, None] - 2 * features[faces]
                        @ centroids[options].T + (centroids[options] ** 2).sum(1)[None, :])
            own_person = holds[options][:, persons[faces]].T  # (faces, options)
            penalty = np.where(own_person, np.inf, 0.0)
            best = np.argmin(distance + penalty, axis=1)
            fallback = np.argmin(distance, axis=1)
            none_free = own_person.all(axis=1)
            chosen = options[np.where(none_free, fallback, best)]
            if label_of is not None:
                alike = label_of[options][None, :] == labels[faces][:, None]
                cost = distance + penalty + np.where(alike, 0.0, np.inf)
                found = np.isfinite(cost).any(axis=1)
                chosen = np.where(found, options[np.argmin(cost, axis=1)],
                                  np.where(stay_if_none[faces], member[faces], chosen))
            group[faces] = chosen
    realised = usable[group] & (group_code[group] == targets)
    return group, realised


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
    warp : bool
        Warp the faces of a group onto their mean shape before averaging, when the caller
        passes ``landmarks`` (the pipeline does). Without it an average pasted back into one
        member's photo leans towards that member.
    fit : bool
        Warp each group's average onto the receiving face's own landmarks (see
        :func:`k_same_select`); off by default, for privacy.
    region : bool
        Replace the face region only, keeping each photo's own hair and background (the
        default). ``region=False`` (``--param region=false``) replaces the whole aligned crop by
        the group's average, other people's hair and backgrounds included (ghosts).
    margin : int, optional
        Persons per average as a multiple of ``k``: default 2 with the face region, 1 for the
        whole crop. What the face region keeps of a photo (hair, outline, background) lets a
        recognizer that holds the very photo pick its own member out of a group more often
        than 1 in k; with averages of 2k persons top-1 re-identification stayed under 1/k
        (benchmarks/README.md, "The face region"). Capped at the persons there are, never
        below k.
    ring_blur : float
        Gaussian sigma (crop pixels) of the photo's own crop in the ring around the averaged
        face (see :func:`k_same_select`), :data:`INNER_RING_FACTOR` times it on the forehead
        above the hairline; default :data:`RING_BLUR`. ``--param ring_blur=3`` gives sharper
        photos that recognizers re-identify more often (benchmarks/README.md, "The ring around
        the face and alike faces").
    shading : float
        Carry each photo's own light onto its average (see :func:`k_same_select`); 0, the
        default, moves the mean colour only. ``--param shading=0.25`` gives better quality
        numbers that recognizers re-identify more often: over 1/k at k = 5 on CelebA, within
        it at k = 2 (benchmarks/README.md, "The photo's own light").

    Examples
    --------
    >>> faces = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 10, 100, 110)])
    >>> targets = pd.DataFrame({"Smiling": [1, 1, -1, -1]})
    >>> result = KSameSelectGenerator(k=2).generate(faces, None, targets)
    >>> result.faces[:, 0, 0, 0].tolist(), result.notes["k"].tolist()
    ([5, 5, 105, 105], [2, 2, 2, 2])
    """

    name = "ksame"

    def __init__(self, k: int = 5, attributes=None, n_components: int = 50,
                 warp: bool = True, fit: bool = False, region: bool = True,
                 margin: int | None = None, ring_blur: float = RING_BLUR,
                 shading: float = 0.0) -> None:
        if int(k) != k or k < 1:
            raise InputError(f"k must be a positive integer, got {k}")
        if int(n_components) < 1:
            raise InputError(f"n_components must be at least 1, got {n_components}")
        if margin is not None and (int(margin) != margin or margin < 1):
            raise InputError(f"margin must be a positive integer, got {margin}")
        if not np.isfinite(ring_blur) or ring_blur < 0:
            raise InputError(f"ring_blur must be a sigma >= 0 (crop pixels), got {ring_blur}")
        if not np.isfinite(shading) or shading < 0:
            raise InputError(f"shading must be >= 0 (a fraction of the face's size), got "
                             f"{shading}")
        self.k = int(k)
        self.ring_blur = float(ring_blur)
        self.shading = float(shading)
        self.attributes = None if attributes is None else tuple(attributes)
        self.n_components = int(n_components)
        self.warp = bool(warp)
        self.fit = bool(fit)
        self.region = bool(region)
        self.margin = int(margin) if margin is not None else (2 if self.region else 1)
        self.geometry = CELEBA

    def group_persons(self, available: int | None = None, *, regional: bool = True) -> int:
        """Persons per average: ``margin * k`` with the face region (``regional``: the faces
        come with 68 landmarks), ``k`` otherwise; capped at ``available`` persons, never below
        ``k``.

        Examples
        --------
        >>> KSameSelectGenerator(k=5).group_persons(), KSameSelectGenerator(k=5).group_persons(7)
        (10, 7)
        >>> KSameSelectGenerator(k=5, region=False).group_persons()
        5
        """
        wanted = self.k * self.margin if self.region and regional else self.k
        return max(self.k, min(wanted, available)) if available is not None else wanted

    @property
    def editable(self) -> tuple[str, ...]:
        """The attributes that define classes (the average has its class's attributes); with
        ``region``, less those outside the face region (hair colour, hats, ...): only the face
        region is replaced, so the photo keeps the face's own hair, and its own values of
        those."""
        names = self.attributes if self.attributes is not None else tuple(CELEBA_ATTRIBUTES)
        if not self.region:
            return tuple(names)
        return tuple(a for a in names if a not in OUTSIDE_FACE_ATTRIBUTES)

    @property
    def capabilities(self) -> Capabilities:
        """CelebA's crop; the pipeline passes ``persons=`` so that groups hold k different
        people, ``landmarks=`` (crop pixels), ``accept=`` (an attribute check) and, with the
        face region, ``readings=`` (what each face shows, to group alike faces)."""
        return Capabilities(geometry=self.geometry, editable=self.editable, uses_persons=True,
                            uses_landmarks=True, uses_readings=self.region,
                            paste="blend" if self.region else "crop")

    def generate(self, faces: np.ndarray, source_attributes=None, target_attributes=None, *,
                 persons=None, features=None, landmarks=None, accept=None, readings=None
                 ) -> GenerationResult:
        """Group averages; ``notes`` holds :meth:`KSameResult.to_frame` (group, k, ...).

        With ``source_attributes`` (what each face shows) groups form within those classes and
        each face receives an average of its target class (see :func:`k_same_select`). With
        ``readings`` (every attribute read off each face) and the face region, faces alike in
        :data:`ALIKE_ATTRIBUTES` (expression, glasses) are preferred in one group; those at the
        partition weight (glasses, hair colour given as a target) also decide the hand-out:
        where a group still mixes them, its members receive a pure group's average instead
        (``partition`` of :func:`k_same_select`).
        """
        classes = sources = outside = None
        kept = np.ones(len(faces), bool)
        if target_attributes is not None:
            classes = self._columns(target_attributes, "target")
            # Attributes outside the face region do not define classes: the photo keeps the
            # face's own, so a target that differs from it cannot be realised.
            fixed = [c for c in classes.columns if c not in self.editable]
            outside = classes[fixed]
            if source_attributes is not None:
                sources = self._columns(source_attributes, "source")[list(classes.columns)]
                kept = (sources[fixed].to_numpy() == classes[fixed].to_numpy()).all(axis=1)
                outside = sources[fixed]
                sources = sources.drop(columns=fixed)
            classes = classes.drop(columns=fixed)
            if not len(classes.columns):
                classes = sources = None
        # The region needs the 68 landmarks, which reach k_same_select only with the warp.
        regional = self.warp and landmarks is not None and np.shape(landmarks)[1:] == (68, 2)
        alike = _alike(outside, readings) if regional and self.region else None
        if features is None and alike is not None:
            features = _with_alike(pixel_features(_face_regions(faces, landmarks),
                                                  self.n_components), *alike)
        partition = None
        if alike is not None:
            # float32 weights: 2 sqrt 2 rounds below the float64 constant
            hard = alike[1] >= np.float32(OUTSIDE_WEIGHT)
            partition = alike[0].loc[:, hard].to_numpy() if hard.any() else None
        available = len(np.unique(np.asarray(persons))) if persons is not None else len(faces)
        result = k_same_select(
            faces, classes, k=self.group_persons(available, regional=regional),
            persons=persons, features=features,
            n_components=self.n_components, sources=sources,
            landmarks=landmarks if self.warp else None, fit=self.fit, region=self.region,
            ring_blur=self.ring_blur, shading=self.shading, partition=partition,
            accept=_widened(accept, list(self._columns(target_attributes, "target").columns),
                            fixed) if accept is not None and target_attributes is not None
            else accept)
        notes = result.to_frame()
        realised = np.asarray(result.realised, bool) & kept
        notes["realised"] = realised
        shown = None
        if classes is not None and result.retargeted.any():
            shown = pd.DataFrame(result.shown, columns=classes.columns)
        return GenerationResult(result.faces, realised=realised, regions=result.regions,
                                notes=notes, shown=shown)

    def _columns(self, attributes, what: str) -> pd.DataFrame:
        """The class columns of ``attributes`` (``self.attributes``, default all)."""
        table = pd.DataFrame(attributes)
        if self.attributes is None:
            return table
        missing = [a for a in self.attributes if a not in table.columns]
        if missing:
            raise ValueError(f"{what} attributes lack the column(s) {missing}")
        return table[list(self.attributes)]


def _alike(outside: pd.DataFrame | None, readings) -> tuple[pd.DataFrame, np.ndarray] | None:
    """What the faces of an average should share, with a weight per attribute: the attributes
    outside the face region that the targets fix (``outside``, weight :data:`OUTSIDE_WEIGHT`),
    and :data:`ALIKE_ATTRIBUTES` as read off the faces (``readings``, their own weights); None
    when there is neither.

    Examples
    --------
    >>> readings = pd.DataFrame({"Smiling": [1, -1], "Male": [1, 1]})
    >>> table, weights = _alike(pd.DataFrame({"Blond_Hair": [1, -1]}), readings)
    >>> table.columns.tolist(), [round(float(w), 2) for w in weights]
    (['Blond_Hair', 'Smiling'], [2.83, 1.0])
    """
    parts, weights = [], []
    if outside is not None and len(outside.columns):
        parts.append(pd.DataFrame(outside).reset_index(drop=True))
        weights += [OUTSIDE_WEIGHT] * len(outside.columns)
    if readings is not None:
        readings = pd.DataFrame(readings).reset_index(drop=True)
        taken = set(parts[0].columns) if parts else set()
        columns = [a for a in ALIKE_ATTRIBUTES if a in readings.columns and a not in taken]
        parts.append(readings[columns])
        weights += [ALIKE_ATTRIBUTES[a] for a in columns]
    if not weights:
        return None
    return pd.concat(parts, axis=1), np.array(weights, np.float32)


def _with_alike(features: np.ndarray, alike: pd.DataFrame, weights) -> np.ndarray:
    """``features`` with the attributes the faces of an average should share appended
    (:func:`_alike`), each scaled by its weight times the faces' spread: at
    :data:`OUTSIDE_WEIGHT` one differing attribute outweighs any difference of the faces, so
    groups hold faces of one hair colour (or glasses) where the class has enough of them; at
    1 alike faces of one expression are preferred.

    Examples
    --------
    >>> features = np.array([[0.0], [1.0], [0.0]], np.float32)
    >>> out = _with_alike(features, pd.DataFrame({"Blond_Hair": [1, -1, -1]}), [OUTSIDE_WEIGHT])
    >>> out.astype(float).round(2).tolist()
    [[0.0, 1.33], [1.0, -1.33], [0.0, -1.33]]
    """
    features = np.asarray(features, np.float32)
    spread = float(np.sqrt(features.var(axis=0).sum())) or 1.0
    shown = alike.to_numpy(np.float32) * np.asarray(weights, np.float32)
    return np.hstack([features, shown * spread]).astype(np.float32)


def _widened(accept: Callable, columns: list, fixed: list) -> Callable:
    """``accept`` for class vectors without the ``fixed`` columns: it is handed vectors over all
    ``columns`` again, 0 (no claim) in the fixed ones, which the pipeline's check skips."""
    at = [i for i, c in enumerate(columns) if c not in fixed]

    def check(averages: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        full = np.zeros((len(vectors), len(columns)), np.int8)
        full[:, at] = vectors
        return accept(averages, full)

    return check
