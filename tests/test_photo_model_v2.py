"""The photo model v2 (docs/photo-pipeline.md): targets chosen for the whole release.

k and l count the persons of every released class; t bounds each controlled attribute's share
among the released faces against the reference. These tests pin the model against a brute-force
search, show that the first model (t over persons) collapses where v2 does not, and that a
release met only by withholding one group's photos is reported as unmet.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privface.pipeline.records import release_rates, verdict
from privface.pipeline.targets import (CollapseError, Persons, choose_targets,
                                       read_attributes)
from privface.privmetrics.ppas import select_attributes
from privface.privmetrics.ppas.release import assign_targets


def _population(n_persons: int = 40, photos: int = 3, seed: int = 0) -> tuple[pd.DataFrame,
                                                                                np.ndarray]:
    """Faces of n_persons people, 30 % men, ages mixed; each person shows one class."""
    rng = np.random.default_rng(seed)
    male = np.where(np.arange(n_persons) < int(0.3 * n_persons), 1, -1)
    young = np.where(rng.random(n_persons) < 0.7, 1, -1)
    faces = pd.DataFrame({"Male": np.repeat(male, photos), "Young": np.repeat(young, photos)})
    persons = np.repeat([f"p{i}" for i in range(n_persons)], photos).astype(object)
    return faces, persons


def test_the_first_model_collapses_where_v2_keeps_the_population():
    faces, persons = _population()
    qi = ["Male", "Young"]
    # v1: t-closeness with the person as the sensitive attribute. No class of 40 persons is
    # within t = 0.2 of the whole but the whole itself: no face has a feasible target with the
    # attributes controlled, so the first pipeline generalised until one class held everyone.
    reference = faces.assign(person=persons)
    v1 = select_attributes(reference, faces, qi=qi, editable=qi, sensitive="person", t=0.2,
                           epsilon=None, on_infeasible="skip")
    assert v1.targets.isna().all(axis=1).all()
    for kept in qi:  # one QI controlled is no better
        alone = select_attributes(reference, faces[[kept]], qi=[kept], editable=[kept],
                                  sensitive="person", t=0.2, epsilon=None,
                                  on_infeasible="skip")
        feasible = alone.targets.dropna()
        assert feasible.drop_duplicates().shape[0] <= 1  # one class at most
    # v2: every face keeps its class (no change needed), several classes are released, the
    # shares are those of the population.
    v2 = choose_targets(faces, qi, Persons(persons, "identities", ""), qi=qi, editable=qi,
                        reference=None, k=None, l=None, t=0.2, epsilon=None, seed=None)
    assert v2.summary["planned"]["n_classes"] == 4
    assert v2.summary["mean_changed"] == 0.0 and not v2.summary["generalised"]
    assert (v2.table["Male"] == 1).mean() == pytest.approx(0.3)


def test_v2_with_k_moves_few_faces_and_keeps_the_shares():
    faces, persons = _population(n_persons=40, photos=2, seed=3)
    # One man who is old: a class of one person. k = 3 must move him (or others) somewhere.
    faces.loc[faces["Male"] == 1, "Young"] = 1
    faces.loc[0:1, ["Male", "Young"]] = [1, -1]
    out = choose_targets(faces, ["Male", "Young"], Persons(persons, "identities", ""),
                         qi=["Male", "Young"], editable=["Young"], reference=None, k=3, l=None,
                         t=0.1, epsilon=None, seed=None)
    planned = out.summary["planned"]
    assert planned["k"] >= 3 and planned["t"] <= 0.1
    assert (out.table["Male"] == faces["Male"]).all()  # not editable: never changed
    assert 0 < out.summary["mean_changed"] <= 0.1


def test_a_collapse_is_refused_unless_allowed():
    # Two men and three women, Male editable, k = 3: two classes of 3 persons cannot be made
    # from 5, so the only release is one class (everyone a woman: the fewest changes).
    faces = pd.DataFrame({"Male": [1, 1, -1, -1, -1]})
    persons = Persons(np.array([f"p{i}" for i in range(5)], dtype=object), "identities", "")
    kwargs = dict(qi=["Male"], editable=["Male"], reference=None, k=3, l=None, t=None,
                  epsilon=None, seed=None)
    with pytest.raises(CollapseError, match="one class") as caught:
        choose_targets(faces, ["Male"], persons, **kwargs)
    assert caught.value.exit_code == 1 and "--allow-collapse" in str(caught.value)
    out = choose_targets(faces, ["Male"], persons, **kwargs, allow_collapse=True)
    assert out.summary["collapse"] and out.summary["planned"]["n_classes"] == 1


def test_a_release_that_erases_a_group_is_a_collapse_even_with_several_classes():
    # Two men among ten persons, k = 5: the men cannot form a class, so the fewest changes make
    # them women. The release still has two classes (by age), and only 2 of 20 attributes
    # change, but no released face is a man: the first photo model's failure, refused.
    faces = pd.DataFrame({"Male": [1, 1] + [-1] * 8, "Young": [1, -1] * 5})
    persons = Persons(np.array([f"p{i}" for i in range(10)], dtype=object), "identities", "")
    kwargs = dict(qi=["Male", "Young"], editable=["Male", "Young"], reference=None, k=5,
                  l=None, t=None, epsilon=None, seed=None)
    with pytest.raises(CollapseError, match="no released face keeps Male = 1, which 2 of"):
        choose_targets(faces, ["Male", "Young"], persons, **kwargs)
    out = choose_targets(faces, ["Male", "Young"], persons, **kwargs, allow_collapse=True)
    assert out.summary["planned"]["n_classes"] == 2 and (out.table["Male"] == -1).all()
    # Five men of five persons keep their class: nothing erased, nothing refused.
    fair = pd.DataFrame({"Male": [1] * 5 + [-1] * 5, "Young": [1] * 10})
    assert not choose_targets(fair, ["Male", "Young"], persons, **kwargs).summary["collapse"]


def test_unreachable_requirements_say_the_best_reachable_numbers():
    faces = pd.DataFrame({"Male": [1, 1, -1, -1]})
    persons = Persons(np.array(["a", "b", "c", "d"], dtype=object), "identities", "")
    with pytest.raises(CollapseError, match=r"best reachable: with t=0.1 at most k=2"):
        choose_targets(faces, ["Male"], persons, qi=["Male"], editable=["Male"],
                       reference=None, k=3, l=None, t=0.1, epsilon=None, seed=None)


def test_uncertain_readings_are_never_changed_and_a_person_pools_their_sex():
    faces = pd.DataFrame({"Male": [1, -1, -1, -1, 1, 1], "Young": [1, 1, -1, -1, 1, -1]})
    probabilities = pd.DataFrame({"Male": [0.55, 0.01, 0.02, 0.1, 0.97, 0.99],
                                  "Young": [0.9, 0.55, 0.1, 0.1, 0.9, 0.1]})
    persons = Persons(np.array(["w", "w", "w", "x", "m", "m"], dtype=object), "identities", "")
    readings = read_attributes(faces, ["Male", "Young"], persons, probabilities)
    # Photo 0 of woman "w" read male at 0.55: her other photos say she is a woman.
    assert readings.values["Male"].tolist() == [-1, -1, -1, -1, 1, 1]
    assert readings.summary["corrected_by_person"] == {"Male": 1}
    assert readings.uncertain["Young"].tolist() == [False, True, False, False, False, False]
    # The one man cannot form a class of 2 persons and is made a woman: an erased group, allowed
    # here (a_release_that_erases_a_group is the test of that).
    out = choose_targets(faces, ["Male", "Young"], persons, qi=["Male", "Young"],
                         editable=["Male", "Young"], reference=None, k=2, l=None, t=None,
                         epsilon=None, seed=None, probabilities=probabilities,
                         allow_collapse=True)
    # Face 1's age is uncertain: whatever k needs, it keeps the reading.
    assert out.table.loc[1, "Young"] == 1
    assert out.certificates[1]["uncertain"] == ["Young"]
    assert out.summary["readings"]["faces_with_an_uncertain_reading"] == 1


def test_a_release_met_only_by_withholding_one_group_is_unmet():
    faces = pd.DataFrame({"file": [f"{i}.jpg" for i in range(20)], "face": 0,
                          "Male": [1] * 4 + [-1] * 16, "Young": 1})
    # Every woman's photo out, half of the men's: the audit of what was released may pass,
    # the release does not.
    released = {f"{i}.jpg" for i in range(2, 20)}
    rates = release_rates(faces, released)
    assert rates["by_group"]["Male"] == {"-1": 1.0, "1": 0.5}
    assert rates["balanced"] is False
    judged = verdict({"faces": 18, "requirements_met": True}, None, rates, {"k": 2})
    assert judged["met"] is False and "release rates" in judged["why"][0]
    fair = release_rates(faces, {f"{i}.jpg" for i in range(20)})
    assert verdict({"faces": 20, "requirements_met": True}, None, fair, {"k": 2})["met"]


# --------------------------------------------------------------------- against brute force

@st.composite
def _small_runs(draw):
    n = draw(st.integers(1, 6))
    q = draw(st.integers(1, 2))
    bits = draw(st.lists(st.lists(st.sampled_from([1, -1]), min_size=q, max_size=q),
                         min_size=n, max_size=n))
    persons = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    editable = draw(st.lists(st.booleans(), min_size=q, max_size=q))
    k = draw(st.sampled_from([None, 1, 2, 3]))
    t = draw(st.sampled_from([None, 0.0, 0.2, 0.5]))
    group_k = draw(st.sampled_from([None, 2]))
    return (pd.DataFrame(bits, columns=[f"a{j}" for j in range(q)]), np.array(persons),
            [f"a{j}" for j, e in enumerate(editable) if e], k, t, group_k)


def _brute_force(faces: pd.DataFrame, persons: np.ndarray, editable: list[str], k, t,
                 group_k=None):
    """The fewest changes over every assignment (faces of one person and vector move
    together, as slots do), or None when none meets k and t (and, with group_k, lets every
    class be cut into groups of group_k different persons)."""
    names = list(faces.columns)
    values = faces.to_numpy()
    shares = (values > 0).mean(axis=0)
    keys = [(p, tuple(v)) for p, v in zip(persons, values)]
    slots = sorted(set(keys))
    options = []
    for _, vector in slots:
        choices = []
        for target in itertools.product([1, -1], repeat=len(names)):
            differs = [a != b for a, b in zip(vector, target)]
            if any(d and n not in editable for d, n in zip(differs, names)):
                continue
            if sum(differs) > 2:
                continue
            choices.append(target)
        options.append(choices)
    best = None
    for chosen in itertools.product(*options):
        assigned = dict(zip(slots, chosen))
        targets = np.array([assigned[key] for key in keys])
        if k is not None:
            classes = {}
            for target, person in zip(map(tuple, targets), persons):
                classes.setdefault(target, set()).add(person)
            if min(len(p) for p in classes.values()) < k:
                continue
        if t is not None and np.abs((targets > 0).mean(axis=0) - shares).max() > t + 1e-9:
            continue
        if group_k is not None:
            table = pd.DataFrame({"c": [tuple(r) for r in targets], "p": persons})
            counts = table.groupby(["c", "p"]).size()
            sizes = table.groupby("c").size()
            if any(count > sizes[c] // group_k for (c, _), count in counts.items()):
                continue
        cost = int((targets != values).sum())
        best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=150, deadline=None)
@given(_small_runs())
def test_assignments_are_optimal_and_meet_k_and_t(run):
    faces, persons, editable, k, t, group_k = run
    out = assign_targets(faces, persons, editable=editable, k=k, t=t, group_k=group_k)
    expected = _brute_force(faces, persons, editable, k, t, group_k)
    assert out.feasible is (expected is not None)
    if expected is None:
        return
    targets = out.targets.to_numpy()
    assert int(out.changed.sum()) == expected  # the fewest changes there are
    locked = [c for c in faces.columns if c not in editable]
    assert (out.targets[locked] == faces[locked]).all().all()
    if k is not None:
        per_class = pd.DataFrame({"c": [tuple(r) for r in targets], "p": persons})
        assert per_class.groupby("c")["p"].nunique().min() >= k
        assert out.reached["k"] >= k
    if t is not None:
        shares = (faces.to_numpy() > 0).mean(axis=0)
        assert np.abs((targets > 0).mean(axis=0) - shares).max() <= t + 1e-9


def test_randomised_response_is_drawn_once_and_said():
    faces, persons = _population(n_persons=30, photos=2, seed=5)
    out = choose_targets(faces, ["Male", "Young"], Persons(persons, "identities", ""),
                         qi=["Male", "Young"], editable=["Male", "Young"], reference=None,
                         k=2, l=None, t=0.3, epsilon=2.0, seed=4, allow_collapse=True)
    again = choose_targets(faces, ["Male", "Young"], Persons(persons, "identities", ""),
                           qi=["Male", "Young"], editable=["Male", "Young"], reference=None,
                           k=2, l=None, t=0.3, epsilon=2.0, seed=4, allow_collapse=True)
    assert out.table.equals(again.table)  # seeded: reproducible
    assert out.summary["dp"] and out.summary["seeded"] and out.summary["epsilon"] == 2.0
    assert all(c["dp"] and c["seeded"] for c in out.certificates)


def test_the_cli_exits_1_on_a_collapse_and_names_what_to_relax(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import privface.pipeline
    from privface.cli.main import app

    def collapsing(*args, **kwargs):
        raise CollapseError("refusing to collapse the release: every face is released in one "
                            "class; pass --allow-collapse to release it anyway")

    monkeypatch.setattr(privface.pipeline, "anonymize_photos", collapsing)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"")
    result = CliRunner().invoke(app, ["anonymize", str(photos), "--t", "0.2", "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "--allow-collapse" in result.output
    assert not (tmp_path / "out").exists()
