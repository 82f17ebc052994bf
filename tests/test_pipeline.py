"""The photo pipeline: `anonymize_photos` and `privface anonymize PHOTOS_DIR` on real faces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from privface.attributes.alignment import align_face
from privface.cli.main import app
from privface.pipeline import anonymize_photos
from privface.pipeline.state import STATE_DIR
from privface.privmetrics import audit
from privface.privmetrics.readers import read_celeba_identities

runner = CliRunner()
PERSONS, PHOTOS = 5, 4  # 20 photos: enough for several groups of 2 persons, quick to analyse
# The five persons include one man and one older person: no class of k-Same's groups can keep
# them, and a plan that changes them (erasing the group) is refused unless allowed. These tests
# are about the run itself; tests/test_photo_model_v2.py tests the refusal.
KSAME = {"allow_collapse": True}


@pytest.fixture(scope="module")
def identities(celeba_dir: Path) -> pd.Series:
    return read_celeba_identities(celeba_dir / "identity_CelebA.txt")


@pytest.fixture(scope="module")
def photos(celeba_dir: Path, identities: pd.Series, tmp_path_factory) -> Path:
    """PERSONS people x PHOTOS photos of the 200-identity set."""
    source = celeba_dir / "img_align_celeba_200ids"
    names = sorted(p.name for p in source.iterdir())
    ids = identities.reindex(names)
    folder = tmp_path_factory.mktemp("photos")
    for person in sorted(ids.unique())[:PERSONS]:
        for name in sorted(ids.index[ids == person])[:PHOTOS]:
            shutil.copy(source / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def ksame_run(photos: Path, identities: pd.Series, tmp_path_factory):
    out = tmp_path_factory.mktemp("ksame") / "out"
    # PPAS breaks ties at random; the seed lets the interrupted run below draw the same plan.
    report = anonymize_photos(photos, out, k=2, identities=identities.loc[
        [p.name for p in photos.iterdir()]], workers=1, seed=11, **KSAME)
    return out, report


@pytest.mark.realdata
def test_ksame_writes_every_photo_with_a_certificate_and_groups_of_k_people(photos, ksame_run,
                                                                           identities):
    out, report = ksame_run
    names = sorted(report.written)
    # A photo is held back only when no average of k persons shows its face's target class,
    # or when the written face would not show it.
    assert len(names) >= 6
    assert sorted(names + report.skipped["file"].tolist()) == sorted(
        p.name for p in photos.iterdir())
    assert report.skipped["reason"].str.match("k-Same: no group of k persons|withheld:").all()
    summary = json.loads((out / "run.json").read_text())
    assert summary["schema"] == "privface.anonymize-photos/1"
    assert summary["persons"]["case"] == "identities"
    assert summary["ksame"]["k_min"] >= 2 and summary["reached"]["k"] >= 2
    groups: dict[int, list[str]] = {}  # the photos that carry each average
    members: dict[int, list[str]] = {}  # ... and those whose own face went into it
    for name in names:
        before = np.asarray(Image.open(photos / name), np.float32)
        after = np.asarray(Image.open(out / name), np.float32)
        assert after.shape == before.shape
        # The face really changed (its centre; the rest of the photo is its own).
        assert np.abs(after - before)[90:150, 60:120].mean() > 5
        certificate = json.loads((out / "certificates" / f"{name}.json").read_text())
        assert certificate["schema"] == "privface.photo-certificate/1"
        face = certificate["faces"][0]
        assert face["requirements"] == {"k": 2} and face["reached"]["k"] >= 2
        assert face["ksame"]["k"] >= 2 and face["ksame"]["realised"]
        groups.setdefault(face["ksame"]["group"], []).append(name)
        if face["ksame"]["own_group"]:
            members.setdefault(face["ksame"]["group"], []).append(name)
    # What an attacker reads off the released faces: predicted, recorded, and audited with the
    # persons. Rebuild that audit from the certificates alone: it must be the same.
    outputs = summary["outputs"]
    controlled = summary["ppas"]["controlled"]
    observed = []
    for name in names:
        face = json.loads((out / "certificates" / f"{name}.json").read_text())["faces"][0]
        assert set(face["output_attributes"]) == set(controlled)
        observed.append({**face["output_attributes"], "person": identities[name],
                         "hit": face["output_attributes"] == face["target"]})
    observed = pd.DataFrame(observed).assign(_all=0)
    again = audit(observed, qi=controlled or ["_all"], sensitive="person", k=2)
    assert outputs["faces"] == len(names) and outputs["qi"] == controlled
    # Photo model v2: k counts the persons of a class (distinct l with the person as the SA);
    # the first version's t over persons is reported beside it.
    assert outputs["reached"]["k"] == again.metrics["l_diversity"]
    assert outputs["identity_t"] == pytest.approx(again.metrics["t_closeness"], abs=1e-6)
    assert outputs["requirements_met"] == (again.metrics["l_diversity"] >= 2)
    assert outputs["realised"] == pytest.approx(observed["hit"].mean())
    # Faces the model reads another class off are released (not withheld), so the verdict
    # follows what is read; most faces show their target (the model reads hair colour less
    # surely off the face region's outputs: 13 of 20 here).
    assert outputs["realised"] >= 0.6
    assert summary["verdict"]["met"] == (outputs["requirements_met"]
                                         and summary["release"]["balanced"])
    # Per-photo leakage: SFace's distance between each original and its output, and the
    # run's match rate, recomputed from the certificates.
    records = [json.loads((out / "certificates" / f"{n}.json").read_text())["faces"][0]["leakage"]
               for n in names]
    assert all(0.0 <= r["distance"] <= 2.0 and r["recognizer"] == "sface" for r in records)
    assert summary["leakage"]["faces"] == len(names)
    assert summary["leakage"]["match_rate"] == pytest.approx(
        np.mean([r["distance"] < r["threshold"] for r in records]), abs=1e-4)
    assert np.mean([r["distance"] for r in records]) > 0.3  # an average of k people, not the source

    run = out / STATE_DIR
    analysed = pd.read_csv(run / "faces.csv")
    landmarks = np.load(run / "landmarks.npz")["landmarks"]
    largest = {f: i for i, (f, n) in enumerate(zip(analysed["file"], analysed["face"])) if n == 0}

    def centre(name):
        # The face proper, aligned at the original's landmarks (so a turned head or another
        # framing does not count), in standardised grey: each photo's copy of the average has
        # that photo's colour and light.
        photo = np.asarray(Image.open(out / name).convert("RGB"))
        crop = align_face(photo, landmarks[largest[name]]).image
        grey = np.asarray(Image.fromarray(crop).convert("L"), np.float32)[100:170, 55:125]
        return (grey - grey.mean()) / (grey.std() + 1e-6)

    for group in members.values():  # k different people per group, one photo each
        assert identities.loc[group].is_unique
    within, across = [], []
    for carriers in groups.values():
        within += [np.abs(centre(m) - centre(carriers[0])).mean() for m in carriers[1:]]
        across += [np.abs(centre(m) - centre(o[0])).mean()
                   for o in groups.values() if o is not carriers for m in carriers]
    # The photos of a group carry the same face: their aligned centres differ far less than
    # those of different groups (the median pair: a turned head can make one pair differ more).
    assert np.median(within) < 0.5 * np.mean(across)


@pytest.mark.realdata
def test_a_finished_run_resumes_without_redoing_anything(photos, ksame_run, identities,
                                                         monkeypatch):
    out, first = ksame_run
    import privface.attributes as attributes

    def no_analysis(*args, **kwargs):
        raise AssertionError("a resumed run must not analyse the photos again")

    monkeypatch.setattr(attributes, "analyze_photos", no_analysis)
    again = anonymize_photos(photos, out, k=2, identities=identities.loc[
        [p.name for p in photos.iterdir()]], seed=11, **KSAME)
    assert again.written == [] and sorted(again.already_done) == sorted(first.written)
    summary = json.loads((out / "run.json").read_text())
    assert summary["resumed"] is True
    assert summary["outputs"] == first.summary.outputs  # read back from the certificates


@pytest.mark.realdata
def test_an_interrupted_run_finishes_the_rest_with_the_same_plan(photos, ksame_run,
                                                                 identities, tmp_path):
    out, first = ksame_run
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    target = tmp_path / "out"
    seen: list[str] = []

    def crash_after_five(name: str) -> None:
        seen.append(name)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        anonymize_photos(photos, target, k=2, identities=ids, seed=11,
                         on_write=crash_after_five, **KSAME)
    assert len(list((target / "certificates").iterdir())) == 5
    assert not list(target.glob(".*.tmp*"))  # nothing half-written
    rest = anonymize_photos(photos, target, k=2, identities=ids, seed=11, **KSAME)
    assert len(rest.written) == len(first.written) - 5 and len(rest.already_done) == 5
    for name in first.written:  # same plan and deterministic groups: the same photos
        np.testing.assert_array_equal(np.asarray(Image.open(target / name)),
                                      np.asarray(Image.open(out / name)))


@pytest.mark.realdata
def test_photos_finished_in_worker_processes_are_the_same(photos, ksame_run, identities,
                                                          tmp_path):
    out, first = ksame_run
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    # Two workers paste, check, measure and write the photos (20 photos: 3 tasks of 8).
    again = anonymize_photos(photos, tmp_path / "out", k=2, identities=ids, seed=11, workers=2,
                             **KSAME)
    assert again.written == first.written
    assert again.skipped.to_dict("records") == first.skipped.to_dict("records")
    for name in first.written:
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / name)),
                                      np.asarray(Image.open(out / name)))
        assert (tmp_path / "out" / "certificates" / f"{name}.json").read_text() == \
            (out / "certificates" / f"{name}.json").read_text()
    for key in ("outputs", "leakage", "groups", "reached"):
        assert getattr(again.summary, key) == getattr(first.summary, key)


@pytest.mark.realdata
def test_a_perturbation_is_added_after_the_check_and_recorded(photos, ksame_run, identities,
                                                              tmp_path):
    from privface.adversarial.storage import load_perturbation, save_perturbation

    out, first = ksame_run
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    # A universal perturbation that brightens every face by 0.02 (5.1 grey levels: 5 once
    # rounded towards zero), in the attribute CNN's frame.
    path = save_perturbation(tmp_path / "uap.npz", np.full((3, 109, 89), 0.02, np.float32),
                             xi=0.02, p="inf", frame={"geometry": "celeba"})
    from privface.adversarial.photos import PhotoPerturber

    report = anonymize_photos(photos, tmp_path / "out", k=2, identities=ids, seed=11,
                              perturb=PhotoPerturber("uap", uap=path), **KSAME)
    # The check judges the generated faces before the perturbation: the same photos go out.
    assert report.written == first.written
    changed = []
    for name in report.written:
        certificate = json.loads((tmp_path / "out" / "certificates" / f"{name}.json").read_text())
        unperturbed = json.loads((out / "certificates" / f"{name}.json").read_text())
        record = certificate["perturbation"]
        assert record["method"] == "uap" and record["xi"] == 0.02 and record["p"] == "inf"
        assert record["sha256"] == load_perturbation(path).sha256()
        assert record["max_change_levels"] == 5
        face, plain = certificate["faces"][0], unperturbed["faces"][0]
        assert face["output_attributes_before_perturbation"] == plain["output_attributes"]
        changed.append(face["output_attributes"] != plain["output_attributes"])
        # What is released is the unperturbed output, 5 levels brighter on the face (JPEG
        # rounding aside).
        after = np.asarray(Image.open(tmp_path / "out" / name), np.float32)
        before = np.asarray(Image.open(out / name), np.float32)
        assert 3.5 < (after - before)[100:140, 70:110].mean() < 6.5
    summary = report.summary.perturbation
    assert summary["sha256"] == record["sha256"] and summary["max_change_levels"] == 5
    assert summary["photos"] == len(report.written)
    assert summary["faces_read_differently"] == pytest.approx(np.mean(changed), abs=1e-4)
    # The certificates' claim is checked on the faces as generated: the same verdict as
    # without the perturbation. What the perturbation makes the model read is reported apart.
    assert report.summary.outputs == {**first.summary.outputs, "read": "before the perturbation"}
    released = summary["outputs_released"]
    hits = [json.loads((tmp_path / "out" / "certificates" / f"{n}.json").read_text())["faces"][0]
            for n in report.written]
    assert released["faces"] == len(report.written)
    assert released["realised"] == pytest.approx(
        np.mean([f["output_attributes"] == f["target"] for f in hits]))


@pytest.mark.realdata
def test_leakage_reuses_the_analysis_embeddings_of_the_originals(photos):
    from privface.attributes import analyze_photos
    from privface.attributes.analysis import FaceAnalyzer
    from privface.attributes.images import load_image
    from privface.attributes.recognizers import SFaceRecognizer
    from privface.evaluation.leakage import LeakageCheck

    paths = sorted(photos.iterdir())[:4]
    analysis = analyze_photos(paths, analyzer=FaceAnalyzer(recognizer=SFaceRecognizer()))
    assert analysis.landmarks5.shape == (len(analysis.faces), 5, 2)
    check = LeakageCheck()
    for i, row in analysis.faces.iterrows():
        original = load_image(photos / row["file"])
        someone_else = load_image(paths[(i + 1) % len(paths)])  # same size: 178 x 218
        where = {"boxes": [row[["x", "y", "width", "height"]].to_numpy(float)],
                 "landmarks": analysis.landmarks[[i]], "points5": analysis.landmarks5[[i]]}
        fresh = check.measure(original, someone_else, **where)
        reused = check.measure(original, someone_else, **where,
                               original_embeddings=analysis.embeddings[[i]])
        assert reused == fresh  # the analysis cut and embedded the original the same way
        itself = check.measure(original, original, **where,
                               original_embeddings=analysis.embeddings[[i]])
        assert itself[0]["distance"] < 1e-4 and itself[0]["matches_source"]


@pytest.mark.realdata
def test_t_keeps_the_released_shares_and_the_released_targets_meet_k(photos, identities,
                                                                      tmp_path):
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    report = anonymize_photos(photos, tmp_path / "out", t=0.2, k=2, identities=ids, seed=7,
                              epsilon=2.0, allow_collapse=True)
    summary = report.summary.to_dict()
    ppas = summary["ppas"]
    controlled = ppas["controlled"]
    assert summary["seeded"] is True and report.written
    assert ppas["model"] == "v2"
    assert set(controlled) | set(ppas["generalised"]) == set(summary["qi"])
    # Randomised response runs on the controlled attributes the generator edits.
    assert ppas["dp"] is True and ppas["epsilon"] == 2.0
    rows = []
    for name in report.written:
        certificate = json.loads((tmp_path / "out" / "certificates" / f"{name}.json").read_text())
        face = certificate["faces"][0]
        assert set(face["target"]) == set(controlled) and face["dp"] is True
        assert face["model"] == "v2"
        rows.append({**face["target"], "person": ids[name]})
    # The released targets: every class holds 2 different persons (photo model v2's k). The
    # plan's shares are within t of the reference's; k-Same may still re-target a face whose
    # class has no usable average, so the released shares are judged where they are read
    # (run.json's outputs and verdict).
    table = pd.DataFrame(rows)
    if controlled:
        assert table.groupby(controlled)["person"].nunique().min() >= 2
    assert ppas["planned"]["t"] is None or ppas["planned"]["t"] <= 0.2 + 1e-9
    outputs = summary["outputs"]
    assert outputs["requirements_met"] == (outputs["reached"]["k"] >= 2
                                           and outputs["reached"]["t"] <= 0.2 + 1e-9)


@pytest.mark.realdata
def test_cli_anonymizes_a_photo_folder_with_a_baseline(photos, tmp_path):
    result = runner.invoke(app, ["anonymize", str(photos), "--generator", "pixelate",
                                 "--param", "block=16", "--out", str(tmp_path / "out"),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote 20 photo(s)" in result.output
    summary = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary["generator"] == {"name": "pixelate", "params": {"block": 16}}
    assert summary["persons"]["case"] == "recognizer"
    assert (tmp_path / "out" / STATE_DIR / "plan.json").exists()
    assert "perturbation" not in summary


@pytest.mark.realdata
def test_cli_adds_a_seeded_perturbation_and_says_so(photos, tmp_path):
    result = runner.invoke(app, ["anonymize", str(photos), "--generator", "pixelate",
                                 "--out", str(tmp_path / "out"), "--workers", "2",
                                 "--perturb", "gauss", "--xi", "0.03", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "perturbation gauss (xi=0.03, l_inf): at most 7 grey level(s)" in result.output
    summary = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary["perturbation"]["seeded"] is True and summary["perturbation"]["seed"] == 5
    name = sorted(p.name for p in photos.iterdir())[0]
    certificate = json.loads((tmp_path / "out" / "certificates" / f"{name}.json").read_text())
    assert certificate["perturbation"]["method"] == "gauss"
    assert 0 < certificate["perturbation"]["max_change_levels"] <= 7


def test_cli_refuses_bad_photo_runs(tmp_path, monkeypatch):
    from privface.generators.stargan import checkpoints

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "blank.png")
    same = runner.invoke(app, ["anonymize", str(folder), "--out", str(folder)])
    assert same.exit_code == 2 and "input folder" in same.output
    unknown = runner.invoke(app, ["anonymize", str(folder), "--generator", "nope",
                                  "--out", str(tmp_path / "o")])
    assert unknown.exit_code == 2 and "unknown generator 'nope'" in unknown.output
    bad_param = runner.invoke(app, ["anonymize", str(folder), "--param", "sigma",
                                    "--out", str(tmp_path / "o")])
    assert bad_param.exit_code == 2 and "NAME=VALUE" in bad_param.output
    table_option = runner.invoke(app, ["anonymize", str(folder), "--sensitive", "identity",
                                       "--out", str(tmp_path / "o")])
    assert table_option.exit_code == 2 and "--sensitive apply to tables" in table_option.output
    monkeypatch.setattr(checkpoints, "MODELS_DIR", tmp_path / "none")  # a build without weights
    no_checkpoint = runner.invoke(app, ["anonymize", str(folder), "--generator", "stargan",
                                        "--out", str(tmp_path / "o")])
    assert no_checkpoint.exit_code == 2 and "checkpoint" in no_checkpoint.output
    monkeypatch.undo()
    for options, message in ((["--xi", "0.1"], "--xi only apply with --perturb"),
                             (["--perturb", "uap"], "needs the perturbation file"),
                             (["--perturb", "blur", "--xi", "0.1"], "must be one of"),
                             (["--perturb", "gauss"], "needs a budget (--xi)"),
                             (["--perturb", "gauss", "--xi", "0.1", "--uap", str(folder)],
                              "--uap only applies with --perturb uap"),
                             (["--perturb", "uap", "--uap", str(folder / "blank.png")],
                              "not a privface perturbation")):
        refused = runner.invoke(app, ["anonymize", str(folder), "--out", str(tmp_path / "o"),
                                      *options])
        assert refused.exit_code == 2 and message in refused.output, (options, refused.output)
    table = runner.invoke(app, ["anonymize", "--demo", "--k", "2", "--perturb", "gauss",
                                "--out", str(tmp_path / "t.csv")])
    assert table.exit_code == 2 and "--perturb apply to a folder of photos" in table.output


def test_photos_without_faces_are_listed_not_written(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    report = anonymize_photos(folder, tmp_path / "out", generator="blur")
    assert report.written == []
    reasons = dict(zip(report.skipped["file"], report.skipped["reason"]))
    assert reasons["blank.png"] == "no face found" and "broken.jpg" in reasons
    assert not (tmp_path / "out" / "blank.png").exists()
    assert json.loads((tmp_path / "out" / "run.json").read_text())["photos"]["skipped"] == 2
    # The report is the typed record run.json was written from, in its one JSON form.
    summary = report.summary
    assert summary.photos.skipped == 2 and summary.groups is None and summary.outputs is None
    assert (tmp_path / "out" / "run.json").read_text() == summary.to_json()


@pytest.mark.realdata
def test_stargan_runs_in_the_pipeline_on_its_square_geometry(photos, identities, tmp_path):
    import torch

    from privface.generators.stargan import Generator

    checkpoint = tmp_path / "G.ckpt"
    torch.manual_seed(0)
    torch.save(Generator(conv_dim=4, repeat_num=1).state_dict(), checkpoint)
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    # Random weights realise no target, so withholding would release nothing: this test is
    # about the geometry, so every photo is written. The randomised response draws from OS
    # entropy (unseeded, as the test checks), and some draws leave PPAS only a plan that changes
    # most attributes, which it refuses as a collapse: allowed here, the plan is not the point.
    report = anonymize_photos(photos, tmp_path / "out", generator="stargan", k=2, epsilon=1.0,
                              identities=ids, withhold=False, allow_collapse=True,
                              generator_params={
                                  "checkpoint": str(checkpoint), "image_size": 32,
                                  "conv_dim": 4, "repeat_num": 1})
    assert len(report.written) == PERSONS * PHOTOS
    summary = report.summary.to_dict()
    assert summary["ppas"]["editable"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male",
                                           "Young"]
    assert summary["ppas"]["dp"] is True and summary["seeded"] is False
    name = report.written[0]
    before = np.asarray(Image.open(photos / name), np.float32)
    after = np.asarray(Image.open(tmp_path / "out" / name), np.float32)
    assert after.shape == before.shape and np.abs(after - before).mean() > 1


class _DeclaredPlugIn:
    """A plug-in of the current interface: it says which faces it could not realise."""

    name = "declared"

    def __init__(self) -> None:
        from privface.attributes.alignment import square
        from privface.generators.base import Capabilities

        self.capabilities = Capabilities(geometry=square(64), editable=("Male",))
        self.shapes: list[tuple] = []

    def generate(self, faces, source_attributes, target_attributes):
        from privface.generators.base import GenerationResult

        self.shapes.append(faces.shape[1:])
        return GenerationResult(255 - faces, realised=source_attributes["Male"].to_numpy() == 1)


class _BarePlugIn:
    """A plug-in of privface 0.1: plain attributes, a bare array (deprecated, still served)."""

    name = "bare"
    editable = ("Young",)

    def __init__(self) -> None:
        from privface.attributes.alignment import square

        self.geometry = square(48)
        self.shapes: list[tuple] = []

    def generate(self, faces, source_attributes, target_attributes):
        self.shapes.append(faces.shape[1:])
        return 255 - faces


@pytest.mark.realdata
def test_a_declared_plug_in_gets_its_geometry_and_its_unrealised_faces_are_withheld(
        photos, identities, tmp_path):
    plug_in = _DeclaredPlugIn()
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    report = anonymize_photos(photos, tmp_path / "out", generator=plug_in, k=2, identities=ids,
                              seed=3, verify=False)
    assert set(plug_in.shapes) == {(64, 64, 3)}
    assert report.summary.ppas["editable"] == ["Male"]
    unrealised = report.skipped[report.skipped["reason"].str.startswith("declared: the "
                                                                        "generator reports")]
    faces = pd.DataFrame([json.loads(p.read_text())["faces"][0] for p in
                          sorted((tmp_path / "out" / "certificates").iterdir())])
    # Only faces the model reads as male came out "realised": the others' photos are held back.
    assert len(unrealised) and len(report.written) and len(faces) == len(report.written)


class _GroupPlugIn:
    """A group generator (every face at once) that asks for the faces' readings, or not."""

    name = "group"

    def __init__(self, readings: bool) -> None:
        from privface.generators.base import Capabilities

        self.capabilities = Capabilities(editable=("Male",), uses_persons=True,
                                         uses_readings=readings)
        self.calls: list[dict] = []

    def generate(self, faces, source_attributes, target_attributes, **options):
        from privface.generators.base import GenerationResult

        self.calls.append({"n": len(faces), **options})
        return GenerationResult(255 - faces)


