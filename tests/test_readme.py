"""The README's two commands are the ones that work: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = _bash_blocks(readme)
    assert len(blocks) >= 2, "README must open with an install-and-run and a test command"
    test_command = blocks[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_opens_with_the_demo_command():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    assert blocks[0].startswith("pip install . && privface ")


# A test file that imports one of these needs an extra that reads photos: not a core test.
_FACE_IMPORT = re.compile(r"^\s*(?:import|from) (?:torch|PIL|cv2|privface\.(?:attributes|"
                          r"generators|adversarial|pipeline|evaluation|reports))\b", flags=re.M)


def test_ci_runs_every_core_test_file_under_pandas_3():
    """.ci/run runs the files of .ci/core-tests.txt under pandas 3: every test file that needs
    no face part is listed (a new one cannot be left out), and every listed file exists."""
    listed = [line.strip() for line in (ROOT / ".ci" / "core-tests.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert all((ROOT / name).is_file() for name in listed), listed
    core = sorted(f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
                  if not _FACE_IMPORT.search(p.read_text()))
    assert sorted(set(core) - set(listed)) == []
    run = (ROOT / ".ci" / "run").read_text()
    assert ".ci/core-tests.txt" in run and '"pandas>=3"' in run
