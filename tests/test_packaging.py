"""`pip install .` (not only the editable install the suite runs on) gives the privface namespace.

The repository keeps one folder per part at its root; the wheel must map them into `privface.*`,
carry the package data, and install a working `privface` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out), str(ROOT)], check=True)
    (found,) = out.glob("privface-*.whl")
    return found


def test_wheel_maps_root_folders_into_the_privface_namespace(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ["privface/__init__.py", "privface/privmetrics/audit.py",
                     "privface/privmetrics/schema/audit-v1.json", "privface/cli/main.py",
                     "privface/attributes/__init__.py", "privface/generators/__init__.py",
                     "privface/adversarial/__init__.py",
                     "privface/generators/models/MODEL_CARD_stargan.md"]:
        assert expected in names
    assert not any(n.startswith(("tests/", "benchmarks/", "cli/", "privmetrics/")) for n in names)


def test_installed_wheel_imports_and_runs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                    str(target), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [sys.executable, "-c", "import privface.privmetrics as m, privface.cli.main as c; "
         "print(m.__file__); print(c.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    for line in probe.stdout.split():
        assert line.startswith(str(target)), probe.stdout
    script = target / "bin" / "privface"
    run = subprocess.run([sys.executable, str(script), "version"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0.1.0"
