"""`evaluate_anonymization` and `privface evaluate`: identity leakage, quality, utility.

Unit tests run on synthetic "faces" with fake parts (a detector that finds a face in any photo that
is not black, a recognizer whose embedding is the face's pixels, a four-attribute model), so that
every number can be worked out by hand. The real-data tests run the real detector, recognizers and
attribute model on 16 CelebA photos of 8 persons.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import privface.evaluation as evaluation
from privface.attributes.analysis import FaceAnalyzer
from privface.attributes.detection import DetectedFace
from privface.attributes.images import load_image, save_image
from privface.attributes.recognizers import FaceRecognizer, pairwise_distances
from privface.cli.evaluate import evaluate_command
from privface.evaluation import (SCHEMA, evaluate_anonymization, far_key, identity_leakage,
                                 impostor_distances, nearest_in_gallery, pair_photos)
from privface.evaluation.leakage import mean_interval, top1_rates, wilson_interval
from privface.quality import PSNR_CAP

# --------------------------------------------------------------------------------------------
# Fakes


class FakeDetector:
    """One face in the middle of any photo that is not (nearly) black."""

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        if image.max() < 10:
            return []
        h, w = image.shape[:2]
        return [DetectedFace((0.2 * w, 0.2 * h, 0.6 * w, 0.6 * h), 0.9, np.zeros((5, 2)))]


class FakeLandmarks:
    """68 points whose eyes sit level in the upper part of the box."""

    def predict(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        x, y, w, h = face.box
        points = np.tile([x + 0.5 * w, y + 0.7 * h], (68, 1))
        points[36:42] = (x + 0.3 * w, y + 0.35 * h)
        points[42:48] = (x + 0.7 * w, y + 0.35 * h)
        return points


class FakeRecognizer(FaceRecognizer):
    """Embeds the face box's pixels, downscaled to 6 x 6; counts what it embeds."""

    name = "pixels"
    metric = "euclidean"

    def __init__(self) -> None:
        self.embedded = 0

    def chip(self, image, face, landmarks68):
        import cv2

        x, y, w, h = (int(round(v)) for v in face.box)
        return cv2.resize(image[y:y + h, x:x + w], (6, 6), interpolation=cv2.INTER_AREA)

    def embed_chips(self, chips):
        self.embedded += len(chips)
        return np.stack([c.astype(np.float32).ravel() / 255.0 for c in chips])


class FakeCosineRecognizer(FakeRecognizer):
    name = "centred"
    metric = "cosine"

    def embed_chips(self, chips):
        return super().embed_chips(chips) - 0.5


class FakeAttributeModel:
    """Four 'attributes': bright overall, and each channel above mid-grey."""

    name = "fake-attributes"
    attributes = ("Bright", "Reddish", "Greenish", "Bluish")

    def predict(self, crops, batch_size: int = 64) -> np.ndarray:
        means = np.array([c.reshape(-1, 3).mean(axis=0) for c in crops]).reshape(-1, 3)
        values = np.c_[means.mean(axis=1) > 100, means > 128]
        return np.where(values, 1, -1).astype(np.int8)


def fake_analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(detector=FakeDetector(), landmarks=FakeLandmarks(),
                        attribute_model=FakeAttributeModel())


def fake_parts() -> dict:
    return {"analyzer": fake_analyzer(), "recognizers": [FakeRecognizer(),
                                                        FakeCosineRecognizer()]}


# --------------------------------------------------------------------------------------------
# Synthetic photos: each person a random pattern, each photo of them the pattern plus grain.

PERSONS, PHOTOS = 5, 3
SHAPE = (60, 50)


def person_photo(person: int, photo: int) -> np.ndarray:
    import cv2

    pattern = np.random.default_rng(100 + person).uniform(20, 235, (6, 5, 3))
    smooth = cv2.resize(pattern, SHAPE[::-1], interpolation=cv2.INTER_LINEAR)
    grain = np.random.default_rng(1000 * person + photo).normal(0, 2, smooth.shape)
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def photo_name(person: int, photo: int) -> str:
    return f"p{person}_{photo}.png"


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    folder = tmp_path / "originals"
    folder.mkdir()
    for person in range(PERSONS):
        for photo in range(PHOTOS):
            save_image(person_photo(person, photo), folder / photo_name(person, photo))
    return folder


@pytest.fixture
def identities() -> pd.Series:
    return pd.Series({photo_name(p, k): 70 + p for p in range(PERSONS) for k in range(PHOTOS)},
                     name="identity")


def copy_folder(source: Path, target: Path, change=lambda name, image: image) -> Path:
    target.mkdir()
    for path in sorted(source.iterdir()):
        image = change(path.name, load_image(path))
        if image is not None:
            save_image(image, target / path.name)
    return target


