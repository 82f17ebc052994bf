"""What a photo run promises about its output folder (docs/files.md).

Every photo in OUT has a certificate recording its SHA-256, whatever stops the run (SIGKILL
included); a run resumes only outputs made with the same settings, models and photo bytes; one
run at a time; no temporary file can be redirected by a planted link; bad output paths are
refused before any work.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from privface.cli.main import app
from privface.pipeline.state import STATE_DIR
from privface.base.files import atomic_write
from privface.privmetrics.readers import read_celeba_identities

runner = CliRunner()
N_PHOTOS = 32


@pytest.fixture(scope="module")
def identities_file(celeba_dir: Path) -> Path:
    return celeba_dir / "identity_CelebA.txt"


@pytest.fixture(scope="module")
def photos(celeba_dir: Path, identities_file: Path, tmp_path_factory) -> Path:
    """32 photos of the 200-identity set: 8 persons x 4 photos (k-Same finds groups)."""
    source = celeba_dir / "img_align_celeba_200ids"
    ids = read_celeba_identities(identities_file).reindex(sorted(p.name for p in
                                                                 source.iterdir()))
    folder = tmp_path_factory.mktemp("photos")
    for person in sorted(ids.unique())[:8]:
        for name in sorted(ids.index[ids == person])[:4]:
            shutil.copy(source / name, folder / name)
    assert len(list(folder.iterdir())) == N_PHOTOS
    return folder


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _blank_photos(folder: Path) -> Path:
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "blank.png")
    return folder


def _released(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name != "run.json")


def _assert_every_photo_is_certified(out: Path) -> int:
    """Every photo in ``out`` has a certificate that records its bytes' SHA-256."""
    names = _released(out) if out.is_dir() else []
    for name in names:
        certificate = json.loads((out / "certificates" / f"{name}.json").read_text())
        assert certificate["sha256"] == file_sha256(out / name), name
    return len(names)


def _command(photos: Path, out: Path, options: list[str]) -> list[str]:
    return [sys.executable, "-c", "from privface.cli.main import main; main()", "anonymize",
            str(photos), "--out", str(out), *options]


