"""Chunked counting: a table counted in pieces gives the contingency table (and the report) of the
whole table in memory, for any chunking, any dtype, missing values, several and ordered SAs; files
read in chunks (CSV, Parquet, globs) audit like the in-memory reader; bad input names the file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from typer.testing import CliRunner

from privface.cli.main import app
from privface.privmetrics import (InputError, audit, class_view, contingency_table, explain,
                                  record_view)
from privface.privmetrics.cell_counts import add_up, count_cells, merge_counts, to_contingency
from privface.privmetrics.readers import read_table
from privface.privmetrics.streaming import (TablePiece, find_files, iter_chunks, plan_pieces,
                                            stream_contingency)

REQUIREMENTS = dict(k=3, l=2, entropy_l=1.5, c=2, t=0.3, beta=1, enhanced_beta=1, delta=1)


def _metrics_properties():
    """The random-table strategy of test_metrics_properties (every dtype a user may hand us)."""
    name = "privface_tests_metrics_properties"
    if name not in sys.modules:
        path = Path(__file__).with_name("test_metrics_properties.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def faces(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    """CelebA-like binary QIs with missing values, a nominal, a text and an ordered SA."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "Male": rng.choice([1, -1], n).astype("int8"),
        "Young": rng.choice([1, -1], n, p=[0.8, 0.2]).astype("int8"),
        "Eyeglasses": rng.choice([1.0, -1.0, np.nan], n, p=[0.1, 0.85, 0.05]),
        "hair": rng.choice(["black", "blond", None], n).astype(object),
        "hat": rng.choice([True, False], n),
        "identity": rng.integers(0, 400, n),
        "age_band": rng.choice([1, 2, 3, 4, 5], n),
        "mood": rng.choice(["calm", "happy", None], n).astype(object),
    })


QI = ["Male", "Young", "Eyeglasses", "hair", "hat"]
SA = ["identity", "age_band", "mood"]


def chunked(df: pd.DataFrame, bounds, qi, sa, ordered=()):
    parts = [count_cells(df.iloc[a:b], qi, sa) for a, b in zip(bounds[:-1], bounds[1:])]
    return to_contingency(merge_counts(parts), ordered=ordered)


def assert_same_table(ct, expected) -> None:
    """Two contingency tables hold the same classes, values and cells, in the same order."""
    assert ct.n_records == expected.n_records
    np.testing.assert_array_equal(ct.class_keys, expected.class_keys)
    np.testing.assert_array_equal(ct.class_sizes, expected.class_sizes)
    pd.testing.assert_frame_equal(ct.class_values(), expected.class_values())
    for name in expected.sensitive:
        a, b = ct[name], expected[name]
        assert a.ordered == b.ordered
        pd.testing.assert_index_equal(a.values, b.values)
        for field in ["overall", "cell_class", "cell_value", "cell_count", "class_start"]:
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_chunked_counts_equal_the_whole_table():
    df = faces()
    expected = contingency_table(df, QI, SA, ordered="age_band")
    for bounds in ([0, len(df)], [0, 1, 2, 1500, len(df)], list(range(0, len(df) + 1, 250))):
        assert_same_table(chunked(df, bounds, QI, SA, ordered="age_band"), expected)


def test_chunked_audit_report_is_identical():
    df = faces()
    whole = audit(df, QI, SA, ordered="age_band", power=True, **REQUIREMENTS)
    ct = chunked(df, [0, 700, 701, 2999, len(df)], QI, SA, ordered="age_band")
    report = audit(ct, QI, SA, power=True, **REQUIREMENTS)
    assert not whole.passed and whole.failed  # the report has failing classes to compare
    assert report.to_json() == whole.to_json()
    assert report.to_text() == whole.to_text()
    assert explain(ct, QI, SA, **REQUIREMENTS).to_dict() == \
        explain(df, QI, SA, ordered="age_band", **REQUIREMENTS).to_dict()
    pd.testing.assert_frame_equal(class_view(ct), class_view(df, QI, SA, ordered="age_band"))


def test_without_sensitive_attributes():
    df = faces()
    ct = chunked(df, [0, 10, len(df)], QI, [])
    assert_same_table(ct, contingency_table(df, QI))
    assert audit(ct, QI, k=2).to_json() == audit(df, QI, k=2).to_json()


@pytest.mark.slow
@given(_metrics_properties().tables(max_rows=30, min_sa=0), st.data())
def test_any_chunking_gives_the_counts_of_the_whole_table(table, data):
    df, qi, sa = table
    cuts = data.draw(st.lists(st.integers(0, len(df)), max_size=5), label="cuts")
    bounds = sorted({0, len(df), *cuts})
    ordered = data.draw(_metrics_properties().orderable_subset(sa), label="ordered")
    note(f"chunks: {bounds}, ordered: {ordered}")
    expected = contingency_table(df, qi, sa, ordered=ordered)
    ct = chunked(df, bounds, qi, sa, ordered=ordered)
    assert_same_table(ct, expected)
    req = {"k": 2, "l": 2, "t": 0.5} if sa else {"k": 2}
    report, expected_report = audit(ct, qi, sa, **req), audit(df, qi, sa, ordered=ordered, **req)
    assert report.to_json() == expected_report.to_json()
    assert report.to_text() == expected_report.to_text()


