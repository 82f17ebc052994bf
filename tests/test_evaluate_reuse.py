"""``privface evaluate`` on a ``privface anonymize`` output folder reuses the run's analysis of
the originals (detection, landmarks, SFace embeddings, attribute readings), and only where the
originals are the photos the run read: the report is the one computed from scratch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from privface.attributes.analysis import FaceAnalyzer
from privface.attributes.images import load_image, save_image
from privface.attributes.model import load_default_model
from privface.cli.evaluate import evaluate_command
from privface.evaluation import evaluate_anonymization
from privface.evaluation.reuse import bytes_sha256
from privface.pipeline import anonymize_photos
from privface.privmetrics.readers import read_celeba_identities

PERSONS, PHOTOS = 4, 2


@pytest.fixture(scope="module")
def run(celeba_dir: Path, tmp_path_factory) -> dict:
    """8 CelebA photos (4 persons) blurred by an anonymize run that tells persons by SFace."""
    source = celeba_dir / "img_align_celeba_200ids"
    ids = read_celeba_identities(celeba_dir / "identity_CelebA.txt")
    ids = ids[ids.index.isin([p.name for p in source.iterdir()])]
    chosen = [name for person in sorted(ids.unique())[:PERSONS]
              for name in sorted(ids.index[ids == person])[:PHOTOS]]
    root = tmp_path_factory.mktemp("reuse")
    photos, out = root / "photos", root / "out"
    photos.mkdir()
    for name in chosen:
        shutil.copy(source / name, photos / name)
    anonymize_photos(photos, out, generator="blur", k=2, seed=3, workers=1, verify=False,
                     allow_collapse=True)
    assert (out / ".privface-run" / "plan.json").exists()
    return {"photos": photos, "out": out, "identities": ids[chosen], "names": chosen}


def count_analyses(monkeypatch) -> list:
    """The shapes of the photos any FaceAnalyzer analyses from scratch, from now on."""
    analysed: list = []
    faces = FaceAnalyzer.faces

    def counting(self, image, *, max_faces=None):
        analysed.append(image.shape[:2])
        return faces(self, image, max_faces=max_faces)

    monkeypatch.setattr(FaceAnalyzer, "faces", counting)
    return analysed


def without_notes(report) -> dict:
    payload = report.to_dict(per_pair=True)
    payload.pop("notes")
    return payload


def evaluate(run: dict, originals: Path, **kwargs):
    return evaluate_anonymization(originals, run["out"], identities=run["identities"],
                                  attribute_model=load_default_model(), **kwargs)


@pytest.mark.realdata
@pytest.mark.slow
def test_the_report_with_the_run_is_the_report_without(run, monkeypatch):
    analysed = count_analyses(monkeypatch)
    reused = evaluate(run, run["photos"])
    assert analysed == []  # not one original analysed again
    scratch = evaluate(run, run["photos"], reuse_run=False)
    assert len(analysed) == len(run["names"])
    assert reused.pairs == scratch.pairs == len(run["names"])
    # Same crops through the same networks: equal to the last bit, not within a tolerance.
    assert without_notes(reused) == without_notes(scratch)
    assert any("8 originals' detection, 68 landmarks, SFace embeddings and attribute readings "
               "were taken from the anonymize run" in note for note in reused.notes)
    assert not any("anonymize run" in note for note in scratch.notes)


@pytest.mark.realdata
@pytest.mark.slow
def test_originals_that_changed_since_the_run_are_analysed_again(run, tmp_path, monkeypatch):
    originals = tmp_path / "originals"
    shutil.copytree(run["photos"], originals)
    first, second = run["names"][:2]
    # Same names, other bytes: a new encoding of the same photo, and another photo in its place.
    save_image(load_image(originals / first), originals / first, quality=90)
    shutil.copy(run["photos"] / run["names"][-1], originals / second)
    analysed = count_analyses(monkeypatch)
    reused = evaluate(run, originals, recognizers=["sface"])
    assert len(analysed) == 2
    scratch = evaluate(run, originals, recognizers=["sface"], reuse_run=False)
    assert without_notes(reused) == without_notes(scratch)
    assert any(note.startswith(f"2 originals differ from the photos the anonymize run read "
                               f"(SHA-256) and were analysed again: {first}, {second}")
               for note in reused.notes), reused.notes
    assert any(note.startswith("6 originals' detection") for note in reused.notes)


@pytest.mark.realdata
@pytest.mark.slow
def test_a_run_with_other_models_is_not_reused_and_the_command_says_so(run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run["out"], out)
    plan = out / ".privface-run" / "plan.json"
    info = json.loads(plan.read_text())
    info["identity"]["models"]["privface/celeba_attributes_v1.npz"] = "0" * 64
    plan.write_text(json.dumps(info))
    app = typer.Typer()
    app.command()(evaluate_command)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, [str(run["photos"]), str(out), "--recognizer", "sface",
                                      "--format", "json", "--output", str(report), "--quiet",
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    notes = json.loads(report.read_text())["notes"]
    assert any("was not reused (models differ from the installed ones: "
               "privface/celeba_attributes_v1.npz)" in note for note in notes), notes


@pytest.mark.realdata
def test_the_run_analysis_holds_the_largest_face_of_each_original(run):
    from privface.evaluation.reuse import read_run_analysis

    analysis = read_run_analysis(run["out"], run["names"], [], load_default_model())
    assert sorted(analysis.faces) == sorted(run["names"]) and analysis.attributes
    analyzer = FaceAnalyzer()
    name = run["names"][0]
    face = analyzer.faces(load_image(run["photos"] / name), max_faces=1)[0]
    known = analysis.faces[name]
    assert known.detection.box == face.detection.box
    assert known.detection.score == face.detection.score
    np.testing.assert_array_equal(known.landmarks68, face.landmarks68)
    np.testing.assert_array_equal(known.detection.as_yunet_row(), face.detection.as_yunet_row())


def test_a_folder_without_a_run_has_nothing_to_reuse(tmp_path):
    from privface.evaluation.reuse import read_run_analysis

    assert read_run_analysis(tmp_path, ["a.jpg"], [], None) is None


@pytest.mark.parametrize("plan", [
    {"schema": "privface.photo-plan/0"},
    {"schema": "privface.photo-plan/1"},
    {"schema": "privface.photo-plan/1", "identity": {"photos": {}, "models": {}}},
])
def test_a_run_folder_that_cannot_be_used_is_not_reused_and_says_why(tmp_path, plan):
    from privface.evaluation.reuse import read_run_analysis

    (tmp_path / ".privface-run").mkdir()
    (tmp_path / ".privface-run" / "plan.json").write_text(json.dumps(plan))
    analysis = read_run_analysis(tmp_path, ["a.jpg"], [], None)
    assert analysis.faces == {} and "was not reused (" in analysis.note


# --------------------------------------------------------------------------------------------
# The written faces: the run's checks (leakage, attributes) serve evaluate too


@pytest.fixture(scope="module")
def checked(run: dict, tmp_path_factory) -> dict:
    """The same 8 photos, blurred by a run with its checks on (leakage, attribute readings)."""
    out = tmp_path_factory.mktemp("checked") / "out"
    anonymize_photos(run["photos"], out, generator="blur", k=2, seed=3, workers=1, verify=True,
                     allow_collapse=True)
    return {**run, "out": out}


def count_sface_passes(monkeypatch) -> list:
    """One entry per SFace forward pass from now on: the recognizer's, or the attribute
    model's (each of its views is a pass)."""
    from privface.attributes.features import SFaceFeatures
    from privface.attributes.recognizers import SFaceRecognizer

    passes: list = []
    embed, forward = SFaceRecognizer.embed_chips, SFaceFeatures._forward

    def counting_embed(self, chips):
        passes.extend(["recognizer"] * len(chips))
        return embed(self, chips)

    def counting_forward(self, images):
        passes.extend(["attributes"] * len(images))
        return forward(self, images)

    monkeypatch.setattr(SFaceRecognizer, "embed_chips", counting_embed)
    monkeypatch.setattr(SFaceFeatures, "_forward", counting_forward)
    return passes