REQUIRED_KEYS = [
    "schema", "pairs", "skipped", "detection_rate", "landmarks",
    "identity.{r}.top1_reid", "identity.{r}.top1_reid_ci95", "identity.{r}.top1_reid_person",
    "identity.{r}.top1_reid_person_ci95", "identity.{r}.persons",
    "identity.{r}.top1_other_photos_person",
    "identity.{r}.match_rate_far_1e-3",
    "identity.{r}.match_rate_far_1e-2", "identity.{r}.top1_chance", "identity.{r}.thresholds",
    "identity.{r}.impostor_pairs", "identity.{r}.metric", "quality.psnr", "quality.ssim",
    "quality.ms_ssim",
    "attributes.preserved_mean", "attributes.per_attribute",
]


def lookup(payload: dict, dotted: str):
    """``payload["a"]["b"]`` for ``"a.b"``."""
    value = payload
    for key in dotted.split("."):
        value = value[key]
    return value


def assert_required_keys(payload: dict, recognizers) -> None:
    for key in REQUIRED_KEYS:
        for name in recognizers:
            lookup(payload, key.format(r=name))


# --------------------------------------------------------------------------------------------
# Pairing, distances and leakage by hand


def test_pairs_by_name_then_by_unambiguous_stem():
    pairs, skipped = pair_photos(
        [Path(n) for n in ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "d.png", "e.jpg"]],
        [Path(n) for n in ["a.jpg", "a.png", "b.png", "d.webp", "f.png"]])
    assert [(o.name, a.name) for o, a in pairs] == [("a.jpg", "a.jpg"), ("b.jpg", "b.png")]
    reasons = {(s["folder"], s["file"]): s["reason"] for s in skipped}
    assert reasons[("originals", "c.jpg")] == "no anonymized photo with this name"
    assert reasons[("originals", "e.jpg")] == "no anonymized photo with this name"
    assert reasons[("anonymized", "f.png")] == "no original with this name"
    assert reasons[("anonymized", "a.png")] == "no original with this name"
    for key in [("originals", "d.jpg"), ("originals", "d.png"), ("anonymized", "d.webp")]:
        assert reasons[key].startswith("ambiguous names: cannot tell which of d.jpg, d.png, "
                                       "d.webp")
    assert len(skipped) == 7


def test_far_keys():
    assert [far_key(f) for f in (1e-3, 1e-2, 0.1, 5e-4)] == ["1e-3", "1e-2", "1e-1", "5e-4"]


GALLERY = np.array([[0.0], [1.0], [10.0], [11.0]])  # persons 0, 0, 1, 1 on a line
PROBES = np.array([[0.4], [0.2], [30.0]])  # photos 0, 1, 2; photo 3 has no face
EMBEDDED = np.array([True, True, True, False])


def test_leakage_without_identities_counts_own_photos():
    leak = identity_leakage(GALLERY, PROBES, EMBEDDED, metric="euclidean", fars=[0.34, 0.5])
    # Impostors: every pair of photos, distances 1, 1, 9, 10, 10, 11.
    assert leak.impostor_pairs == 6
    assert leak.thresholds == {0.34: 1.0, 0.5: 9.0}
    # Distances to own original: 0.4, 0.8, 20, none.
    assert leak.distances[:3] == pytest.approx([0.4, 0.8, 20.0])
    assert leak.distances[3] == np.inf
    assert leak.match_rates == {0.34: 0.5, 0.5: 0.5}
    # Nearest originals: 0, 0, 3 -> only photo 0 finds itself.
    assert leak.top1_reid == leak.top1_same_photo == 0.25
    assert leak.top1_hits.tolist() == [True, False, False, False]
    assert leak.top1_chance == 0.25 and leak.gallery == 4 and leak.probes == 3


def test_leakage_with_identities_counts_same_person_hits():
    leak = identity_leakage(GALLERY, PROBES, EMBEDDED, metric="euclidean", fars=[0.25],
                            identities=np.array([7, 7, 8, 8]))
    # Impostors: pairs of different persons only: 10, 11, 9, 10.
    assert leak.impostor_pairs == 4 and leak.thresholds == {0.25: 9.0}
    assert leak.match_rates == {0.25: 0.5}
    # Photo 1's nearest is photo 0, photo 2's is photo 3: the same persons.
    assert leak.top1_hits.tolist() == [True, True, True, False]
    assert leak.top1_reid == 0.75 and leak.top1_same_photo == 0.25
    assert leak.top1_chance == 0.5  # each person is half the gallery
    assert leak.to_dict()["top1_by"] == "identity"