def test_add_up_merges_in_any_grouping():
    df = faces(n=500)
    pieces = [count_cells(df.iloc[i:i + 7], QI, SA) for i in range(0, len(df), 7)]
    small = to_contingency(add_up(iter(pieces), buffer_cells=1))
    large = to_contingency(add_up(iter(pieces), buffer_cells=10 ** 9))
    assert_same_table(small, contingency_table(df, QI, SA))
    assert_same_table(large, contingency_table(df, QI, SA))
    with pytest.raises(InputError, match="no pieces"):
        add_up(iter([]))


def test_renumbered_keys_still_give_the_same_power_and_counterfactuals():
    # Seven wide QIs: the product of their cardinalities passes 2**62, so the class keys are
    # re-numbered and power/counterfactuals regroup rows, which a counted table does not have.
    rng = np.random.default_rng(3)
    n = 1000
    qi = [f"q{i}" for i in range(7)]
    df = pd.DataFrame({q: rng.integers(0, 10 ** 6, n) for q in qi})
    df.loc[: n // 2, qi[1:]] = 7  # half the rows differ only in q0, which has 3 values there
    df.loc[: n // 2, "q0"] = rng.integers(0, 3, n // 2 + 1)
    df.loc[n // 2 - 20: n // 2, "q2"] = np.arange(21) + 100  # uniques only through q2
    df["s"] = rng.integers(0, 4, n)
    ct = chunked(df, [0, 100, 333, n], qi, ["s"])
    assert ct.row_keys.radices is None
    whole = audit(df, qi, "s", k=2, l=2, power=True)
    assert whole.distinguishing_power["uniques_removed"].max() > 0
    assert audit(ct, qi, "s", k=2, l=2, power=True).to_json() == whole.to_json()
    assert explain(ct, qi, "s", k=2).to_dict() == explain(df, qi, "s", k=2).to_dict()


def test_per_record_views_need_the_rows():
    df = faces(n=50)
    ct = chunked(df, [0, 25, 50], QI, SA)
    with pytest.raises(InputError, match="built from counts"):
        record_view(ct)


def test_ordered_attribute_must_be_sensitive():
    counts = count_cells(faces(n=20), QI, SA)
    with pytest.raises(InputError, match="declared ordered but not a sensitive attribute"):
        to_contingency(counts, ordered="Male")


# --- files -------------------------------------------------------------------------------------

def write_parts(df: pd.DataFrame, folder: Path, suffix: str, parts: int = 3) -> str:
    bounds = np.linspace(0, len(df), parts + 1).astype(int)
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = df.iloc[a:b]
        path = folder / f"part-{i}.{suffix}"
        if suffix == "parquet":
            part.to_parquet(path, row_group_size=300)
        else:
            part.to_csv(path, index=False)
    return str(folder / f"part-*.{suffix}")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("chunk_rows", [None, 97, 1_000_000])
def test_files_in_chunks_audit_like_the_table_in_memory(tmp_path, suffix, chunk_rows):
    df = faces()
    pattern = write_parts(df, tmp_path, suffix)
    whole = pd.concat([read_table(f) for f in find_files(pattern)], ignore_index=True)
    ct = stream_contingency(pattern, QI, SA, ordered="age_band", chunk_rows=chunk_rows)
    assert_same_table(ct, contingency_table(whole, QI, SA, ordered="age_band"))
    assert audit(ct, QI, SA, **REQUIREMENTS).to_json() == \
        audit(whole, QI, SA, ordered="age_band", **REQUIREMENTS).to_json()


def test_csv_chunks_with_different_dtypes_add_up_as_the_whole_file(tmp_path):
    # Missing values only in the last chunk: that chunk is float, the others int, and the sum
    # must be float like the whole file read at once.
    path = tmp_path / "faces.csv"
    path.write_text("Male,score\n" + "1,2\n-1,3\n" * 50 + "1,\n-1,2\n")
    whole = read_table(path)
    assert whole["score"].dtype == np.float64
    ct = stream_contingency(path, ["Male"], "score", chunk_rows=10)
    assert_same_table(ct, contingency_table(whole, ["Male"], "score"))
    assert audit(ct, ["Male"], "score", l=2).to_text() == \
        audit(whole, ["Male"], "score", l=2).to_text()


def test_parquet_pieces_split_at_row_groups(tmp_path):
    path = tmp_path / "faces.parquet"
    faces(n=1000).to_parquet(path, row_group_size=100)
    pieces = plan_pieces([path], piece_rows=250)
    assert [p.row_groups for p in pieces] == [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9,)]
    rows = [len(c) for p in pieces for c in iter_chunks(p, ["Male"], chunk_rows=64)]
    assert sum(rows) == 1000 and max(rows) <= 64


def test_misspelt_column_in_one_file_names_the_file(tmp_path):
    df = faces(n=40)
    write_parts(df, tmp_path, "csv", parts=2)
    (tmp_path / "part-1.csv").write_text(
        df.rename(columns={"Male": "male"}).to_csv(index=False))
    with pytest.raises(InputError) as caught:
        stream_contingency(str(tmp_path / "part-*.csv"), QI, SA)
    assert caught.value.file == str(tmp_path / "part-1.csv")
    assert caught.value.column == "Male"
    with pytest.raises(InputError) as in_memory:
        audit(read_table(tmp_path / "part-1.csv"), QI, SA)
    assert caught.value.message == in_memory.value.message  # "...; did you mean male? ..."


def test_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text("Male,identity\n" + "1,2\n" * 30 + "1,2,3\n" + "1,2\n" * 5)
    with pytest.raises(InputError) as caught:
        stream_contingency(path, ["Male"], "identity", chunk_rows=7)
    assert (caught.value.file, caught.value.row) == (str(path), 32)
    assert "malformed CSV" in caught.value.message


@pytest.mark.parametrize("chunk_rows", [None, 5])
def test_header_without_rows(tmp_path, chunk_rows):
    path = tmp_path / "faces.csv"
    path.write_text("Male,identity\n")
    with pytest.raises(InputError, match="header but no rows") as caught:
        stream_contingency(path, ["Male"], "identity", chunk_rows=chunk_rows)
    assert caught.value.file == str(path)


def test_celeba_file_is_checked_as_in_memory(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("2\nMale Young\n000001.jpg 1 -1\n000002.jpg 2 1\n")
    with pytest.raises(InputError) as caught:
        stream_contingency(path, ["Male"])
    with pytest.raises(InputError) as in_memory:
        read_table(path)
    assert str(caught.value) == str(in_memory.value)


def test_no_matching_file_and_bad_chunk_rows(tmp_path):
    with pytest.raises(InputError, match="no file matches"):
        stream_contingency(str(tmp_path / "*.parquet"), ["Male"])
    with pytest.raises(InputError, match="chunk_rows"):
        stream_contingency(str(tmp_path / "x.csv"), ["Male"], chunk_rows=0)


def test_image_index_column_is_not_a_column(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text("image_id,Male\n1.jpg,1\n2.jpg,-1\n")
    piece = TablePiece(path, "csv")
    assert [list(c.columns) for c in iter_chunks(piece, ["Male"], chunk_rows=1)] == [["Male"]] * 2
    with pytest.raises(InputError, match="no such quasi-identifier"):
        stream_contingency(path, ["image_id"])


# --- command line ------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_chunked_glob_report_equals_in_memory(tmp_path):
    df = faces()
    whole = tmp_path / "whole.parquet"
    df.to_parquet(whole)
    pattern = write_parts(df, tmp_path, "parquet")
    args = ["--qi", ",".join(QI), "--sensitive", ",".join(SA), "--ordered", "age_band",
            "--k", "3", "--l", "2", "--format", "json"]
    memory = runner.invoke(app, ["audit", str(whole), *args])
    streamed = runner.invoke(app, ["audit", pattern, *args])
    chunks = runner.invoke(app, ["audit", str(whole), "--chunk-rows", "512", *args])
    assert memory.exit_code == streamed.exit_code == chunks.exit_code == 1, streamed.output
    expected = json.loads(memory.output)
    for result, source in [(streamed, pattern), (chunks, str(whole))]:
        got = json.loads(result.output)
        assert got.pop("source") == source
        expected.pop("source", None)
        assert got == expected


def test_cli_bad_input_in_chunked_mode(tmp_path):
    pattern = write_parts(faces(n=60), tmp_path, "csv")
    result = runner.invoke(app, ["audit", pattern, "--qi", "Male,Yung"])
    assert result.exit_code == 2
    assert "part-0.csv" in result.output and "did you mean Young" in result.output
    result = runner.invoke(app, ["audit", str(tmp_path / "none-*.csv"), "--qi", "Male"])
    assert result.exit_code == 2 and "no file matches" in result.output
    result = runner.invoke(app, ["audit", "--demo", "--chunk-rows", "10"])
    assert result.exit_code == 2 and "--chunk-rows" in result.output
    result = runner.invoke(app, ["audit", pattern, "--qi", "Male", "--chunk-rows", "0"])
    assert result.exit_code == 2