def _run_and_kill(command: list[str], out: Path, when: tuple[str, float, float]) -> int:
    """Start a run and SIGKILL it at ``when``: ``("start", 0, s)``, s seconds after it starts;
    ``("photos", n, s)``, s seconds after n photos are in OUT. Photos seen in OUT meanwhile
    must already have their certificate. Returns the number of photos released at the kill."""
    after, count, delay = when
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        since = time.monotonic() if after == "start" else None
        while process.poll() is None:
            names = _released(out) if out.is_dir() else []
            for name in names:
                # At any instant: the certificate is in place before the photo is.
                assert (out / "certificates" / f"{name}.json").exists(), name
            if since is None and len(names) >= count and (out / STATE_DIR).exists():
                since = time.monotonic()
            if since is not None and time.monotonic() - since >= delay:
                process.send_signal(signal.SIGKILL)  # the main process only, as the OOM killer
                break
            time.sleep(0.01)
        process.wait()
        # 1: the run finished and its verdict is "not met" (a tiny set); still a finished run.
        assert process.returncode in (0, 1, -signal.SIGKILL), process.stderr.read()
        return _assert_every_photo_is_certified(out)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
        time.sleep(0.2)
        try:  # orphaned workers end by themselves within 0.5 s; make sure in the test
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _comparable_report(out: Path) -> dict:
    report = json.loads((out / "run.json").read_text())
    # Run-specific by nature: how long it took and what this invocation (not the folder) did.
    for key in ("seconds", "photos_per_second", "resumed"):
        report.pop(key)
    report["photos"].pop("written")
    report["photos"].pop("already_done")
    return report


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("options, n_kills", [
    (["--generator", "blur", "--no-verify", "--workers", "2"], 5),
    # The default generator, verified; 8 persons cannot hold several classes of k-Same groups.
    (["--k", "2", "--seed", "7", "--workers", "1", "--allow-collapse"], 3),
], ids=["blur-workers", "ksame-default"])
def test_sigkill_at_random_points_never_leaves_a_photo_without_its_certificate(
        photos, identities_file, tmp_path, options, n_kills):
    options = [*options, "--identities", str(identities_file)]
    reference = tmp_path / "reference"
    done = subprocess.run(_command(photos, reference, options), capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr  # 1: finished, verdict "not met"
    assert _assert_every_photo_is_certified(reference) > 10

    out = tmp_path / "out"
    draw = random.Random(14)
    # A kill during the analysis (before any photo), then at random points of the writing:
    # after a random number of new photos (each run resumes the last) and a random fraction of
    # a second more.
    total = len(_released(reference))
    released = [_run_and_kill(_command(photos, out, options), out, ("start", 0, 2.5))]
    for _ in range(n_kills - 1):
        more = draw.randint(1, max(1, (total - released[-1]) // 3))
        when = ("photos", min(released[-1] + more, total - 1), draw.uniform(0.0, 0.1))
        released.append(_run_and_kill(_command(photos, out, options), out, when))
    resumed = subprocess.run(_command(photos, out, options), capture_output=True, text=True)
    assert resumed.returncode == done.returncode, resumed.stderr
    assert _released(out) == _released(reference)
    for name in _released(reference):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
        assert (out / "certificates" / f"{name}.json").read_bytes() == \
            (reference / "certificates" / f"{name}.json").read_bytes(), name
    assert _comparable_report(out) == _comparable_report(reference)
    assert not (out / ".partial").exists()
    assert max(released) > 0 and min(released) < total  # kills fell in the writing
    print(f"photos released at each kill: {released} of {total}")


@pytest.mark.slow
@pytest.mark.realdata
def test_a_run_resumes_only_what_the_same_settings_and_photos_made(photos, identities_file,
                                                                     tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    names = sorted(p.name for p in folder.iterdir())
    for name in names[8:]:
        (folder / name).unlink()
    base = ["--generator", "blur", "--no-verify", "--workers", "1", "--identities",
            str(identities_file), "--seed", "7", "--allow-collapse"]
    out = tmp_path / "out"
    first = runner.invoke(app, ["anonymize", str(folder), "--out", str(out), "--k", "2", *base])
    assert first.exit_code == 0, first.output

    other_k = runner.invoke(app, ["anonymize", str(folder), "--out", str(out), "--k", "3", *base])
    assert other_k.exit_code == 2
    assert "setting k was 2, now 3" in other_k.output and "--restart" in other_k.output

    shutil.copy(folder / names[1], folder / names[0])  # one photo replaced, same size or not
    replaced = runner.invoke(app, ["anonymize", str(folder), "--out", str(out), "--k", "2",
                                   *base])
    assert replaced.exit_code == 2 and f"photos changed: {names[0]}" in replaced.output

    # --restart removes the outputs it does not rewrite: the photo gone from the input too.
    (folder / names[0]).unlink()
    # (Two persons: k = 1 is what they can hold.)
    again = runner.invoke(app, ["anonymize", str(folder), "--out", str(out), "--k", "1",
                                "--restart", *base])
    assert again.exit_code == 0, again.output
    assert not (out / names[0]).exists()
    assert not (out / "certificates" / f"{names[0]}.json").exists()
    for name in _released(out):
        certificate = json.loads((out / "certificates" / f"{name}.json").read_text())
        assert certificate["sha256"] == file_sha256(out / name)
        assert all(face["requirements"]["k"] == 1 for face in certificate["faces"]
                   if "requirements" in face)


def test_outputs_without_a_plan_are_not_taken_for_this_run(tmp_path):
    folder = _blank_photos(tmp_path / "photos")
    out = tmp_path / "out"
    out.mkdir()
    (out / "blank.png").write_bytes(b"someone's own file")
    refused = runner.invoke(app, ["anonymize", str(folder), "--generator", "blur",
                                  "--out", str(out)])
    assert refused.exit_code == 2 and "no saved plan" in refused.output
    assert (out / "blank.png").read_bytes() == b"someone's own file"


def test_a_second_run_into_a_locked_folder_is_refused_with_the_first_runs_pid(tmp_path):
    import fcntl

    folder = _blank_photos(tmp_path / "photos")
    out = tmp_path / "out"
    out.mkdir()
    # What a first run holds while it works: the lock on OUT/.privface.lock, with its PID in it.
    with open(out / ".privface.lock", "w") as first:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first.write(f"{os.getpid()}\n")
        first.flush()
        second = runner.invoke(app, ["anonymize", str(folder), "--generator", "blur",
                                     "--out", str(out)])
    assert second.exit_code == 2
    assert f"another privface run (PID {os.getpid()})" in second.output
    assert not (out / "run.json").exists()
    after = runner.invoke(app, ["anonymize", str(folder), "--generator", "blur",
                                "--out", str(out)])
    assert after.exit_code == 0, after.output


def test_bad_output_paths_are_refused_before_any_work(tmp_path, monkeypatch):
    import privface.attributes as attributes

    def no_analysis(*args, **kwargs):
        raise AssertionError("refused paths must be found before the analysis")

    monkeypatch.setattr(attributes, "analyze_photos", no_analysis)
    folder = _blank_photos(tmp_path / "photos")
    afile = tmp_path / "afile"
    afile.write_text("mine")
    out = tmp_path / "out"
    cases = [(["--out", str(afile)], "--out names an existing file"),
             (["--out", str(folder / "sub")], "inside the input folder"),
             (["--out", str(folder / "sub" / ".." / ".")], "is the input folder"),
             (["--out", str(out), "--report", str(out / "run.json")], "--report would overwrite"),
             (["--out", str(out), "--report", str(out / "blank.png")], "--report would overwrite"),
             (["--out", str(out), "--report", str(out / "certificates" / "x.json")],
              "--report would overwrite"),
             (["--out", str(out), "--report", str(folder / "blank.png")],
              "--report would overwrite the input")]
    if hasattr(os, "link"):
        os.link(folder / "blank.png", tmp_path / "hardlink.png")
        cases.append((["--out", str(out), "--report", str(tmp_path / "hardlink.png")],
                      "--report would overwrite the input"))
    for options, message in cases:
        refused = runner.invoke(app, ["anonymize", str(folder), "--generator", "blur",
                                      *options])
        assert refused.exit_code == 2 and message in refused.output, (options, refused.output)
    assert afile.read_text() == "mine"
    assert Image.open(folder / "blank.png").size == (64, 64)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_says_what_is_finished_and_how_to_resume(photos, tmp_path, how):
    out = tmp_path / "out"
    process = subprocess.Popen(
        _command(photos, out, ["--generator", "blur", "--no-verify", "--workers", "1"]),
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out.is_dir() and _released(out)) and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(how)  # some photos written, not all (about 5 a second)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + how, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    finished = _assert_every_photo_is_certified(out)
    assert f"{finished} photo(s) are finished in {out}" in lines[0]
    assert "run the same command again to resume" in lines[0]


def _outside(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("precious")
    return victim


def test_a_link_planted_at_the_old_temporary_photo_name_is_not_followed(tmp_path):
    from privface.attributes.images import load_image, save_image

    victim = _outside(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "photo.png"
    # The name the writer used before: ".NAME.tmpPID", predictable by anyone.
    (out / f".photo.png.tmp{os.getpid()}").symlink_to(victim)
    save_image(np.full((4, 4, 3), 7, np.uint8), target)
    assert victim.read_text() == "precious"
    assert load_image(target)[0, 0].tolist() == [7, 7, 7]


def test_a_link_planted_at_a_guessed_temporary_name_is_not_followed(tmp_path, monkeypatch):
    import secrets

    victim = _outside(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    # An attacker who guesses the random part: both the older token scheme and mkdtemp's names.
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: "guess")
    monkeypatch.setattr(tempfile, "_get_candidate_names",
                        lambda: iter(["guess", "other", "third"]))
    (out / ".table.csv.guess.tmp").symlink_to(victim)
    (out / ".table.csv.other.tmp").symlink_to(victim.parent)  # a folder the write would enter
    atomic_write(out / "table.csv", lambda tmp: Path(tmp).write_text("a,b\n"))
    assert victim.read_text() == "precious" and os.listdir(victim.parent) == ["victim.txt"]
    assert (out / "table.csv").read_text() == "a,b\n"


def test_the_temporary_file_lives_in_a_folder_no_one_else_can_enter(tmp_path):
    seen = []

    def write(tmp: Path) -> None:
        seen.append((tmp.parent, oct(tmp.parent.stat().st_mode & 0o777), tmp.is_symlink()))
        tmp.write_text("x")

    atomic_write(tmp_path / "report.json", write)
    folder, mode, link = seen[0]
    # No other user can plant a link in it between its creation and the write.
    assert folder != tmp_path and mode == "0o700" and not link
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
