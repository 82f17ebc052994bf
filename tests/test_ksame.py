"""k-Same-Select and grouping photos by person: properties against a brute-force reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from privface.attributes.face_region import CELEBA_MEAN_LANDMARKS
from privface.attributes.persons import MAX_PHOTOS, group_persons
from privface.base.errors import InputError
from privface.generators.base import Generator
from privface.generators.ksame import KSameSelectGenerator, k_same_select
from privface.generators.registry import load_generator


@st.composite
def _inputs(draw):
    n = draw(st.integers(1, 40))
    n_persons = draw(st.integers(1, 12))
    persons = draw(st.lists(st.integers(0, n_persons - 1), min_size=n, max_size=n))
    n_attributes = draw(st.integers(0, 3))
    classes = draw(st.lists(st.lists(st.sampled_from([-1, 1]), min_size=n_attributes,
                                     max_size=n_attributes), min_size=n, max_size=n))
    k = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    return np.array(persons), np.array(classes, dtype=int).reshape(n, n_attributes), k, seed


@settings(max_examples=150, deadline=None)
@given(_inputs())
def test_groups_hold_k_persons_and_faces_become_their_group_mean(data):
    persons, classes, k, seed = data
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (len(persons), 3, 2, 3), dtype=np.uint8)
    features = rng.normal(size=(len(persons), 4))
    if len(np.unique(persons)) < k:
        with pytest.raises(ValueError, match="different persons"):
            k_same_select(faces, classes, k=k, persons=persons, features=features)
        return
    result = k_same_select(faces, classes, k=k, persons=persons, features=features)
    for g in np.unique(result.group):
        members = np.flatnonzero(result.group == g)
        distinct = len(np.unique(persons[members]))
        assert distinct >= k  # the person-specific guarantee
        assert (result.k[members] == distinct).all()
        assert (result.group_size[members] == len(members)).all()
        expected = np.rint(faces[members].astype(float).mean(axis=0))
        for m in members:  # every face of the group is the group's mean, exactly
            np.testing.assert_array_equal(result.faces[m], expected)
        # Groups mix target classes only where a class was too small and got merged.
        vectors = {tuple(row) for row in classes[members]}
        if len(vectors) > 1:
            assert result.class_merged[members].any()
    # When every class can be cut into groups of k different persons (no person with more
    # photos than the class size // k), no class is merged.
    def balanced(mask):
        return np.bincount(persons[mask]).max() <= mask.sum() // k

    vectors = {tuple(row) for row in classes}
    if all(balanced((classes == np.array(v)).all(axis=1)) for v in vectors):
        assert not result.class_merged.any()
    # When the whole input can be cut that way, every group holds k .. 2k-1 faces of different
    # persons: a top-1 guess is right for at most one face of each group.
    if np.bincount(persons).max() <= len(persons) // k:
        for g in np.unique(result.group):
            members = persons[result.group == g]
            assert len(np.unique(members)) == len(members)
            assert k <= len(members) <= max(2 * k - 1, 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**16))
def test_one_face_per_person_and_group_when_every_person_appears_equally(k, per_person, seed):
    # n >= k persons with the same number of photos: no group ever holds two photos of one
    # person, so a top-1 guess is right for at most 1 face in k.
    n_persons = k + seed % 5
    persons = np.repeat(np.arange(n_persons), per_person)
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (len(persons), 2, 2, 3), dtype=np.uint8)
    result = k_same_select(faces, k=k, persons=persons, features=rng.normal(size=(len(persons),
                                                                              3)))
    for g in np.unique(result.group):
        members = persons[result.group == g]
        assert len(members) == len(np.unique(members)) >= k


def test_groups_are_chosen_among_similar_faces():
    # Two tight clusters far apart: groups of 2 never straddle them.
    features = np.array([[0.0], [0.1], [0.2], [0.3], [10.0], [10.1], [10.2], [10.3]])
    faces = np.zeros((8, 2, 2, 3), np.uint8)
    result = k_same_select(faces, k=2, features=features)
    for g in np.unique(result.group):
        side = features[result.group == g, 0] > 5
        assert side.all() or not side.any()


def test_small_classes_merge_into_the_nearest_class():
    classes = pd.DataFrame({"a": [1, 1, 1, 1, -1], "b": [1, 1, -1, -1, -1]})
    faces = np.zeros((5, 2, 2, 3), np.uint8)
    result = k_same_select(faces, classes, k=2, features=np.arange(5.0)[:, None])
    # (-1, -1) has one person: it joins (1, -1), at Hamming distance 1, not (1, 1) at 2.
    assert result.class_merged.tolist() == [False, False, False, False, True]
    assert result.group[4] in set(result.group[2:4])


def test_generator_follows_the_protocol_and_reports_the_last_run():
    generator = load_generator("ksame", k=3)
    assert isinstance(generator, Generator) and isinstance(generator, KSameSelectGenerator)
    faces = np.random.default_rng(1).integers(0, 256, (9, 16, 12, 3), dtype=np.uint8)
    before = faces.copy()
    targets = pd.DataFrame({"Smiling": [1] * 9})
    result = generator.generate(faces, None, targets, persons=np.arange(9) % 3)
    out = result.faces
    np.testing.assert_array_equal(faces, before)
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert result.notes["k"].min() >= 3 and result.realised.all()
    assert generator.capabilities.uses_persons and generator.capabilities.uses_landmarks
    with pytest.raises(ValueError, match="different persons"):
        generator.generate(faces, None, targets, persons=np.zeros(9))
    with pytest.raises(ValueError, match="positive integer"):
        KSameSelectGenerator(k=0)
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="shading must be >= 0"):
            KSameSelectGenerator(shading=bad)
    with pytest.raises(ValueError, match="lack the column"):
        KSameSelectGenerator(k=2, attributes=["Male"]).generate(faces, None, targets)


def test_group_persons_recovers_well_separated_people():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 64))
    labels = np.repeat(np.arange(5), 6)
    embeddings = centres[labels] + 0.05 * rng.normal(size=(30, 64))
    found = group_persons(embeddings)
    # Same partition as the truth (labels may be numbered differently).
    assert len(np.unique(found)) == 5
    for person in range(5):
        assert len(np.unique(found[labels == person])) == 1
    assert found[0] == 0  # numbered in order of first appearance
    # A strict threshold of your own splits everyone.
    assert len(np.unique(group_persons(embeddings, threshold=1e-9))) == 30


def test_group_persons_refuses_bad_input():
    with pytest.raises(ValueError, match="recognizer"):
        group_persons(np.zeros((3, 4)), recognizer="nope")
    with pytest.raises(ValueError, match="FAR"):
        group_persons(np.zeros((3, 4)), far=0.5)
    with pytest.raises(ValueError, match="identities"):
        group_persons(np.zeros((MAX_PHOTOS + 1, 1)))


@st.composite
def _handout_inputs(draw):
    """Source classes that split into groups of k different persons (no merging), with
    targets that may differ from the sources, and an acceptance verdict per group."""
    k = draw(st.integers(1, 4))
    n_classes = draw(st.integers(1, 3))
    vectors = draw(st.lists(st.tuples(st.sampled_from([-1, 1]), st.sampled_from([-1, 1])),
                            min_size=n_classes, max_size=n_classes, unique=True))
    sources, persons = [], []
    for vector in vectors:
        size = k * draw(st.integers(1, 3))
        sources += [vector] * size
        # Distinct persons within a class (drawn from a shared pool, so a person can appear
        # in several classes): every class cuts into groups of k different persons.
        persons += draw(st.lists(st.integers(0, 11), min_size=size, max_size=size, unique=True))
    n = len(sources)
    targets = draw(st.lists(st.sampled_from(vectors + [(1, 1)]), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**16))
    return (np.array(sources), np.array(targets), np.array(persons), k, seed)


@settings(max_examples=150, deadline=None)
@given(_handout_inputs())
def test_every_face_receives_an_accepted_average_of_its_target_class(data):
    sources, targets, persons, k, seed = data
    rng = np.random.default_rng(seed)
    n = len(sources)
    faces = rng.integers(0, 256, (n, 3, 2, 3), dtype=np.uint8)
    features = rng.normal(size=(n, 3))
    salt = int(rng.integers(0, 2**16))

    def verdict(average):  # a deterministic, content-based check that passes ~70%
        return hash((salt, average.tobytes())) % 10 < 7

    def accept(averages, vectors):
        assert len(averages) == len(vectors)
        return np.array([verdict(a) for a in averages], bool)

    result = k_same_select(faces, targets, k=k, persons=persons, features=features,
                           sources=sources, accept=accept)
    member = result.member
    groups = np.unique(member)
    shown = {g: {tuple(v) for v in sources[member == g]} for g in groups}
    for g in groups:  # groups form within the classes the faces show, k persons each
        assert len(shown[g]) == 1
        assert len(np.unique(persons[member == g])) >= k
    means = {g: np.rint(faces[member == g].astype(float).mean(axis=0)).astype(np.uint8)
             for g in groups}
    usable = {g for g in groups if verdict(means[g])}
    for i in range(n):
        g = result.group[i]
        expected = np.rint(faces[member == g].astype(float).mean(axis=0))
        np.testing.assert_array_equal(result.faces[i], expected)
        options = [h for h in usable if shown[h] == {tuple(targets[i])}]
        if not options and not usable:  # no usable average at all: own group, not realised
            assert not result.realised[i] and g == member[i] and not result.retargeted[i]
            continue
        if not options:
            # Nothing usable shows the target: re-targeted to the nearest class that has a
            # usable average (fewest attributes different), and realised for that class.
            def distance(h, wanted=targets[i]):
                return int((np.array(next(iter(shown[h]))) != wanted).sum())
            nearest = min(distance(h) for h in usable)
            assert result.retargeted[i] and result.realised[i]
            assert g in usable and distance(g) == nearest
            np.testing.assert_array_equal(result.shown[i], next(iter(shown[g])))
            continue
        assert not result.retargeted[i]
        assert result.realised[i] and g in options
        if member[i] in options:
            assert g == member[i] and result.own_group[i]  # plain k-Same where it can be
            continue
        free = [h for h in options if persons[i] not in set(persons[member == h])]
        if free:  # never an average with the face's own person in it, when avoidable
            assert g in free

            distance = {h: ((features[i] - features[member == h].mean(axis=0)) ** 2).sum()
                        for h in free}
            assert distance[g] == pytest.approx(min(distance.values()))


def test_warping_onto_the_group_shape_makes_the_members_shares_coincide():
    # Two faces whose "mouth" (a bright blob at a landmark) sits at different heights: without
    # warping the average has two faint blobs; warped onto the mean shape, one bright blob.
    faces = np.zeros((2, 60, 50, 3), np.uint8)
    landmarks = np.array([[[15.0, 20.0], [35.0, 20.0], [25.0, 36.0]],
                          [[15.0, 20.0], [35.0, 20.0], [25.0, 44.0]]])
    for face, points in zip(faces, landmarks):
        x, y = points[2].astype(int)
        face[y - 2:y + 3, x - 2:x + 3] = 255
    plain = k_same_select(faces, k=2, features=np.zeros((2, 1)))
    warped = k_same_select(faces, k=2, features=np.zeros((2, 1)), landmarks=landmarks)
    np.testing.assert_array_equal(warped.faces[0], warped.faces[1])
    column = lambda result: result.faces[0, :, 25, 0].astype(int)  # noqa: E731
    assert column(plain).max() <= 128  # two ghosts at half strength
    assert column(warped).max() >= 200 and abs(int(column(warped).argmax()) - 40) <= 1


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.0, 3.0))
def test_thin_plate_maps_move_landmarks_onto_the_shape_and_keep_the_rest(seed, size):
    from privface.generators.shape import thin_plate_maps

    rng = np.random.default_rng(seed)
    # Well-separated landmarks inside the crop, moved by up to `size` pixels.
    grid = np.stack(np.meshgrid(np.linspace(30, 150, 5), np.linspace(40, 180, 5)), -1)
    landmarks = (grid.reshape(-1, 2) + rng.uniform(-4, 4, (25, 2)))[None]
    shapes = landmarks + rng.uniform(-size, size, landmarks.shape)
    map_x, map_y = thin_plate_maps(landmarks, shapes, 178, 218)
    ys, xs = np.mgrid[0:218, 0:178]
    same_x, same_y = thin_plate_maps(landmarks, landmarks, 178, 218)
    assert np.abs(same_x[0] - xs).max() < 1e-3 and np.abs(same_y[0] - ys).max() < 1e-3
    # Where the shape puts a landmark, the map samples the landmark (up to the coarse grid).
    col, row = np.rint(shapes[0, :, 0]).astype(int), np.rint(shapes[0, :, 1]).astype(int)
    offset = shapes[0] - np.stack([col, row], 1)
    sampled = np.stack([map_x[0, row, col], map_y[0, row, col]], 1) + offset
    assert np.abs(sampled - landmarks[0]).max() < 0.25 + 0.1 * size
    corners = [(0, 0), (0, 177), (217, 0), (217, 177)]
    for r, c in corners:  # the frame is pinned
        assert abs(map_x[0, r, c] - c) < 0.5 and abs(map_y[0, r, c] - r) < 0.5


def _faces_on_flat_backgrounds(n: int, seed: int):
    """Aligned crops: a flat, saturated background of its own per face, skin (140-150 in every
    channel) over its face region and a margin, and landmarks near CelebA's mean shape."""
    import cv2

    from privface.attributes.face_region import CELEBA_MEAN_LANDMARKS, face_mask

    rng = np.random.default_rng(seed)
    backgrounds = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
                            (255, 0, 255), (0, 255, 255), (255, 255, 255), (0, 0, 0)])[:n]
    faces = np.empty((n, 218, 178, 3), np.uint8)
    landmarks = np.empty((n, 68, 2))
    for i in range(n):  # a test fixture, not a hot path
        c, s = np.cos(rng.uniform(-0.1, 0.1)), np.sin(rng.uniform(-0.1, 0.1))
        scale = rng.uniform(0.9, 1.05)
        points = (CELEBA_MEAN_LANDMARKS - [89, 140]) @ (scale * np.array([[c, -s], [s, c]])).T
        landmarks[i] = points + [89, 140] + rng.normal(0, 1.0, (68, 2))
        skin = cv2.dilate((face_mask(landmarks[i], (218, 178)) > 0).astype(np.uint8),
                          np.ones((13, 13), np.uint8)) > 0
        faces[i] = backgrounds[i]
        faces[i][skin] = rng.integers(140, 151, (int(skin.sum()), 3))
    return faces, landmarks, backgrounds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_pixel_of_another_face_s_background_enters_a_face(seed):
    import cv2

    from privface.attributes.face_region import face_mask
    from privface.generators.ksame import EDGE_FADE, RING_BLUR

    faces, landmarks, backgrounds = _faces_on_flat_backgrounds(6, seed)
    result = k_same_select(faces, k=3, landmarks=landmarks, region=True)
    assert result.regions is not None and result.k.min() >= 3
    for i in range(len(faces)):  # per face: a handful of whole-image comparisons
        region = face_mask(landmarks[i], (218, 178)) > 0
        face = face_mask(landmarks[i], (218, 178), grow=0.0) > 0
        np.testing.assert_array_equal(result.regions[i], region)
        # Outside its region a face is its own crop, bit for bit...
        np.testing.assert_array_equal(result.faces[i][~region], faces[i][~region])
        # ...over the face proper only skin: any share of a background (0 or 255 in some
        # channel) would push a channel out of the skin's 140-150...
        inside = result.faces[i][face].astype(int)
        assert inside.min() >= 140 and inside.max() <= 150
        # ...and the ring the region grew by is its own crop, blurred (past the pixels over
        # which the average fades out: a Gaussian of EDGE_FADE * RING_BLUR, four sigmas wide).
        reach = 2 * int(np.ceil(4 * EDGE_FADE * RING_BLUR)) + 1
        outer = region & ~(cv2.dilate(face.astype(np.uint8), np.ones((reach, reach), np.uint8))
                           > 0)
        assert outer.any()
        blurred = cv2.GaussianBlur(faces[i], (0, 0), RING_BLUR,
                                   borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_array_equal(result.faces[i][outer], blurred[outer])
        others = np.delete(backgrounds, i, axis=0)
        assert not np.isin(result.faces[i][region].view([("", np.uint8)] * 3).ravel(),
                           others.astype(np.uint8).view([("", np.uint8)] * 3).ravel()).any()
    # The faces of a group did receive their average: not their own pixels.
    face = face_mask(landmarks[0], (218, 178), grow=0.0) > 0
    assert not np.array_equal(result.faces[0][face], faces[0][face])


@pytest.mark.parametrize("tilt", [0.0, 0.3])
def test_the_average_fades_inside_the_forehead_s_outline_and_outside_the_jaw(tilt):
    # Above the brows the face proper's outline is the face's own hairline wherever that is
    # lower than its group's: an average at full strength up to it drew that hairline, pale
    # and sharp, on the blurred forehead. There the average fades out inside the outline and
    # nothing of it passes the outline; below the eyes it covers the face proper whole and
    # fades out over the ring. A tilted face fades along its own upright axis.
    import cv2

    from privface.attributes.face_region import face_mask
    from privface.generators.ksame import _compose

    turn = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    points = (CELEBA_MEAN_LANDMARKS - [89, 130]) @ turn.T + [89, 130]
    region = face_mask(points, (218, 178)) > 0
    inner = face_mask(points, (218, 178), grow=0.0) > 0
    own = np.full((1, 218, 178, 3), 120, np.uint8)  # flat: its blur is itself
    stripes = np.where(np.arange(178) % 4 < 2, 60, 180).astype(np.uint8)  # columns, period 4
    average = np.broadcast_to(stripes[None, None, :, None], own.shape).copy()
    out = _compose(average, points[None], points[None], own, region[None], inner[None], False,
                   np.ones((1, 218, 178), bool), np.zeros(1, int))[0].astype(float)
    # How much of the average a pixel shows: its stripe's swing against the next stripe's,
    # relative to the full swing in the middle of the face.
    swing = np.zeros((218, 178))
    swing[:, :-2] = np.abs(out[:, :-2, 0] - out[:, 2:, 0])
    share = swing / np.median(swing[cv2.erode(inner.astype(np.uint8), np.ones((31, 31))) > 0])
    # Each pixel's height on the face's own axis, from the eyes (brows at 1, mouth below 0).
    eyes, brows = points[36:48].mean(axis=0), points[17:27].mean(axis=0)
    up = (eyes - points[48:68].mean(axis=0)) / np.hypot(*(eyes - points[48:68].mean(axis=0)))
    rows, cols = np.mgrid[0:218, 0:178]
    height = ((cols - eyes[0]) * up[0] + (rows - eyes[1]) * up[1]) / np.dot(brows - eyes, up)
    both = np.zeros_like(inner)  # the pixel and the one two columns on, for the swing
    both[:, :-2] = inner[:, :-2] & inner[:, 2:]
    outline = inner & ~(cv2.erode(inner.astype(np.uint8), np.ones((3, 3))) > 0)
    # Above the brows: nothing of the average beyond the outline (a trace in the outline's
    # notches, where more than half of a pixel's neighbours are inside), a soft edge on it.
    beyond = out[~inner & (height >= 1)]
    assert np.abs(beyond - 120).max() <= 3 and (beyond == 120).mean() > 0.99
    assert share[outline & both & (height >= 1.5)].mean() < 0.6
    # Below the eyes: the face proper whole, to its edge, and some of the ring.
    assert np.quantile(share[both & (height <= 0)], 0.02) > 0.95
    assert share[outline & both & (height <= -1)].min() > 0.9
    ring = region & ~inner & (height <= 0)
    ring[:, -2:] = False
    assert np.quantile(share[ring & (cv2.dilate(inner.astype(np.uint8), np.ones((3, 3))) > 0)],
                       0.5) > 0.3


def test_each_face_keeps_its_own_skin_tone_under_its_group_s_average():
    # Three faces of one group, one of them lit far darker: the plain average (about 118) would
    # be a light patch on the dark face and a dark one on the others; each face proper instead
    # gets the average moved to its own mean colour, and the ring it fades into is its own.
    import cv2

    from privface.attributes.face_region import face_mask

    faces, landmarks, _ = _faces_on_flat_backgrounds(3, 7)
    inner = [face_mask(points, (218, 178), grow=0.0) > 0 for points in landmarks]
    faces[0][faces[0] >= 140] -= 90  # skin 50-60 on the dark face, 140-150 on the others
    # A darker band across every face (eyes, brows): structure that the average must keep.
    faces[:, 105:115] //= 2
    result = k_same_select(faces, k=3, landmarks=landmarks, region=True)
    assert (result.group_size == 3).all()
    for i in range(3):
        face = inner[i] & (cv2.erode(inner[i].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
        own = faces[i][face].astype(float).mean(axis=0)
        made = result.faces[i][face].astype(float).mean(axis=0)
        assert np.abs(made - own).max() < 3.0, (i, own, made)
        band = face.copy()
        band[:105] = band[115:] = False
        assert result.faces[i][band].mean() < result.faces[i][face & ~band].mean() - 10
    # The faces did receive the average, not their own pixels: the skin's noise averages out.
    face = inner[1]
    assert result.faces[1][face].std() < faces[1][face].std()


def test_each_face_keeps_its_own_light_under_its_group_s_average():
    # One face of a group lit from its right (its skin 60% darker on the left), the others lit
    # evenly: with ``shading`` each face proper keeps its own light (the group's average takes
    # each face's low frequencies), so the lit face stays lit across and no lit side reaches
    # the others; without it the lit face gets the group's average light.
    import cv2

    from privface.attributes.face_region import face_mask

    faces, landmarks, _ = _faces_on_flat_backgrounds(3, 7)
    ramp = (0.4 + 0.6 * np.clip((np.arange(178) - 50) / 78, 0, 1))[None, :, None]
    faces[0] = np.rint(faces[0] * ramp).astype(np.uint8)
    result = k_same_select(faces, k=3, landmarks=landmarks, region=True, shading=0.25)
    assert (result.group_size == 3).all()

    def across(image, i):  # right half of the face proper's brightness minus its left half
        inner = face_mask(landmarks[i], (218, 178), grow=0.0) > 0
        face = cv2.erode(inner.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        middle = np.median(np.flatnonzero(face.any(axis=0)))
        left, right = face.copy(), face.copy()
        left[:, int(middle):] = right[:, :int(middle)] = False
        return image[right].astype(float).mean() - image[left].astype(float).mean()

    lit = across(faces[0], 0)
    assert lit > 20
    # The low frequencies are read within the face (a Gaussian of a quarter of its size, which
    # flattens a ramp near the face's edge): about 70% of the light comes across; a plain
    # average (a third of the ramp) and the face's own blurred ring gave 36%.
    assert across(result.faces[0], 0) > 0.6 * lit
    for i in (1, 2):
        assert abs(across(result.faces[i], i)) < 0.2 * lit
    plain = k_same_select(faces, k=3, landmarks=landmarks, region=True)
    assert across(plain.faces[0], 0) < 0.5 * lit


def test_the_average_fits_each_member_s_own_shape_when_asked():
    # Two faces whose regions differ (one with a longer jaw): each output keeps its own outline;
    # with fit, the average is also warped onto each face's own landmarks.
    from privface.attributes.face_region import face_mask

    faces, landmarks, _ = _faces_on_flat_backgrounds(2, 5)
    faces[:, 150:152] = 0  # a dark line across both faces, at one height in the crop
    landmarks[1, 0:17, 1] += 8.0  # a longer jaw
    for fit in (False, True):
        result = k_same_select(faces, k=2, landmarks=landmarks, fit=fit, region=True)
        for i in range(2):
            np.testing.assert_array_equal(result.faces[i][~result.regions[i]],
                                          faces[i][~result.regions[i]])
        assert result.regions[1].sum() > result.regions[0].sum()
        inner = [face_mask(points, (218, 178), grow=0.0) > 0 for points in landmarks]
        # The middle of the face (the dark line included), well inside both faces: near the
        # jaw, the longer face reaches beyond its group's average and keeps its own, blurred.
        middle = np.zeros((218, 178), bool)
        middle[120:165, 70:110] = True
        both = inner[0] & inner[1] & middle
        # One average in both, each moved to its own face's tone: the same up to a shift.
        shift = result.faces[0][both].astype(int) - result.faces[1][both].astype(int)
        same = np.ptp(shift, axis=0).max() <= 2
        assert same != fit  # without fit one average in both; with it, each its own shape


def test_hair_and_other_attributes_outside_the_face_are_not_editable():
    # Only with the face region (the default): the whole-crop average sets the hair too.
    assert "Black_Hair" in KSameSelectGenerator(k=2, region=False).capabilities.editable
    generator = KSameSelectGenerator(k=2)
    editable = generator.capabilities.editable
    for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Wearing_Hat"):
        assert name not in editable
    assert "Male" in editable and "Smiling" in editable
    # A hair target other than the face's own cannot be realised; the classes ignore hair.
    faces = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 10, 100, 110)])
    shows = pd.DataFrame({"Black_Hair": [1, 1, -1, -1], "Male": [1, 1, 1, 1]})
    meant = pd.DataFrame({"Black_Hair": [1, -1, -1, -1], "Male": [1, 1, 1, 1]})
    result = generator.generate(faces, shows, meant)
    assert result.realised.tolist() == [True, False, True, True]
    assert result.notes["realised"].tolist() == [True, False, True, True]


def test_warping_holds_the_maps_of_a_block_of_faces_at_a_time_with_the_same_output(monkeypatch):
    # Issue 18: the maps take 8 bytes per pixel per face, and one call for every face made them
    # the largest part of a photo run's peak memory (1.9 GB for 6,000 crops).
    from privface.generators import shape

    rng = np.random.default_rng(3)
    faces = rng.integers(0, 256, (7, 60, 50, 3), dtype=np.uint8)
    base = np.array([[15.0, 20.0], [35.0, 20.0], [25.0, 40.0], [25.0, 30.0]])
    landmarks = base + rng.uniform(-3, 3, (7, 4, 2))
    shapes = base + rng.uniform(-3, 3, (7, 4, 2))
    whole = shape.warp_to_shapes(faces, landmarks, shapes)
    sizes = []
    maps = shape.thin_plate_maps

    def counted(points, *args, **kwargs):
        sizes.append(len(points))
        return maps(points, *args, **kwargs)

    monkeypatch.setattr(shape, "WARP_BLOCK", 3)
    monkeypatch.setattr(shape, "thin_plate_maps", counted)
    blocked = shape.warp_to_shapes(faces, landmarks, shapes)
    assert sizes == [3, 3, 1]
    np.testing.assert_array_equal(blocked, whole)


def test_group_means_in_blocks_of_groups_are_the_same(monkeypatch):
    # Issue 18: 256 groups at a time held 600 MB of float32 faces; blocks of groups bound it.
    from privface.generators import ksame

    rng = np.random.default_rng(5)
    faces = rng.integers(0, 256, (23, 30, 20, 3), dtype=np.uint8)
    group = rng.integers(0, 9, 23)
    group[:9] = np.arange(9)  # every group has a face
    whole = ksame._group_means(faces, group, 9)
    monkeypatch.setattr(ksame, "MEAN_BLOCK", 2)
    np.testing.assert_array_equal(ksame._group_means(faces, group, 9), whole)
    for g in range(9):
        mean = faces[group == g].astype(np.float64).mean(axis=0)
        assert np.abs(whole[g] - mean).max() <= 0.5 + 1e-6


def test_region_averages_in_blocks_of_groups_are_each_group_s_skin_average(monkeypatch):
    # Issue 18: every face's mask warped at once as a three-channel image was 1.4 GB of a
    # 6,000-photo run's peak; blocks of groups bound it without changing a pixel. Each group's
    # average is, pixel by pixel, the mean of its members' skin (weighted by where each
    # member's face proper reaches, in the group's shape), and it may go where every member's
    # face region and half of the members' skin reach.
    import cv2

    from privface.attributes.face_region import face_mask
    from privface.generators import ksame

    faces, landmarks, _ = _faces_on_flat_backgrounds(7, 4)
    faces[2, :95] = (20, 15, 10)  # one member with a fringe down to the brows
    member = np.array([0, 0, 1, 1, 2, 2, 2])
    shapes = np.stack([landmarks[member == g].mean(axis=0) for g in range(3)])
    _, inner = ksame._face_masks(landmarks, faces)
    assert inner[2].sum() < inner[3].sum() - 500  # the fringe is cut off its face proper
    warped = ksame.warp_to_shapes(faces, landmarks, shapes[member])
    monkeypatch.setattr(ksame, "MEAN_BLOCK", 32)
    whole = ksame._region_averages(warped, landmarks, shapes, member, 3, inner)
    monkeypatch.setattr(ksame, "MEAN_BLOCK", 1)
    blocks = ksame._region_averages(warped, landmarks, shapes, member, 3, inner)
    np.testing.assert_array_equal(blocks[0], whole[0])
    np.testing.assert_array_equal(blocks[1], whole[1])
    kernel = np.ones((5, 5), np.uint8)
    ramp = np.stack([np.clip(cv2.distanceTransform(cv2.erode(r.astype(np.uint8), kernel),
                                                   cv2.DIST_L2, 5) / ksame.SKIN_FADE, 0, 1)
                     for r in inner])
    weight = ksame.warp_to_shapes(np.repeat(np.rint(ramp * 255).astype(np.uint8)[..., None], 3,
                                            axis=3), landmarks, shapes[member])[..., 0] / 255.0
    regions = np.stack([cv2.erode(face_mask(p, (218, 178), grow=0.0).astype(np.uint8), kernel)
                        for p in landmarks]) * 255
    everyone = ksame.warp_to_shapes(np.repeat(regions[..., None], 3, axis=3), landmarks,
                                    shapes[member])[..., 0] == 255
    for g in range(3):
        share = weight[member == g]
        covered = everyone[member == g].all(axis=0) & (share.sum(axis=0) >= 0.5 * len(share))
        np.testing.assert_array_equal(blocks[1][g], covered)
        mean = (share[..., None] * warped[member == g]).sum(axis=0) / share.sum(axis=0)[
            ..., None]
        assert np.abs(blocks[0][g][covered] - mean[covered]).max() <= 0.5 + 1e-3
    # The member with the fringe gives nothing of it: its group's forehead is the others' skin.
    forehead = blocks[1][1].copy()
    forehead[95:] = False
    assert forehead.any() and blocks[0][1][forehead].min() >= 140


def test_thin_plate_maps_in_small_kernel_blocks_are_the_same(monkeypatch):
    # Issue 18: kernel blocks of 128 faces (100 MB) cost 4x the CPU in fresh memory.
    from privface.generators import shape

    rng = np.random.default_rng(8)
    base = np.array([[15.0, 20.0], [35.0, 20.0], [25.0, 40.0], [25.0, 30.0]])
    landmarks, shapes = base + rng.uniform(-3, 3, (2, 37, 4, 2))
    assert shape.KERNEL_BLOCK <= 32
    monkeypatch.setattr(shape, "KERNEL_BLOCK", 128)
    one = shape.thin_plate_maps(landmarks, shapes, 50, 60)
    monkeypatch.setattr(shape, "KERNEL_BLOCK", 5)
    blocks = shape.thin_plate_maps(landmarks, shapes, 50, 60)
    for a, b in zip(one, blocks):
        np.testing.assert_array_equal(a, b)


def test_the_face_region_averages_2k_persons_and_the_whole_crop_k():
    rng = np.random.default_rng(3)
    faces = rng.integers(0, 256, (24, 218, 178, 3), dtype=np.uint8)
    jitter = rng.normal(0, 1.5, (24, 68, 2))
    landmarks = CELEBA_MEAN_LANDMARKS[None] + jitter
    persons = np.arange(24) % 12  # 12 persons, two photos each
    for generator, expected in ((KSameSelectGenerator(k=3), 6),
                                (KSameSelectGenerator(k=3, margin=3), 9),
                                (KSameSelectGenerator(k=3, region=False), 3),
                                # without the warp the landmarks never reach the region: k
                                (KSameSelectGenerator(k=3, warp=False), 3)):
        notes = generator.generate(faces, persons=persons, landmarks=landmarks).notes
        # Every group holds at least the persons asked (a group holds up to twice as many).
        assert notes["k"].min() >= expected and notes["k"].min() < 2 * expected
    # Capped at the persons there are, never under k; without 68 landmarks no region, so k.
    assert KSameSelectGenerator(k=5).group_persons(7) == 7
    assert KSameSelectGenerator(k=5).group_persons(3) == 5
    assert KSameSelectGenerator(k=5).group_persons(regional=False) == 5
    notes = KSameSelectGenerator(k=3).generate(faces, persons=persons).notes
    assert notes["k"].min() == 3
    with pytest.raises(InputError, match="margin"):
        KSameSelectGenerator(k=3, margin=0)


def test_the_face_region_groups_faces_of_one_hair_colour_together():
    # Hair lies outside the face region: the photo keeps its own, so an average whose members'
    # hairlines reach into the region must come from faces of the same hair colour.
    faces, landmarks, _ = _faces_on_flat_backgrounds(8, 2)
    # Faces that look alike in pairs across hair colours: 0~1, 2~3, ... by their skin.
    for i in range(8):
        faces[i][faces[i].min(axis=2) >= 140] = 100 + 20 * (i // 2)
    hair = pd.DataFrame({"Blond_Hair": [1, -1] * 4, "Male": [1] * 8})
    generator = KSameSelectGenerator(k=2, margin=1, attributes=["Blond_Hair", "Male"])
    notes = generator.generate(faces, None, hair, persons=np.arange(8), landmarks=landmarks).notes
    for group in notes["group"].unique():
        assert hair["Blond_Hair"][notes["group"] == group].nunique() == 1
    # Without the region (whole crop, hair averaged too) the similar faces pair up instead.
    crop = KSameSelectGenerator(k=2, region=False, attributes=["Male"])
    notes = crop.generate(faces, None, hair[["Male"]], persons=np.arange(8),
                          landmarks=landmarks).notes
    assert any(hair["Blond_Hair"][notes["group"] == g].nunique() == 2
               for g in notes["group"].unique())


def test_the_face_region_groups_faces_of_one_expression_by_their_readings():
    # The pipeline groups within target classes and passes what each face shows as readings:
    # an average of smiling and straight faces shows neither, so faces that look alike in
    # pairs across smiles must still be grouped by their smile.
    faces, landmarks, _ = _faces_on_flat_backgrounds(8, 2)
    for i in range(8):
        faces[i][faces[i].min(axis=2) >= 140] = 100 + 20 * (i // 2)
    readings = pd.DataFrame({"Smiling": [1, -1] * 4, "Male": [1] * 8, "Young": [1, 1, -1, -1] * 2})
    generator = KSameSelectGenerator(k=2, margin=1, attributes=["Male"])
    targets = readings[["Male"]]
    notes = generator.generate(faces, None, targets, persons=np.arange(8), landmarks=landmarks,
                               readings=readings).notes
    for group in notes["group"].unique():
        assert readings["Smiling"][notes["group"] == group].nunique() == 1
    # Without the readings the similar faces pair up across smiles.
    notes = generator.generate(faces, None, targets, persons=np.arange(8),
                               landmarks=landmarks).notes
    assert any(readings["Smiling"][notes["group"] == g].nunique() == 2
               for g in notes["group"].unique())


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3), st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=3,
                                   max_size=24), st.integers(0, 2**16))
