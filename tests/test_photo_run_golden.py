"""A seeded photo run writes the same files as before the pipeline became a run object.

tests/data/photo_run_golden.json holds what `privface anonymize PHOTOS --k 2 --identities FILE
--seed 7` (k-Same, and with `--generator blur`) wrote on 12 CelebA photos of 4 persons before
issue 15 restructured the pipeline (PhotoRun, typed records): every certificate's text, run.json
without its timings, and the saved plan without the run's identity (package versions and model
hashes, which change with the environment). The run is repeated and compared byte for byte; the
certificates record each photo's SHA-256, so the photos are compared too.

A change that means to alter these outputs regenerates the file from a run of the same command:
``PRIVFACE_REGENERATE_GOLDEN=1 python -m pytest tests/test_photo_run_golden.py`` rewrites it (and
the test then says so by failing, so that a regeneration is never silent). Regenerated for the
photo model v2 (issue 16: targets for the whole run, the verdict judged on the released faces),
and for issue 18 (the checks read the written file's decoded pixels, not the pixels before JPEG:
the same photos, readings and verdicts; SFace's leakage distances moved by at most 0.013).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privface.cli.main import app

pytest.importorskip("cv2", reason="a photo run needs the faces extra")

GOLDEN = Path(__file__).parent / "data" / "photo_run_golden.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def small(celeba_dir: Path, golden: dict, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    for name in golden["photos"]:
        shutil.copy(celeba_dir / "img_align_celeba_200ids" / name, folder / name)
    return folder


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("generator", ["ksame", "blur"])
def test_a_seeded_photo_run_writes_the_same_files_as_before(generator, golden, small,
                                                            celeba_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["anonymize", str(small), "--k", "2", "--identities",
                                 str(celeba_dir / "identity_CelebA.txt"), "--seed", "7",
                                 "--generator", generator, "--out", str(out), "--workers", "1"])
    if os.environ.get("PRIVFACE_REGENERATE_GOLDEN"):
        _regenerate(generator, golden, out, result.exit_code)
    expected = golden["runs"][generator]
    assert result.exit_code == expected["exit_code"], result.output
    certificates = {p.name: p.read_text() for p in sorted((out / "certificates").iterdir())}
    assert certificates == expected["certificates"]
    run = json.loads((out / "run.json").read_text())
    assert run.pop("seconds") > 0 and "photos_per_second" in run
    run.pop("photos_per_second")
    # The file's text, not only its values: key order and formatting are part of the output.
    text = (out / "run.json").read_text()
    assert json.dumps(run, indent=1) == json.dumps(expected["run.json"], indent=1)
    assert text == json.dumps(json.loads(text), indent=1) + "\n"
    plan = json.loads((out / ".privface-run" / "plan.json").read_text())
    assert plan.pop("fingerprint") and plan.pop("identity")
    assert json.dumps(plan, indent=1) == json.dumps(expected["plan.json"], indent=1)
    for name in ("faces.csv", "skipped.csv"):
        assert (out / ".privface-run" / name).read_text() == expected[name]


def _regenerate(generator: str, golden: dict, out: Path, exit_code: int) -> None:
    run = json.loads((out / "run.json").read_text())
    run.pop("seconds"), run.pop("photos_per_second")
    plan = json.loads((out / ".privface-run" / "plan.json").read_text())
    plan.pop("fingerprint"), plan.pop("identity")
    golden["runs"][generator] = {
        "exit_code": exit_code, "run.json": run, "plan.json": plan,
        **{name: (out / ".privface-run" / name).read_text()
           for name in ("faces.csv", "skipped.csv")},
        "certificates": {p.name: p.read_text() for p in sorted((out / "certificates").iterdir())}}
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    pytest.fail(f"regenerated {GOLDEN.name} for {generator}: unset PRIVFACE_REGENERATE_GOLDEN")

