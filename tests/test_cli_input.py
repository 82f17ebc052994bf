"""Bad input to the command line: exit 2 with a message, never a traceback or a silent guess.

And the converse: a genuine bug is not dressed up as bad input.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys


import pandas as pd
import pytest
from typer.testing import CliRunner

from privface.cli.main import app
from privface.base.errors import InputError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def squash(text: str) -> str:
    """Output without whitespace: rich wraps long lines."""
    return "".join(text.split())


@pytest.mark.parametrize("column", ["tags", "props"])
@pytest.mark.parametrize("engine", [[], ["--chunk-rows", "1"]])
def test_list_or_struct_column_as_qi_exits_2_naming_it(tmp_path, column, engine):
    pytest.importorskip("pyarrow")
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"tags": [[1, 2], [3]], "props": [{"a": 1}, {"a": 2}], "x": [1, 2]}
                 ).to_parquet(path)
    result = invoke("audit", path, "--qi", column, *engine)
    assert result.exit_code == 2, result.output
    assert f"column '{column}'" in result.output and "list and struct" in result.output


def test_a_bug_raising_valueerror_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    """Only InputError (and OSError on a file) mean exit 2; anything else is a bug to show."""
    import privface.cli.common as photos
    import privface.pipeline as pipeline

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(photos, "require_faces_extra", lambda: None)
    monkeypatch.setattr(pipeline, "anonymize_photos", broken)
    (tmp_path / "photos").mkdir()
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code != 2
    assert isinstance(result.exception, ValueError)
    assert not isinstance(result.exception, InputError)

    monkeypatch.setattr(pipeline, "anonymize_photos", lambda *a, **k: (_ for _ in ()).throw(
        TypeError("another bug")))
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code != 2 and isinstance(result.exception, TypeError)


def test_bad_input_in_a_photo_run_still_exits_2(tmp_path, monkeypatch):
    import privface.cli.common as photos
    import privface.pipeline as pipeline

    def refuses(*args, **kwargs):
        raise InputError("no such thing", file="x.jpg")

    monkeypatch.setattr(photos, "require_faces_extra", lambda: None)
    monkeypatch.setattr(pipeline, "anonymize_photos", refuses)
    (tmp_path / "photos").mkdir()
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code == 2 and "x.jpg: no such thing" in result.output


@pytest.mark.parametrize("params, needle", [
    ({"radius": 3}, "generator 'blur' has no parameter 'radius'; its parameters: sigma"),
    ({"sigma": -1}, "sigma must be positive"),
    ({"sigma": "abc"}, "generator 'blur' cannot take these parameters (sigma='abc')"),
])
def test_generator_parameters_are_input_errors(params, needle):
    from privface.generators.registry import load_generator

    with pytest.raises(InputError, match=re.escape(needle)):
        load_generator("blur", **params)
    with pytest.raises(InputError, match="unknown generator"):
        load_generator("nope")


@pytest.mark.parametrize("engine", [[], ["--chunk-rows", "2"]])
@pytest.mark.parametrize("body, line, needle", [
    ("1,2,3\n1,2\n1,2,3\n", 3, "expected 3 fields as in the header, found 2"),
    ("1,2,3\n1,2,3\n1\n", 4, "expected 3 fields as in the header, found 1"),
    ("1,2,3\n1,2,3,4\n1,2,3\n", 3, "Expected 3 fields in line 3, saw 4"),
])
def test_a_row_with_a_missing_or_extra_field_is_an_error_naming_its_line(
        tmp_path, engine, body, line, needle):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n" + body)
    result = invoke("audit", path, "--qi", "a", *engine)
    assert result.exit_code == 2, result.output
    assert f"t.csv, line {line}:" in result.output and needle in result.output, result.output


def test_empty_cells_written_with_their_separators_are_still_read(tmp_path):
    from privface.privmetrics.readers import read_table

    path = tmp_path / "t.csv"
    path.write_text('a,b,c\n1,2,\n1,,3\n"x\ny",2,\n')
    table = read_table(path)
    assert table["c"].isna().tolist() == [True, False, True]


def test_a_non_utf8_byte_far_down_is_reported_with_its_line_and_offset(tmp_path):
    rows = ["a,b"] + [f"{i},x" for i in range(20_000)]
    rows[15_000] = "7,caf\xe9"
    path = tmp_path / "t.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    offset = len(("\n".join(rows[:15_000]) + "\n").encode()) + len("7,caf")
    for engine in ([], ["--chunk-rows", "1000"]):
        result = invoke("audit", path, "--qi", "a", *engine)
        assert result.exit_code == 2
        assert (f"t.csv, line 15001: not UTF-8 text: byte 0xe9 at byte offset {offset:,}"
                in result.output), result.output


@pytest.mark.parametrize("text, needle", [
    ("abc\nMale Smiling\n1.jpg 1 -1\n2.jpg -1 1\n",
     "found 'abc'; the rest is laid out as a CelebA attribute file"),
    ("Male Smiling\n1.jpg 1 -1\n2.jpg -1 1\n", "the count line is missing"),
])
def test_a_bad_celeba_count_line_is_named_not_read_as_csv(tmp_path, text, needle):
    path = tmp_path / "attrs.txt"
    path.write_text(text)
    result = invoke("audit", path, "--k", "1")
    assert result.exit_code == 2
    assert "attrs.txt, line 1: expected the image count (an integer) on line 1" in \
        result.output and needle in result.output, result.output


def test_a_header_with_spaces_around_names_is_audited_by_the_bare_names(tmp_path):
    path = tmp_path / "adult.csv"
    path.write_text("age, education, income\n30, HS, low\n40, BA, high\n40, BA, low\n")
    for engine in ([], ["--chunk-rows", "1"]):
        result = invoke("audit", path, "--qi", "age,education", "--sensitive", "income",
                        "--format", "json", *engine)
        assert result.exit_code == 0, result.output
        assert "--qi 'education' is the column ' education'" in result.output
        report = json.loads(result.output[result.output.index("{"):])
        assert report["quasi_identifiers"] == ["age", " education"]
        assert report["sensitive"] == [" income"]


def test_a_column_whose_name_has_a_comma_can_be_chosen_whole(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('"city, state",a,b\nx,1,1\nx,2,1\ny,1,2\n')
    result = invoke("audit", path, "--qi", "city, state", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["quasi_identifiers"] == ["city, state"]
    result = invoke("audit", path, "--qi", "a,b", "--format", "json")  # no such column: split
    assert json.loads(result.output)["quasi_identifiers"] == ["a", "b"]
    result = invoke("audit", path, "--qi", "city")
    assert result.exit_code == 2 and "no such quasi-identifier column" in result.output


@pytest.mark.parametrize("args, option", [
    (["audit", "--demo", "--worst", "-1"], "--worst"),
    (["audit", "--demo", "--k", "0"], "--k"),
    (["audit", "--demo", "--l", "0"], "--l"),
    (["audit", "--demo", "--t", "1.5"], "--t"),
    (["audit", "--demo", "--beta", "-1"], "--beta"),
    (["audit", "--demo", "--risk-threshold", "2"], "--risk-threshold"),
    (["audit", "--demo", "--chunk-rows", "0"], "--chunk-rows"),
    (["anonymize", "--demo", "--k", "2", "--seed", "-1"], "--seed"),
    (["anonymize", "--demo", "--k", "-3"], "--k"),
    (["anonymize", "--demo", "--k", "2", "--t", "-0.1"], "--t"),
    (["anonymize", "--demo", "--k", "2", "--workers", "0"], "--workers"),
    (["predict", ".", "--workers", "0"], "--workers"),
    (["train", "stargan", "--images", ".", "--labels", "x", "--image-size", "8"],
     "--image-size"),
    (["train", "attributes", "--images", ".", "--labels", "x", "--train-count", "0"],
     "--train-count"),
])
def test_out_of_range_numbers_are_refused_before_any_work(tmp_path, monkeypatch, args, option):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("data", ["-", "/dev/stdin"])
def test_a_table_can_be_audited_from_standard_input_through_a_pipe(data):
    csv_text = b"a,s\n1,1\n1,2\n2,1\n2,2\n"
    cmd = [sys.executable, "-m", "privface.cli.main", "audit", data, "--qi", "a",
           "--sensitive", "s", "--k", "2", "--format", "json"]
    run = subprocess.run(cmd, input=csv_text, capture_output=True)  # a real pipe
    assert run.returncode == 0, run.stderr.decode()
    report = json.loads(run.stdout)
    assert report["n_records"] == 4 and report["metrics"]["k_anonymity"] == 2
    assert report["source"] == ("standard input" if data == "-" else data)


def test_bad_input_on_standard_input_is_named_as_such():
    result = runner.invoke(app, ["audit", "-", "--qi", "a"], input="a,b,c\n1,2,3\n1,2\n")
    assert result.exit_code == 2
    assert "standard input, line 3: expected 3 fields" in result.output
    assert "privface-stdin" not in result.output
    result = runner.invoke(app, ["audit", "-", "--qi", "a", "--chunk-rows", "2"], input="a\n1\n")
    assert result.exit_code == 2 and "standard input" in result.output


def test_photo_subfolders_that_are_not_read_are_named(tmp_path, monkeypatch):
    import privface.cli.common as photos
    import privface.pipeline as pipeline

    def refuses(*args, **kwargs):
        raise InputError("stop here")

    monkeypatch.setattr(photos, "require_faces_extra", lambda: None)
    monkeypatch.setattr(pipeline, "anonymize_photos", refuses)
    top = tmp_path / "photos"
    for name in ["2019", "2020", ".hidden"]:
        (top / name).mkdir(parents=True)
    result = invoke("anonymize", top, "--out", tmp_path / "out", "--k", "2")
    assert "2 subfolder(s) of" in result.output and "(2019, 2020)" in result.output
    assert "not from its subfolders" in result.output
    assert ".hidden" not in result.output


def test_predict_refuses_a_spaced_photo_name_for_celeba_layout_before_any_work(
        tmp_path, monkeypatch):
    import privface.cli.common as photos

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ["a b.jpg", "c.jpg"]:
        (folder / name).write_bytes(b"")
    calls = []

    def fake_table(folder, **kwargs):
        calls.append(folder)
        table = pd.DataFrame({"Male": [1, -1], "Young": [-1, 1]},
                             index=pd.Index(["a b.jpg", "c.jpg"], name="image_id"))
        return table.astype("int8"), str(folder)

    monkeypatch.setattr(photos, "photos_table", fake_table)
    result = invoke("predict", folder, "--output", tmp_path / "attrs.txt")
    assert result.exit_code == 2, result.output
    assert "'a b.jpg'" in result.output and "attrs.csv" in result.output
    assert calls == [] and not (tmp_path / "attrs.txt").exists()

    result = invoke("predict", folder, "--output", tmp_path / "attrs.csv")
    assert result.exit_code == 0, result.output
    from privface.privmetrics.readers import read_table

    assert read_table(tmp_path / "attrs.csv").index.tolist() == ["a b.jpg", "c.jpg"]


def test_an_incomplete_table_certificate_is_refused_by_report(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "t.csv.certificate.json"
    path.write_text(json.dumps({"schema": "privface.anonymize-certificate/1"}))
    result = invoke("report", path, "--output", tmp_path / "r.html")
    assert result.exit_code == 2
    assert "an incomplete certificate: it lacks method" in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("worst", [-1, 1.5, True])
def test_audit_refuses_a_worst_count_that_is_not_a_whole_number(worst):
    from privface.privmetrics import audit

    table = pd.DataFrame({"a": [1, 1, 2], "s": [1, 2, 1]})
    with pytest.raises(InputError, match="worst must be a whole number >= 0"):
        audit(table, ["a"], ["s"], worst=worst)


def test_an_os_error_on_a_file_is_bad_input_naming_the_file(tmp_path, monkeypatch):
    import privface.cli.common as photos
    import privface.pipeline as pipeline

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "photos" / "x.jpg"))

    monkeypatch.setattr(photos, "require_faces_extra", lambda: None)
    monkeypatch.setattr(pipeline, "anonymize_photos", unreadable)
    (tmp_path / "photos").mkdir()
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code == 2, result.output
    assert "x.jpg: Permission denied" in result.output


def test_a_ground_distance_matrix_with_text_cells_is_bad_input(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a,s\n1,1\n1,2\n2,1\n2,2\n")
    matrix = tmp_path / "ground.csv"
    matrix.write_text(",1,2\n1,0,x\n2,x,0\n")
    result = invoke("audit", table, "--qi", "a", "--sensitive", "s", "--ground-distance",
                    f"s={matrix}", "--t", "0.5")
    assert result.exit_code == 2, result.output
    assert "column 's': the ground-distance matrix must hold finite non-negative numbers" in \
        result.output


@pytest.mark.parametrize("name, text, needle", [
    ("t.csv", "a\tb\n1\t2\n", "holds tabs: the file is not CSV; pass --input-format tsv"),
    ("t.tsv", "a,b\n1,2\n", "holds commas: the file is not TSV; pass --input-format csv"),
    ("t.csv", "a;b\n1;2\n", "holds semicolons"),
])
@pytest.mark.parametrize("engine", [[], ["--chunk-rows", "1"]])
def test_a_header_read_as_one_column_names_the_separator_it_holds(tmp_path, name, text,
                                                                    needle, engine):
    path = tmp_path / name
    path.write_text(text)
    result = invoke("audit", path, "--qi", "a", *engine)
    assert result.exit_code == 2 and needle in result.output, result.output
    result = invoke("audit", path, "--qi", "a", "--input-format",
                    "tsv" if "\t" in text else "csv")
    assert result.exit_code == 0 or "semicolons" in needle


def test_a_missing_or_wrong_stargan_checkpoint_is_an_input_error(tmp_path):
    pytest.importorskip("torch")
    from privface.generators.registry import load_generator

    with pytest.raises(InputError, match="checkpoint not found"):
        load_generator("stargan", checkpoint=str(tmp_path / "none-G.ckpt"))
    bad = tmp_path / "1-G.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a PyTorch checkpoint"):
        load_generator("stargan", checkpoint=str(bad))