def test_a_face_whose_group_mixes_its_partition_gets_a_pure_average_where_one_can(k, drawn,
                                                                                  seed):
    # A person with more glasses photos than there are pure groups forces a group to mix
    # glasses; its members then receive the nearest pure group of their own label that lacks
    # their person, and keep their own group's average only where there is none.
    persons = np.array([p for p, _ in drawn])
    labels = np.array([int(g) for _, g in drawn])
    assume(len(np.unique(persons)) >= k)
    rng = np.random.default_rng(seed)
    n = len(persons)
    faces = rng.integers(0, 256, (n, 3, 2, 3), dtype=np.uint8)
    features = np.hstack([rng.normal(size=(n, 2)), 10.0 * labels[:, None]])
    result = k_same_select(faces, k=k, persons=persons, features=features,
                           partition=labels[:, None])
    member = result.member
    groups = np.unique(member)
    pure = {g: np.unique(labels[member == g]) for g in groups}
    pure = {g: int(v[0]) for g, v in pure.items() if len(v) == 1}
    holds = {g: set(persons[member == g]) for g in groups}
    centroid = {g: features[member == g].mean(axis=0) for g in groups}
    for i in range(n):
        g, own = result.group[i], member[i]
        assert len(holds[g]) >= k
        options = [h for h, label in pure.items() if label == labels[i]
                   and persons[i] not in holds[h]]
        if own in pure:  # plain k-Same where the own group does not mix
            assert g == own
        elif options:
            assert g in options
            distance = {h: ((features[i] - centroid[h]) ** 2).sum() for h in options}
            assert distance[g] == pytest.approx(min(distance.values()))
        else:
            assert g == own
    # Without the partition every face keeps its own group (one class, all usable).
    plain = k_same_select(faces, k=k, persons=persons, features=features)
    np.testing.assert_array_equal(plain.group, plain.member)


def test_the_generator_hands_a_pure_glasses_average_to_members_of_a_mixed_group():
    # Person 0 has two photos with glasses, person 1 one: a group of 2 persons with glasses
    # holds only one of person 0's, so the other must join faces without glasses. The face
    # without glasses in that group receives the other pure group's average instead.
    faces, landmarks, _ = _faces_on_flat_backgrounds(6, 3)
    readings = pd.DataFrame({"Eyeglasses": [1, 1, 1, -1, -1, -1], "Male": [1] * 6})
    persons = np.array([0, 0, 1, 2, 3, 4])
    generator = KSameSelectGenerator(k=2, margin=1, attributes=["Male"])
    notes = generator.generate(faces, None, readings[["Male"]], persons=persons,
                               landmarks=landmarks, readings=readings).notes
    glasses = readings["Eyeglasses"].to_numpy()
    received = [set(glasses[notes["group"] == g]) for g in notes["group"]]
    own = notes["own_group"].to_numpy()
    for i in range(6):
        if glasses[i] < 0:  # every face without glasses gets an average without glasses
            assert received[i] == {-1}, i
    assert not own.all()  # someone moved: the mixed group's face without glasses
