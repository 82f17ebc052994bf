"""What the commands write: never over an input, table and certificate together, the format the
output's suffix names, and every cell the anonymizer keeps copied byte for byte."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from privface.cli.main import app
from privface.base.errors import InputError
from privface.base import files as files_module
from privface.base.files import atomic_write, check_distinct_paths, committed_together
from privface.privmetrics.readers import read_table, read_table_text

runner = CliRunner()

TABLE = ("image_id,Male,zip,id,big,n,identity\n"
         "1.jpg,1,02134,007,9007199254740993,1,5\n"
         "2.jpg,1,02135,008,1,,6\n"
         '3.jpg,-1,"a,b",009,2,3,7\n'
         "4.jpg,-1,x,010,3,4,8\n")


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "victim.csv"
    path.write_text(TABLE)
    return path


def cells(path: Path, delimiter: str = ",") -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


# ------------------------------------------------------------------ item 5: inputs are safe


def _destructive_commands(tmp_path: Path, table: Path) -> dict[str, list]:
    ids = tmp_path / "identity_CelebA.txt"
    ids.write_text("1.jpg 5\n2.jpg 6\n3.jpg 7\n4.jpg 8\n")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "000101.jpg").write_bytes(b"\xff\xd8 not really a photo")
    link = tmp_path / "hard_link.csv"
    os.link(table, link)
    sym = tmp_path / "symbolic.csv"
    sym.symlink_to(table)
    qi = ["--qi", "Male", "--k", "2"]
    return {
        "anonymize --out DATA": ["anonymize", table, *qi, "--out", table],
        "anonymize --out a hard link to DATA": ["anonymize", table, *qi, "--out", link],
        "anonymize --out a symbolic link to DATA": ["anonymize", table, *qi, "--out", sym],
        "anonymize --out X --report X": ["anonymize", table, *qi, "--out", tmp_path / "x.csv",
                                         "--report", tmp_path / "x.csv"],
        "anonymize --report the certificate": [
            "anonymize", table, *qi, "--out", tmp_path / "x.csv",
            "--report", tmp_path / "x.csv.certificate.json"],
        "anonymize --out the identities": ["anonymize", table, *qi, "--identities", ids,
                                           "--out", ids],
        "audit --output DATA": ["audit", table, "--qi", "Male", "--output", table],
        "audit --output a file of the glob": ["audit", tmp_path / "*.csv", "--qi", "Male",
                                              "--output", table],
        "predict --output a photo": ["predict", photos, "--output", photos / "000101.jpg"],
        "predict --output inside the photos": ["predict", photos, "--output",
                                               photos / "attrs.txt"],
        "report --output the certificate": ["report", ids, "--output", ids],
        "evaluate --output in the originals": ["evaluate", photos, photos, "--output",
                                               photos / "report.txt"],
        "perturb apply --out PHOTOS": ["perturb", "apply", table, photos, "--out", photos],
        "train stargan --checkpoint-dir PHOTOS": [
            "train", "stargan", "--images", photos, "--labels", table, "--checkpoint-dir",
            photos],
        "train attributes --out the labels": [
            "train", "attributes", "--images", photos, "--labels", table, "--out", table],
    }


@pytest.mark.parametrize("case", [
    "anonymize --out DATA", "anonymize --out a hard link to DATA",
    "anonymize --out a symbolic link to DATA", "anonymize --out X --report X",
    "anonymize --report the certificate", "anonymize --out the identities",
    "audit --output DATA", "audit --output a file of the glob", "predict --output a photo",
    "predict --output inside the photos", "report --output the certificate",
    "evaluate --output in the originals", "perturb apply --out PHOTOS",
    "train stargan --checkpoint-dir PHOTOS", "train attributes --out the labels"])
def test_an_output_that_is_an_input_or_another_output_exits_2_and_touches_nothing(
        tmp_path, table, case):
    args = _destructive_commands(tmp_path, table)[case]
    if "--report" in args or args[0] == "report":
        pytest.importorskip("matplotlib")  # HTML reports: the report extra is checked first
    photos = tmp_path / "photos"
    before, photos_before = snapshot(tmp_path), snapshot(photos)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "overwrite the input" in result.output or "name the same file" in result.output
    assert snapshot(tmp_path) == before
    assert snapshot(photos) == photos_before


def test_check_distinct_paths_sees_links_folders_and_other_outputs(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("a\n1\n")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    os.link(folder / "a.jpg", tmp_path / "linked.jpg")
    ok = {"DATA": source, "PHOTOS": folder}
    check_distinct_paths(ok, {"--out": tmp_path / "out.csv", "--report": tmp_path / "r.html",
                              "--none": None})
    for outputs, needle in [
        ({"--out": tmp_path / "sub" / ".." / "in.csv"}, "--out would overwrite the input DATA"),
        ({"--out": folder / "new.txt"}, "input PHOTOS"),
        ({"--out": folder}, "input PHOTOS"),
        ({"--out": tmp_path / "linked.jpg"}, "input PHOTOS"),
        ({"--out": tmp_path / "o.csv", "--report": tmp_path / "o.csv"}, "same file"),
    ]:
        with pytest.raises(InputError, match=needle):
            check_distinct_paths(ok, outputs)


# ------------------------------------------------- item 5: the table and its certificate together


def test_a_certificate_that_cannot_be_written_leaves_the_old_output_in_place(tmp_path, table):
    out = tmp_path / "out.csv"
    out.write_text("an earlier release\n")
    Path(f"{out}.certificate.json").mkdir()  # the certificate cannot be written there
    before = snapshot(tmp_path)
    result = invoke("anonymize", table, "--qi", "Male", "--k", "2", "--out", out)
    assert result.exit_code == 2, result.output
    assert snapshot(tmp_path) == before


def test_a_failed_rename_puts_back_what_was_already_replaced(tmp_path, monkeypatch):
    first, second = tmp_path / "a.json", tmp_path / "b.csv"
    first.write_text("old a")
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if Path(dst) == second:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(files_module.os, "replace", failing_replace)
    with pytest.raises(InputError, match="nothing was replaced"):
        with committed_together():
            atomic_write(first, lambda tmp: tmp.write_text("new a"))
            atomic_write(second, lambda tmp: tmp.write_text("new b"))
    assert first.read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


# ------------------------------------------------------ item 7: the suffix decides the format


@pytest.mark.parametrize("suffix, fmt", [(".parquet", "parquet"), (".tsv", "tsv"),
                                         (".csv", "csv")])
def test_the_output_suffix_decides_the_format_and_the_output_re_audits(tmp_path, table, suffix,
                                                                       fmt):
    out = tmp_path / f"y{suffix}"
    result = invoke("anonymize", table, "--qi", "Male,zip", "--sensitive", "identity", "--k", "2",
                    "--out", out)
    assert result.exit_code == 0, result.output
    head = out.read_bytes()[:4]
    assert (head == b"PAR1") == (fmt == "parquet")
    if fmt == "tsv":
        assert b"\t" in out.read_bytes().splitlines()[0]
    again = invoke("audit", out, "--qi", "Male,zip", "--sensitive", "identity", "--k", "2")
    assert again.exit_code == 0, again.output
    assert len(read_table(out)) == 4


def test_without_a_suffix_a_csv_input_is_written_as_csv(tmp_path, table):
    out = tmp_path / "released"
    assert invoke("anonymize", table, "--qi", "Male", "--k", "2", "--out", out).exit_code == 0
    assert cells(out) == cells(table)
    assert invoke("audit", out, "--qi", "Male", "--k", "2").exit_code == 0


def test_a_celeba_input_can_be_written_as_csv_and_re_audited(tmp_path):
    attrs = tmp_path / "list_attr_celeba.txt"
    attrs.write_text("4\nMale Young \n1.jpg 1 1\n2.jpg 1 -1\n3.jpg -1 1\n4.jpg -1 -1\n")
    out = tmp_path / "released.csv"
    result = invoke("anonymize", attrs, "--k", "2", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("image_id,Male,Young\n")
    assert invoke("audit", out, "--qi", "Male,Young", "--k", "2").exit_code == 0


@pytest.mark.parametrize("name, needle", [("y.xlsx", "'.xlsx'"), ("y", "no suffix"),
                                          ("y.txt", "CelebA input only")])
def test_an_unknown_output_suffix_exits_2_naming_it_and_the_supported_ones(tmp_path, table, name,
                                                                           needle):
    table = table.rename(table.with_suffix(".tsv"))  # no suffix: a TSV would read back as CSV
    table.write_text(TABLE.replace(",", "\t"))
    before = snapshot(tmp_path)
    result = invoke("anonymize", table, "--qi", "Male", "--k", "2", "--out", tmp_path / name)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert needle in text and ".csv, .tsv, .parquet" in text
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args, needle", [
    (["--output", "attrs.xlsx"], "'.xlsx'"),
    (["--all-faces", "--output", "faces.txt"], "'.txt'"),
])
def test_predict_refuses_a_suffix_it_cannot_write_before_any_work(tmp_path, args, needle):
    photos = tmp_path / "photos"
    photos.mkdir()
    args = [a if a.startswith("--") else tmp_path / a for a in args]
    result = invoke("predict", photos, *args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and ".parquet" in result.output


# -------------------------------------------- item 6: cells the anonymizer keeps are untouched


def test_cells_outside_the_quasi_identifiers_keep_their_exact_text(tmp_path, table):
    out = tmp_path / "o.csv"
    result = invoke("anonymize", table, "--qi", "Male", "--sensitive", "identity", "--k", "2",
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert cells(out) == cells(table)  # 02134, 007, 9007199254740993, an empty n


def test_with_epsilon_the_other_columns_still_keep_their_text(tmp_path, table):
    out = tmp_path / "o.csv"
    result = invoke("anonymize", table, "--qi", "Male", "--k", "2", "--epsilon", "1",
                    "--seed", "3", "--out", out)
    assert result.exit_code == 0, result.output
    got, want = cells(out), cells(table)
    male = want[0].index("Male")
    assert [[c for j, c in enumerate(r) if j != male] for r in got] == \
        [[c for j, c in enumerate(r) if j != male] for r in want]


_CELL = st.one_of(
    st.from_regex(r"0[0-9]{1,4}", fullmatch=True),  # leading zeros
    st.integers(-(2 ** 70), 2 ** 70).map(str),  # beyond int64 and float precision
    st.sampled_from(["", "1.0", "1", "1e3", "-0", "NA", "nan", "True", "x y", ' "q" ', "a,b",
                     "*", "  7"]),
    st.text(alphabet="ab,\" 01.-", max_size=6),
)


@st.composite
def _tables(draw):
    n = draw(st.integers(2, 9))
    rows = []
    for i in range(n):
        rows.append([f"{i}.jpg", draw(st.sampled_from(["1", "-1", "01", "1.0"])),
                     draw(st.sampled_from(["a", "b", ""])), draw(_CELL), draw(_CELL),
                     str(draw(st.integers(0, 3)))])
    return [["image_id", "Male", "Hat", "zip", "note", "identity"]] + rows


@pytest.mark.parametrize("in_sep, out_suffix", [(",", ".csv"), ("\t", ".tsv"), (",", ".tsv")])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_tables(), k=st.integers(1, 3))
def test_every_cell_not_generalised_comes_out_byte_identical(tmp_path, in_sep, out_suffix, rows,
                                                             k):
    source = tmp_path / ("in.csv" if in_sep == "," else "in.tsv")
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=in_sep, lineterminator="\n").writerows(rows)
    source.write_text(buffer.getvalue(), encoding="utf-8")
    out = tmp_path / f"out{out_suffix}"
    result = invoke("anonymize", source, "--qi", "Male,Hat", "--sensitive", "identity",
                    "--k", min(k, len(rows) - 1), "--out", out)
    assert result.exit_code == 0, result.output
    got = cells(out, "\t" if out_suffix == ".tsv" else ",")
    assert got[0] == rows[0] and len(got) == len(rows)
    for want_row, got_row in zip(rows[1:], got[1:]):
        for name, want, have in zip(rows[0], want_row, got_row):
            if name in ("Male", "Hat") and have == "*":
                continue  # generalised
            assert have == want, (name, want, have)
    # The re-audit of what was written meets the requirement the certificate states.
    cert = json.loads(Path(f"{out}.certificate.json").read_text())
    again = invoke("audit", out, "--qi", "Male,Hat", "--sensitive", "identity", "--format",
                   "json")
    assert json.loads(again.stdout)["metrics"]["k_anonymity"] >= cert["reached"]["k_anonymity"]


def test_read_table_text_keeps_every_cell(tmp_path, table):
    text = read_table_text(table)
    assert text.loc["1.jpg", "zip"] == "02134" and text.loc["2.jpg", "n"] == ""
    assert text.loc["1.jpg", "big"] == "9007199254740993"
    assert list(text.index) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    pd.testing.assert_index_equal(text.columns, read_table(table).columns)