def test_blocked_distances_equal_the_full_matrix(monkeypatch):
    rng = np.random.default_rng(5)
    gallery, probes = rng.normal(size=(23, 4)), rng.normal(size=(9, 4))
    ids = rng.integers(0, 5, 23)
    full_impostors = {}
    for metric in ("cosine", "euclidean"):
        full = pairwise_distances(gallery, gallery, metric).astype(np.float32)
        upper = np.triu(np.ones_like(full, dtype=bool), k=1)
        full_impostors[metric] = (full[upper], full[upper & (ids[:, None] != ids[None, :])],
                                  pairwise_distances(probes, gallery, metric).argmin(axis=1))
    monkeypatch.setattr(evaluation.leakage, "_BLOCK_VALUES", 50)  # blocks of two rows
    for metric, (plain, by_id, nearest) in full_impostors.items():
        assert np.array_equal(impostor_distances(gallery, metric), plain)
        assert np.array_equal(impostor_distances(gallery, metric, ids), by_id)
        assert np.array_equal(nearest_in_gallery(probes, gallery, metric), nearest)


def test_person_level_rate_weighs_every_person_the_same():
    # Person A has three faces, all re-identified; person B one face, missed.
    rates = top1_rates(np.array([True, True, True, False]), np.array(["A", "A", "A", "B"]))
    assert rates.face == 0.75 and rates.person == 0.5 and rates.persons == 2
    # Wilson, 3 of 4: the roots p of (0.75 - p)^2 = z^2 p (1 - p) / 4.
    assert rates.face_ci95 == pytest.approx((0.3006418, 0.9544127), abs=1e-7)
    # Persons' rates 1 and 0: mean 0.5, standard error 0.5, clipped to [0, 1].
    assert rates.person_ci95 == (0.0, 1.0)
    assert mean_interval(np.array([0.5, 0.7, 0.9])) == pytest.approx(
        (0.7 - 1.959963984540054 * 0.2 / np.sqrt(3), 0.7 + 1.959963984540054 * 0.2 / np.sqrt(3)))
    # No identities: no person-level rate; one person: no person-level interval.
    assert top1_rates(np.array([True, False])).person is None
    one = top1_rates(np.array([True, False]), np.array([3, 3]))
    assert one.person == 0.5 and one.person_ci95 is None and one.persons == 1
    empty = top1_rates(np.zeros(0, bool), np.zeros(0, int))
    assert empty.face is None and empty.face_ci95 is None and empty.person is None
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        top1_rates(np.array([True, False]), np.array([1, 2, 3]))


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=40))
def test_person_level_rate_is_the_mean_of_the_persons_rates(faces):
    ids = np.array([person for person, _ in faces])
    hits = np.array([hit for _, hit in faces])
    rates = top1_rates(hits, ids)
    by_person = pd.Series(hits).groupby(ids).mean()
    assert rates.persons == len(by_person)
    assert rates.person == pytest.approx(by_person.mean(), abs=1e-12)
    assert rates.face == pytest.approx(hits.mean(), abs=1e-12)
    low, high = rates.face_ci95
    assert 0 <= low <= rates.face <= high <= 1
    if rates.persons >= 2:
        low, high = rates.person_ci95
        assert 0 <= low <= rates.person + 1e-12 and rates.person - 1e-12 <= high <= 1
    if by_person.index.size and (pd.Series(ids).value_counts().nunique() == 1):
        # Every person has as many faces: both rates are the same.
        assert rates.person == pytest.approx(rates.face, abs=1e-12)


def test_an_output_that_keeps_its_photo_s_surroundings_is_caught_only_by_its_own_photo():
    # Each output sits on its own original (its kept hair and background), but its face is
    # nobody's: against the other photos of its person it is a miss, against its own a hit.
    gallery = np.array([[0.0, 0.0], [0.0, 10.0], [1.0, 0.0], [1.0, 10.0]])
    ids = np.array(["A", "A", "B", "B"])
    probes = gallery + 0.1
    leak = identity_leakage(gallery, probes, np.ones(4, bool), metric="euclidean",
                            fars=[0.5], identities=ids)
    assert leak.top1_reid_person == 1.0 and leak.top1_same_photo == 1.0
    # Left out, each output's nearest is the other person's photo beside it.
    assert leak.top1_other_photos_person == 0.0
    assert leak.to_dict()["top1_other_photos_person"] == 0.0
    # Outputs that really show their person are still found among the person's other photos.
    near = identity_leakage(gallery, gallery[[1, 0, 3, 2]] + 0.1, np.ones(4, bool),
                            metric="euclidean", fars=[0.5], identities=ids)
    assert near.top1_other_photos_person == 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 12), st.integers(0, 10_000))
