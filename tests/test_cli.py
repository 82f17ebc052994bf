"""`privface audit` end to end: defaults, formats, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from typer.testing import CliRunner

from privface.cli.main import app
from privface.privmetrics import audit

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["audit", *args])


def _schema() -> dict:
    text = resources.files("privface.privmetrics").joinpath("schema/audit-v1.json").read_text()
    return json.loads(text)


CELEBA_HEADER = "5_o_Clock_Shadow Arched_Eyebrows Male Young"


@pytest.fixture
def celeba_file(tmp_path: Path) -> Path:
    rows = [
        "000001.jpg -1  1  1 -1",
        "000002.jpg -1  1  1 -1",
        "000003.jpg  1 -1 -1  1",
        "000004.jpg  1 -1 -1  1",
        "000005.jpg  1 -1 -1  1",
    ]
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(("202599\r\n" + CELEBA_HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode())
    return path


@pytest.fixture
def identity_file(tmp_path: Path) -> Path:
    path = tmp_path / "identity_CelebA.txt"
    path.write_bytes(b"000001.jpg 10\r\n000002.jpg 11\r\n000003.jpg 12\r\n000004.jpg 12\r\n"
                     b"000005.jpg 13\r\n000006.jpg 14\r\n")
    return path


def test_demo_without_requirements_measures_and_says_no_requirement_was_given():
    result = invoke("--demo")
    assert result.exit_code == 0, result.output  # nothing failed
    assert "PASSED" not in result.output
    first, second = result.output.splitlines()[:2]
    assert first.startswith("privface audit: no requirement given") and "--k 5" in first
    assert second.startswith("headline: k = 1; 9") and "risk above 0.2" in second
    assert "records: 20,000" in result.output
    report = json.loads(invoke("--demo", "--format", "json").output)
    assert report["verdict"] == "no_requirement" and report["passed"] is True
    jsonschema.validate(report, _schema())
    failing = json.loads(invoke("--demo", "--k", "5", "--format", "json").output)
    assert failing["verdict"] == "failed"


def test_demo_fails_an_unreachable_requirement_with_exit_1():
    result = invoke("--demo", "--k", "100000")
    assert result.exit_code == 1
    assert "FAIL k-anonymity" in result.output


def test_celeba_defaults_use_every_attribute_and_identity(celeba_file, identity_file):
    result = invoke(str(celeba_file), "--identities", str(identity_file), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    jsonschema.validate(payload, _schema())
    assert payload["quasi_identifiers"] == CELEBA_HEADER.split()
    assert payload["sensitive"] == ["identity"]
    assert payload["metrics"]["k_anonymity"] == 2
    assert payload["metrics"]["l_diversity"] == 2
    assert payload["metrics"]["delta_disclosure"] == "inf"


def test_requirements_decide_the_exit_code(celeba_file, identity_file):
    ok = invoke(str(celeba_file), "--identities", str(identity_file), "--k", "2", "--l", "2")
    assert ok.exit_code == 0, ok.output
    bad = invoke(str(celeba_file), "--identities", str(identity_file), "--k", "2", "--t", "0.1")
    assert bad.exit_code == 1
    assert "FAIL t-closeness" in bad.output


def test_qi_and_sensitive_are_comma_separated_and_repeatable(celeba_file):
    result = invoke(str(celeba_file), "--qi", "Male", "--qi", "Young,Arched_Eyebrows",
                    "--sensitive", "5_o_Clock_Shadow", "--format", "json")
    payload = json.loads(result.output)
    assert payload["quasi_identifiers"] == ["Male", "Young", "Arched_Eyebrows"]
    assert payload["sensitive"] == ["5_o_Clock_Shadow"]


def test_output_file_is_written_and_stdout_stays_clean(celeba_file, tmp_path):
    out = tmp_path / "report.json"
    result = invoke(str(celeba_file), "--format", "json", "--output", str(out), "--k", "2")
    assert result.exit_code == 0
    assert json.loads(out.read_text())["passed"] is True
    assert not list(tmp_path.glob(".report.json.*"))  # no temporary file left behind


def test_csv_needs_explicit_quasi_identifiers(tmp_path):
    path = tmp_path / "faces.csv"
    pd.DataFrame({"Male": [1, -1], "identity": [1, 2]}).to_csv(path, index=False)
    result = invoke(str(path))
    assert result.exit_code == 2
    assert "--qi is needed" in result.output
    result = invoke(str(path), "--qi", "Male", "--sensitive", "identity", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.output)["metrics"]["l_diversity"] == 1


def test_ordered_and_ground_distance_options(tmp_path):
    df = pd.DataFrame({"Male": [1, 1, -1, -1], "age": [20, 30, 40, 50]})
    path = tmp_path / "faces.csv"
    df.to_csv(path, index=False)
    ordered = json.loads(invoke(str(path), "--qi", "Male", "--sensitive", "age", "--ordered",
                                "age", "--format", "json").output)
    assert ordered["metrics"]["t_closeness"] == pytest.approx(1 / 3)
    matrix = tmp_path / "ground.csv"
    values = [20, 30, 40, 50]
    pd.DataFrame([[abs(a - b) / 30 for b in values] for a in values], index=values,
                 columns=values).to_csv(matrix)
    result = invoke(str(path), "--qi", "Male", "--sensitive", "age", "--ground-distance",
                    f"age={matrix}", "--format", "json")
    assert result.exit_code == 0, result.output
    expected = audit(df, ["Male"], ["age"], ordered="age").metrics["t_closeness"]
    # |a-b|/30 over 4 equally spaced values is the ordered distance scaled by (m-1)=3 / 3.
    assert json.loads(result.output)["metrics"]["t_closeness"] == pytest.approx(expected)


@pytest.mark.parametrize("args, expected", [
    (["missing.txt"], "missing.txt"),
    (["--demo", "--qi", "Mlae"], "'Mlae'"),
    (["--demo", "--format", "xml"], "--format must be text or json"),
    (["--demo", "--t", "2"], "Invalid value for '--t'"),
    ([], "no DATA given"),
])
def test_bad_input_exits_2_with_a_message_naming_the_culprit(args, expected):
    result = invoke(*args)
    assert result.exit_code == 2
    assert expected in result.output


def test_malformed_celeba_row_names_file_line_and_column(celeba_file):
    text = celeba_file.read_text().replace("000003.jpg  1 -1 -1  1", "000003.jpg  1 -1  7  1")
    celeba_file.write_text(text)
    result = invoke(str(celeba_file))
    assert result.exit_code == 2
    assert str(celeba_file.name) in result.output
    assert "line 5" in result.output
    assert "Male" in result.output


def test_missing_identity_is_reported(celeba_file, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("000001.jpg 1\n")
    result = invoke(str(celeba_file), "--identities", str(ids))
    assert result.exit_code == 2
    assert "000002.jpg" in result.output


def test_console_script_exit_codes():
    """The installed `privface` command, not only the typer app, returns the documented codes."""
    cmd = [sys.executable, "-m", "privface.cli.main", "audit", "--demo", "--qi", "Male"]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert subprocess.run(cmd + ["--k", "10000000"], capture_output=True).returncode == 1
    assert subprocess.run(cmd + ["--k", "0"], capture_output=True).returncode == 2


@pytest.mark.realdata
def test_real_celeba_audit_matches_the_library(celeba_dir):
    attrs = celeba_dir / "list_attr_celeba_first20k.txt"
    ids = celeba_dir / "identity_CelebA.txt"
    result = invoke(str(attrs), "--identities", str(ids), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    jsonschema.validate(payload, _schema())
    assert payload["n_records"] == 20000
    assert len(payload["quasi_identifiers"]) == 40
    from privface.privmetrics.readers import (join_identities, read_celeba_attributes,
                                              read_celeba_identities)

    table = join_identities(read_celeba_attributes(attrs), read_celeba_identities(ids))
    report = audit(table, [c for c in table.columns if c != "identity"], ["identity"])
    assert payload["metrics"]["k_anonymity"] == report.metrics["k_anonymity"] == 1
    assert payload["metrics"]["uniques"] == report.metrics["uniques"]
    assert payload["metrics"]["t_closeness"] == pytest.approx(report.metrics["t_closeness"])