@pytest.mark.realdata
@pytest.mark.parametrize("readings", [True, False])
def test_a_group_generator_gets_every_reading_of_every_face_when_it_asks(
        photos, identities, tmp_path, readings):
    plug_in = _GroupPlugIn(readings)
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    anonymize_photos(photos, tmp_path / "out", generator=plug_in, k=2, identities=ids, seed=3,
                     verify=False, allow_collapse=True)
    (call,) = plug_in.calls  # every face in one call
    assert set(call) == ({"n", "persons", "readings"} if readings else {"n", "persons"})
    if readings:
        shown = pd.read_csv(tmp_path / "out" / ".privface-run" / "faces.csv")
        # What the analysis read off each face, all 40 attributes, in the faces' order.
        assert call["readings"].shape == (call["n"], 40)
        np.testing.assert_array_equal(call["readings"].to_numpy(),
                                      shown[list(call["readings"].columns)].to_numpy())


@pytest.mark.realdata
def test_a_bare_array_plug_in_still_runs_through_the_one_adapter(photos, identities, tmp_path):
    plug_in = _BarePlugIn()
    ids = identities.loc[[p.name for p in photos.iterdir()]]
    with pytest.warns(DeprecationWarning, match="declares no `capabilities`"):
        report = anonymize_photos(photos, tmp_path / "out", generator=plug_in, k=2,
                                  identities=ids, seed=3, verify=False)
    assert set(plug_in.shapes) == {(48, 48, 3)}  # its geometry attribute was honoured
    assert report.summary.ppas["editable"] == ["Young"]
    assert len(report.written) == PERSONS * PHOTOS
    assert report.summary.generator == "bare"