def test_other_photos_top1_matches_a_brute_force_search(n, seed):
    rng = np.random.default_rng(seed)
    gallery = rng.normal(size=(n, 3))
    ids = rng.integers(0, max(1, n // 2), n)
    embedded = rng.random(n) < 0.8
    probes = rng.normal(size=(int(embedded.sum()), 3))
    leak = identity_leakage(gallery, probes, embedded, metric="euclidean", fars=[0.5],
                            identities=ids)
    per_person: dict = {}
    rows = iter(probes)
    for i in range(n):
        probe = next(rows) if embedded[i] else None
        if (ids == ids[i]).sum() < 2:
            continue  # no other photo of the person: left out of the rate
        hit = False
        if probe is not None:
            d = np.linalg.norm(gallery - probe, axis=1)
            d[i] = np.inf
            hit = bool(ids[int(np.argmin(d))] == ids[i])
        per_person.setdefault(ids[i], []).append(hit)
    expected = np.mean([np.mean(v) for v in per_person.values()]) if per_person else None
    if expected is None:
        assert leak.top1_other_photos_person is None
    else:
        assert leak.top1_other_photos_person == pytest.approx(expected)


def test_leakage_reports_the_person_level_rate():
    # Three photos of A near 0..2, one of B far away; B's anonymized face lands next to A's.
    gallery = np.array([[0.0], [1.0], [2.0], [10.0]])
    probes = np.array([[0.1], [1.1], [2.1], [0.5]])
    leak = identity_leakage(gallery, probes, np.ones(4, bool), metric="euclidean", fars=[0.5],
                            identities=np.array(["A", "A", "A", "B"]))
    assert leak.top1_hits.tolist() == [True, True, True, False]
    assert leak.top1_reid == 0.75 and leak.top1_reid_person == 0.5 and leak.persons == 2
    assert leak.top1_chance == pytest.approx(0.625) and leak.top1_chance_person == 0.5
    payload = leak.to_dict()
    assert payload["top1_reid_person"] == 0.5 and payload["persons"] == 2
    assert payload["top1_reid_ci95"] == pytest.approx([0.3006418, 0.9544127], abs=1e-7)
    assert payload["top1_reid_person_ci95"] == [0.0, 1.0]
    plain = identity_leakage(gallery, probes, np.ones(4, bool), metric="euclidean", fars=[0.5])
    assert plain.to_dict()["top1_reid_person"] is None and plain.to_dict()["persons"] is None
    assert plain.to_dict()["top1_reid_ci95"] is not None


# --------------------------------------------------------------------------------------------
# The whole run on synthetic photos


def test_originals_against_themselves_leak_everything(originals, identities):
    parts = fake_parts()
    seen = []
    report = evaluate_anonymization(originals, originals, identities=identities,
                                    on_pair=lambda *args: seen.append(args), **parts)
    n = PERSONS * PHOTOS
    assert report.pairs == n and report.skipped.empty
    # 90 impostor pairs are too few for FAR 1e-3 and 1e-2: the report says so.
    assert report.notes[0].startswith("pixels: 90 impostor pairs are fewer than 1/FAR for FAR "
                                      "1e-3, 1e-2")
    assert report.detection_rate == 1.0 and report.landmarks == "original"
    for leak in report.identity.values():
        assert leak.match_rates == {1e-3: 1.0, 1e-2: 1.0}
        assert leak.top1_reid == leak.top1_same_photo == 1.0
        assert leak.top1_chance == pytest.approx(PHOTOS / n)
        assert leak.impostor_pairs == n * (n - 1) // 2 - PERSONS * PHOTOS * (PHOTOS - 1) // 2
    assert report.quality.psnr.tolist() == [PSNR_CAP] * n
    assert report.quality.ssim.tolist() == [1.0] * n
    assert report.quality.ms_ssim.tolist() == [1.0] * n
    assert report.attributes.preserved_mean == 1.0
    assert report.attributes.per_attribute.tolist() == [1.0] * 4
    # Identical crops are embedded once, not once per photo.
    assert parts["recognizers"][0].embedded == n
    assert seen[-1] == (photo_name(PERSONS - 1, PHOTOS - 1), n, n) and len(seen) == n


def test_top1_counts_the_person_only_with_identities(originals, identities, tmp_path):
    # Each anonymized photo is another photo of the same person.
    def swap(name: str, image: np.ndarray) -> np.ndarray:
        person, photo = (int(x) for x in name[1:-4].split("_"))
        return person_photo(person, (photo + 1) % PHOTOS)

    swapped = copy_folder(originals, tmp_path / "swapped", swap)
    parts = fake_parts()
    by_person = evaluate_anonymization(originals, swapped, identities=identities,
                                       attributes=False, **parts)
    by_photo = evaluate_anonymization(originals, swapped, attributes=False, **parts)
    for name in ("pixels", "centred"):
        assert by_person.identity[name].top1_reid == 1.0
        assert by_person.identity[name].top1_same_photo == 0.0
        assert by_photo.identity[name].top1_reid == 0.0
        assert by_photo.identity[name].top1_chance == pytest.approx(1 / (PERSONS * PHOTOS))
        assert by_person.identity[name].top1_reid_person == 1.0
        assert by_person.identity[name].persons == PERSONS
        assert by_photo.identity[name].top1_reid_person is None
    assert by_person.per_pair["pixels_top1"].all() and not by_photo.per_pair["pixels_top1"].any()
    assert by_person.attributes is None and by_person.to_dict()["attributes"] is None


def test_unusable_photos_are_listed_with_reasons(originals, identities, tmp_path):
    anonymized = copy_folder(originals, tmp_path / "anonymized")
    (originals / "broken.jpg").write_bytes(b"not a jpeg")
    (anonymized / "broken.jpg").write_bytes(b"not a jpeg")
    save_image(np.zeros((60, 50, 3), np.uint8), originals / "black.png")
    save_image(np.zeros((60, 50, 3), np.uint8), anonymized / "black.png")
    save_image(person_photo(9, 0), originals / "lonely.png")
    save_image(person_photo(9, 1), anonymized / "extra.png")
    save_image(person_photo(8, 0), originals / "stranger.png")
    save_image(person_photo(8, 0), anonymized / "stranger.png")
    (anonymized / photo_name(0, 1)).write_bytes(b"truncated")
    ids = pd.concat([identities, pd.Series({"broken.jpg": 1, "black.png": 2, "lonely.png": 3})])
    report = evaluate_anonymization(originals, anonymized, identities=ids, **fake_parts())
    reasons = {(r.folder, r.file): r.reason for r in report.skipped.itertuples()}
    assert reasons[("originals", "broken.jpg")].startswith("not an image")
    assert reasons[("originals", "black.png")] == "no face found in the original"
    assert reasons[("originals", "lonely.png")] == "no anonymized photo with this name"
    assert reasons[("anonymized", "extra.png")] == "no original with this name"
    assert reasons[("originals", "stranger.png")] == \
        "no identity for this file in the identity file"
    assert reasons[("anonymized", photo_name(0, 1))].startswith("not an image")
    assert len(reasons) == 6
    assert report.pairs == PERSONS * PHOTOS - 1
    assert report.identity["pixels"].top1_reid == 1.0
    text = report.to_text()
    assert "Skipped (6 photos)" in text and "originals/black.png: no face found" in text


def test_photos_of_another_size_use_their_own_detection(originals, tmp_path):
    import cv2

    def resize(name: str, image: np.ndarray) -> np.ndarray:
        if name == photo_name(0, 0):
            return np.zeros((120, 100, 3), np.uint8)  # no face any more
        if name.startswith("p1"):
            return cv2.resize(image, (100, 120), interpolation=cv2.INTER_LINEAR)
        return image

    resized = copy_folder(originals, tmp_path / "resized", resize)
    report = evaluate_anonymization(originals, resized, fars=[0.05], **fake_parts())
    n = PERSONS * PHOTOS
    assert report.pairs == n and report.faces_detected == n - 1
    assert report.landmarks == "mixed" and report.pairs_own_detection == PHOTOS + 1
    assert report.quality_skipped == PHOTOS + 1 and len(report.quality) == n - PHOTOS - 1
    leak = report.identity["pixels"]
    assert not leak.top1_hits[0] and leak.distances[0] == np.inf  # no face: not re-identified
    assert leak.top1_hits[1:].all()  # resized faces are found and still match
    assert report.attributes.pairs == n - 1
    assert np.isnan(report.per_pair.loc[0, "psnr"]) and report.per_pair.loc[0, "landmarks"] == \
        "anonymized"
    assert any("differ in size" in note for note in report.notes)


def test_report_is_json_ready_with_the_required_keys(originals, identities, tmp_path):
    blurred = copy_folder(originals, tmp_path / "blurred",
                          lambda name, image: (image // 2 + 60).astype(np.uint8))
    report = evaluate_anonymization(originals, blurred, identities=identities, **fake_parts())
    payload = json.loads(report.to_json(per_pair=True))
    assert payload["schema"] == SCHEMA == "privface.evaluate/1"
    assert_required_keys(payload, ["pixels", "centred"])
    assert payload["landmarks"] == "original"
    assert len(payload["per_pair"]) == payload["pairs"] == PERSONS * PHOTOS
    assert set(payload["attributes"]["per_attribute"]) == set(FakeAttributeModel.attributes)
    assert payload["quality"]["psnr"] < 30 and payload["quality"]["ssim"] < 1
    assert "per_pair" not in report.to_dict()
    text = report.to_text()
    for part in ("usable pairs", "Identity leakage", "top-1 re-identification (same person)",
                 "95% interval (Wilson, faces)", f"top-1 per person (mean of {PERSONS})",
                 "95% interval (normal, persons)", "chance level (1 / persons)",
                 "match rate at FAR 1e-3", "PSNR", "MS-SSIM", "Attributes preserved"):
        assert part in text
    leak = payload["identity"]["pixels"]
    assert leak["persons"] == PERSONS and leak["top1_chance_person"] == 1 / PERSONS
    line = next(x for x in text.splitlines() if x.strip().startswith("top-1 per person"))
    assert line.split()[-2:] == [f"{report.identity[r].top1_reid_person:.3f}"
                                 for r in ("pixels", "centred")]


def test_no_usable_pair_gives_an_empty_report(originals, identities, tmp_path):
    black = copy_folder(originals, tmp_path / "black", lambda name, image: image * 0)
    report = evaluate_anonymization(black, black, identities=identities, **fake_parts())
    assert report.pairs == 0 and len(report.skipped) == PERSONS * PHOTOS
    payload = json.loads(report.to_json(per_pair=True))
    assert payload["detection_rate"] is None and payload["per_pair"] == []
    assert payload["identity"]["pixels"]["top1_reid"] is None
    assert payload["quality"]["psnr"] is None and payload["attributes"]["preserved_mean"] is None
    assert "0 usable pairs" in report.to_text()


def test_bad_arguments_raise_clear_errors(originals, tmp_path):
    from privface.base.errors import InputError

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no photos"):
        evaluate_anonymization(originals, empty, **fake_parts())
    other = copy_folder(originals, tmp_path / "other",
                        lambda name, image: None if name != photo_name(0, 0) else image)
    (other / photo_name(0, 0)).rename(other / "renamed.png")
    with pytest.raises(InputError, match="no photo of .* has a namesake"):
        evaluate_anonymization(originals, other, **fake_parts())
    with pytest.raises(InputError, match="expected a folder"):
        evaluate_anonymization(tmp_path / "missing", originals, **fake_parts())
    with pytest.raises(ValueError, match="FAR"):
        evaluate_anonymization(originals, originals, fars=[0.0], **fake_parts())


# --------------------------------------------------------------------------------------------
# The command


@pytest.fixture
def cli(monkeypatch):
    """``evaluate_command`` in an app of its own, running on the fake parts."""
    real = evaluation.evaluate_anonymization

    def with_fakes(originals, anonymized, **kwargs):
        kwargs.pop("recognizers")
        seen_workers.append(kwargs.pop("workers"))
        return real(originals, anonymized, **kwargs, **fake_parts())

    seen_workers: list[int] = []
    monkeypatch.setattr(evaluation, "evaluate_anonymization", with_fakes)
    monkeypatch.setattr("privface.cli.evaluate._attribute_model", FakeAttributeModel)
    app = typer.Typer()
    app.command()(evaluate_command)
    runner = CliRunner()
    invoke = lambda *args: runner.invoke(app, [str(a) for a in args])  # noqa: E731
    invoke.workers = seen_workers
    return invoke


def test_command_writes_json_with_the_required_keys(cli, originals, tmp_path):
    ids = tmp_path / "identity.txt"
    ids.write_text("".join(f"{photo_name(p, k)} {p}\n" for p in range(PERSONS)
                           for k in range(PHOTOS)))
    out = tmp_path / "report.json"
    result = cli(originals, originals, "--identities", ids, "--format", "json", "--output", out)
    assert result.exit_code == 0, result.output
    assert f"report written to {out}" in result.output
    payload = json.loads(out.read_text())
    assert_required_keys(payload, ["pixels", "centred"])
    assert payload["identity"]["pixels"]["top1_by"] == "identity"
    assert payload["attributes"]["preserved_mean"] == 1.0
    assert not list(tmp_path.glob(".report.json.*"))  # the temporary file is gone
    text = cli(originals, originals, "--no-attributes", "--quiet")
    assert text.exit_code == 0, text.output
    assert text.output.startswith("privface evaluate: 15 usable pairs")
    assert "Attributes preserved" not in text.output


def test_command_runs_one_worker_per_core_and_prints_the_throughput(cli, originals,
                                                                   monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    result = cli(originals, originals, "--no-attributes")
    assert result.exit_code == 0, result.output
    assert cli.workers == [3]
    # The summary line (standard error) says how many pairs, how long and how fast.
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith("privface evaluate: 15 pairs in ") and " pairs/s, 3 workers)" in \
        summary
    assert float(summary.split("(")[1].split()[0]) > 0
    result = cli(originals, originals, "--no-attributes", "--workers", "1", "--quiet")
    assert result.exit_code == 0 and cli.workers[-1] == 1
    assert "pairs/s" not in result.output
    result = cli(originals, originals, "--workers", "0")
    assert result.exit_code == 2


def test_command_exits_2_on_bad_input(cli, originals, tmp_path):
    missing = tmp_path / "nowhere"
    result = cli(originals, missing)
    assert result.exit_code == 2 and str(missing) in result.output
    assert "anonymized folder not found" in result.output
    a_file = originals / photo_name(0, 0)
    result = cli(a_file, originals)
    assert result.exit_code == 2 and str(a_file) in result.output
    for args, message in [(["--format", "xml"], "--format must be text or json"),
                          (["--recognizer", "arcface"], "unknown recognizer 'arcface'"),
                          (["--far", "0"], "--far must lie between 0 and 1"),
                          (["--identities", tmp_path / "ids.txt"], "ids.txt")]:
        result = cli(originals, originals, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
    black = copy_folder(originals, tmp_path / "black", lambda name, image: image * 0)
    result = cli(black, black)
    assert result.exit_code == 2 and "no usable pair of photos" in result.output


# --------------------------------------------------------------------------------------------
# Real data: 8 CelebA persons, 2 photos each (dlib embeds about 5 faces a second here)


@pytest.fixture(scope="module")
def celeba_subset(celeba_dir, tmp_path_factory) -> dict:
    import cv2

    from privface.privmetrics.readers import read_celeba_identities

    source = celeba_dir / "img_align_celeba_200ids"
    identity_file = celeba_dir / "identity_CelebA.txt"
    ids = read_celeba_identities(identity_file)
    ids = ids[ids.index.isin([p.name for p in source.iterdir()])]
    chosen = [name for person in sorted(ids.unique())[:8]
              for name in sorted(ids.index[ids == person])[:2]]
    root = tmp_path_factory.mktemp("celeba_subset")
    originals, blurred = root / "originals", root / "blurred"
    originals.mkdir()
    blurred.mkdir()
    for name in chosen:
        (originals / name).symlink_to(source / name)
        image = cv2.GaussianBlur(load_image(source / name), (0, 0), 8)
        save_image(image, blurred / name.replace(".jpg", ".png"))
    return {"originals": originals, "blurred": blurred, "identity_file": identity_file,
            "identities": ids[chosen], "n": len(chosen)}


@pytest.fixture(scope="module")
def attribute_model():
    from privface.attributes.model import load_default_model

    return load_default_model()  # shipped with the package: a missing model is a failure


@pytest.mark.realdata
@pytest.mark.slow
def test_realdata_originals_against_themselves(celeba_subset, attribute_model):
    report = evaluate_anonymization(celeba_subset["originals"], celeba_subset["originals"],
                                    identities=celeba_subset["identities"],
                                    attribute_model=attribute_model)
    assert report.pairs == celeba_subset["n"], report.skipped
    assert report.detection_rate == 1.0 and report.landmarks == "original"
    for name in ("sface", "dlib"):
        leak = report.identity[name]
        assert leak.match_rates == {1e-3: 1.0, 1e-2: 1.0}, name
        assert leak.top1_reid == 1.0
    quality = report.to_dict()["quality"]
    assert quality["psnr"] == PSNR_CAP and quality["ssim"] == 1.0 and quality["ms_ssim"] == 1.0
    assert quality["ms_ssim_scales"] == {"5": celeba_subset["n"]}
    assert report.attributes.preserved_mean == 1.0
    assert len(report.attributes.per_attribute) == 40


@pytest.mark.realdata
@pytest.mark.slow
def test_realdata_heavy_blur_leaks_less_through_the_command(celeba_subset, tmp_path):
    app = typer.Typer()
    app.command()(evaluate_command)
    out = tmp_path / "blur.json"
    result = CliRunner().invoke(app, [
        str(celeba_subset["originals"]), str(celeba_subset["blurred"]), "--identities",
        str(celeba_subset["identity_file"]), "--format", "json", "--output", str(out),
        "--no-attributes", "--quiet"])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    n = celeba_subset["n"]
    assert payload["pairs"] == n and payload["landmarks"] == "original"  # PNG paired with JPEG
    identity = payload["identity"]
    for name in ("sface", "dlib"):
        leak = identity[name]
        # Identities given: impostors are pairs of different persons, top-1 counts the person.
        assert leak["top1_by"] == "identity" and leak["impostor_pairs"] == n * (n - 1) // 2 - n // 2
        assert leak["top1_reid"] >= leak["top1_same_photo"]
        assert leak["top1_chance"] == pytest.approx(2 / n)
    assert any(identity[r]["top1_reid"] <= 0.6 and identity[r]["match_rate_far_1e-2"] <= 0.5
               for r in ("sface", "dlib")), identity
    quality = payload["quality"]
    assert quality["psnr"] < 30 and quality["ssim"] < 0.8 and quality["ms_ssim"] < 0.9
    assert payload["attributes"] is None


@pytest.mark.realdata
@pytest.mark.slow
def test_realdata_two_workers_give_the_same_report(celeba_dir, attribute_model, tmp_path):
    """Two spawned workers and one process give the same numbers, to the last bit."""
    import cv2

    from privface.privmetrics.readers import read_celeba_identities

    source = celeba_dir / "img_align_celeba_200ids"
    ids = read_celeba_identities(celeba_dir / "identity_CelebA.txt")
    ids = ids[ids.index.isin([p.name for p in source.iterdir()])]
    chosen = [name for person in sorted(ids.unique())[:2]
              for name in sorted(ids.index[ids == person])[:4]]
    originals, blurred = tmp_path / "originals", tmp_path / "blurred"
    originals.mkdir()
    blurred.mkdir()
    for name in chosen:
        (originals / name).symlink_to(source / name)
        image = cv2.GaussianBlur(load_image(source / name), (0, 0), 3)
        save_image(image, blurred / name.replace(".jpg", ".png"))
    (blurred / "stray.png").write_bytes(b"no original")  # a skipped row keeps its place
    reports, progress = {}, {}
    for workers in (1, 2):
        seen: list[tuple] = []
        reports[workers] = evaluate_anonymization(
            originals, blurred, identities=ids[chosen], attribute_model=attribute_model,
            workers=workers, on_pair=lambda *args, seen=seen: seen.append(args))
        progress[workers] = seen
    one, two = (reports[w].to_dict(per_pair=True) for w in (1, 2))
    assert one["pairs"] == len(chosen) and one["identity"]["sface"]["persons"] == 2
    assert_same(one, two)
    # Progress: every pair once, counting up to the total, whichever chunk finished first.
    for seen in progress.values():
        assert [done for _, done, _ in seen] == list(range(1, len(chosen) + 1))
        assert sorted(name for name, _, _ in seen) == sorted(chosen)
        assert {total for _, _, total in seen} == {len(chosen)}


def assert_same(a, b, where: str = "report") -> None:
    """Equal JSON-ready values; floats within 1e-9."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-9, rel=0), where
    else:
        assert a == b, where


class _OneDimensional(FaceRecognizer):
    """A recognizer whose embedding of a photo is its mean pixel value (euclidean metric)."""

    name = "one-dimensional"
    metric = "euclidean"

    def chip(self, image, face, landmarks68):
        return image

    def embed_chips(self, chips):
        return np.array([[float(np.mean(chip))] for chip in chips])


def test_a_distance_exactly_at_the_threshold_is_a_match_in_both_leakage_paths():
    from privface.attributes.recognizers import calibrate_threshold, matches
    from privface.evaluation.leakage import LeakageCheck

    # Impostor distances 1, 2, 3: at FAR 1/2 one pair may be accepted, so the threshold is 1.0
    # and a pair at exactly 1.0 is accepted (the calibration counts it as a false accept).
    gallery = np.array([[0.0], [1.0], [3.0]])
    threshold = calibrate_threshold(impostor_distances(gallery, "euclidean"), 0.5)
    assert threshold == 1.0 and matches([1.0], threshold).tolist() == [True]
    leak = identity_leakage(gallery, np.array([[1.0]]), np.array([True, False, False]),
                            metric="euclidean", fars=[0.5])
    assert leak.thresholds[0.5] == 1.0 and leak.distances[0] == 1.0
    assert leak.match_rates[0.5] == pytest.approx(1 / 3)  # the probe at the threshold matches
    # The photo run's per-photo check, with the same distance and threshold.
    check = LeakageCheck.__new__(LeakageCheck)
    check.recognizer, check.threshold = _OneDimensional(), threshold
    original, output = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    record = check.measure(original, output, [(0, 0, 4, 4)], np.zeros((1, 68, 2)),
                           points5=np.zeros((1, 5, 2)))
    assert record[0]["distance"] == 1.0 and record[0]["matches_source"] is True
