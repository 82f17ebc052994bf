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