@pytest.mark.realdata
@pytest.mark.slow
def test_the_run_keeps_its_checks_of_each_written_photo_keyed_by_its_bytes(checked):
    from privface.pipeline.state import load_written

    records = load_written(checked["out"])
    assert sorted(records) == sorted(checked["names"])
    for name, (sha256, sface, labels) in records.items():
        certificate = json.loads((checked["out"] / "certificates" / f"{name}.json").read_text())
        assert sha256 == certificate["sha256"]
        assert sha256 == bytes_sha256((checked["out"] / name).read_bytes())
        assert sface.shape == (128,) and np.isfinite(sface).all()
        assert labels.shape == (len(load_default_model().attributes),)


@pytest.mark.realdata
@pytest.mark.slow
def test_evaluate_takes_the_written_faces_from_the_run_and_reports_the_same(checked,
                                                                            monkeypatch):
    passes = count_sface_passes(monkeypatch)
    reused = evaluate(checked, checked["photos"], recognizers=["sface"])
    with_run = len(passes)
    scratch = evaluate(checked, checked["photos"], recognizers=["sface"], reuse_run=False)
    pairs = len(checked["names"])
    # From scratch: per pair, the original's and the anonymized face's embedding and the
    # attribute model's two views of each. Before the written faces' checks were kept, the run
    # still saved the originals' three: 3 passes per pair were left; now none.
    assert len(passes) - with_run == 6 * pairs
    assert with_run == 0, passes[:with_run]
    # The same crops through the same networks, from the same decoded pixels: equal to the bit.
    assert without_notes(reused) == without_notes(scratch)
    assert any(note.startswith(f"{pairs} anonymized faces' SFace embeddings and attribute "
                               "readings were taken from the anonymize run's checks")
               for note in reused.notes), reused.notes


