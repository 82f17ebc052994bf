"""k-Same-Select and grouping photos by person: properties against a brute-force reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privface.attributes.persons import MAX_PHOTOS, group_persons
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
    out = generator.generate(faces, None, targets, persons=np.arange(9) % 3)
    np.testing.assert_array_equal(faces, before)
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert generator.last_result.k.min() >= 3
    with pytest.raises(ValueError, match="different persons"):
        generator.generate(faces, None, targets, persons=np.zeros(9))
    with pytest.raises(ValueError, match="positive integer"):
        KSameSelectGenerator(k=0)
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