@pytest.mark.realdata
@pytest.mark.slow
def test_a_written_photo_changed_after_the_run_is_analysed_again(checked, tmp_path,
                                                                  monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(checked["out"], out)
    first, second = checked["names"][:2]
    # Same name, other bytes: the photo saved again, and another written photo in its place.
    save_image(load_image(out / first), out / first, quality=90)
    shutil.copy(checked["out"] / checked["names"][-1], out / second)
    copy = {**checked, "out": out}
    passes = count_sface_passes(monkeypatch)
    reused = evaluate(copy, checked["photos"], recognizers=["sface"])
    assert len(passes) == 3 * 2  # the two changed photos' embedding and two attribute views
    scratch = evaluate(copy, checked["photos"], recognizers=["sface"], reuse_run=False)
    assert without_notes(reused) == without_notes(scratch)
    assert any(note.startswith(f"2 anonymized photos differ from the files the anonymize run "
                               f"wrote (SHA-256) and were analysed again: {first}, {second}")
               for note in reused.notes), reused.notes


@pytest.mark.realdata
@pytest.mark.slow
def test_a_photo_written_again_by_a_resumed_run_gets_a_fresh_record(checked, tmp_path):
    from privface.pipeline.state import load_written, save_written

    out = tmp_path / "out"
    shutil.copytree(checked["out"], out)
    name = checked["names"][0]
    before = load_written(out)[name]
    # The photo is written again by the resumed run: the file removed, and its record forged.
    (out / name).unlink()
    (out / "certificates" / f"{name}.json").unlink()
    forged = {n: (("0" * 64, *r[1:]) if n == name else r) for n, r in load_written(out).items()}
    save_written(out, forged)
    anonymize_photos(checked["photos"], out, generator="blur", k=2, seed=3, workers=1,
                     verify=True, allow_collapse=True)
    after = load_written(out)
    assert sorted(after) == sorted(checked["names"])
    assert after[name][0] == bytes_sha256((out / name).read_bytes()) == before[0]
    np.testing.assert_array_equal(after[name][1], before[1])
