"""An ordered sensitive attribute is ordered as numbers, or by the order the user gives: never as
text. A column with a value that is not a number and no order given is refused (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from privface.cli.main import app
from privface.privmetrics import audit
from privface.privmetrics.anonymize import anonymize_table
from privface.privmetrics.closeness import t_closeness
from privface.privmetrics.contingency import contingency_table
from privface.privmetrics.counterfactuals import explain
from privface.base.errors import InputError
from privface.privmetrics.streaming import stream_contingency
from privface.privmetrics.views import class_view


runner = CliRunner()
LEVELS = ["young", "mid", "old"]


def _audit_json(*args: str):
    result = runner.invoke(app, ["audit", *args, "--format", "json"])
    return result, (json.loads(result.output) if result.exit_code in (0, 1) else None)


@pytest.fixture
def ages_with_a_question_mark(tmp_path: Path) -> Path:
    """The issue's repro: ages and one '?' cell, which made pandas read the column as text."""
    path = tmp_path / "ages.csv"
    path.write_text("g,age\na,5\na,10\na,20\na,30\nb,40\nb,50\nb,60\nb,?\n")
    return path


@pytest.mark.parametrize("engine", [[], ["--chunk-rows", "3"]])
def test_ordered_column_with_a_non_number_exits_2_naming_column_and_value(
        ages_with_a_question_mark, engine):
    result = runner.invoke(app, ["audit", str(ages_with_a_question_mark), "--qi", "g",
                                 "--sensitive", "age", "--ordered", "age", "--t", "0.15",
                                 *engine])
    assert result.exit_code == 2, result.output
    assert "'age'" in result.output and "'?'" in result.output
    assert "--order age=" in result.output


def test_library_refuses_an_ordered_column_of_words_without_an_order():
    df = pd.DataFrame({"g": [1, 1, 2, 2], "level": ["young", "old", "mid", "old"]})
    for call in (lambda: t_closeness(df, ["g"], "level", ordered="level"),
                 lambda: audit(df, ["g"], "level", t=0.5, ordered="level"),
                 lambda: contingency_table(df, ["g"], "level", ordered=["level"]),
                 lambda: anonymize_table(df, ["g"], "level", t=0.5, ordered="level")):
        with pytest.raises(InputError, match="not every value is a number") as info:
            call()
        assert info.value.column == "level"


def test_numbers_stored_as_text_are_ordered_as_numbers(ref):
    """'10' < '5' as text; as numbers 5 < 10 < 20 < 40, which the ordered distance needs."""
    numbers = pd.DataFrame({"g": [1, 1, 2, 2], "age": [5, 10, 20, 40]})
    text = numbers.assign(age=numbers["age"].astype(str))
    expected = ref.t_closeness(numbers, ["g"], "age", ordered="age")
    assert t_closeness(text, ["g"], "age", ordered="age") == pytest.approx(expected, rel=1e-12)
    assert t_closeness(numbers, ["g"], "age", ordered="age") == pytest.approx(expected, rel=1e-12)


@st.composite
def level_tables(draw):
    n = draw(st.integers(2, 30))
    g = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    level = draw(st.lists(st.sampled_from(LEVELS + [None]), min_size=n, max_size=n))
    return pd.DataFrame({"g": g, "level": pd.Series(level, dtype=object)})


@given(level_tables())
def test_an_explicit_order_gives_the_brute_force_ordered_emd(ref, df):
    """ordered={"level": [young, mid, old]} measures what the brute force measures over the same
    order (a category dtype in that order: the reference's own ordering), per class too."""
    as_category = df.assign(level=pd.Categorical(df["level"], categories=LEVELS))
    expected = ref.t_closeness(as_category, ["g"], "level", ordered="level")
    order = {"level": LEVELS}
    assert t_closeness(df, ["g"], "level", ordered=order) == pytest.approx(expected, abs=1e-12)
    report = audit(df, ["g"], "level", ordered=order)
    assert report.metrics["t_closeness"] == pytest.approx(expected, abs=1e-12)
    assert report.parameters["ordered"] == ["level"]
    per_class = ref.ordered_emd_per_class(as_category, ["g"], "level")
    view = class_view(df, ["g"], "level", ordered=order)
    for g, emd in zip(view["g"], view["level.t_closeness"]):
        assert emd == pytest.approx(per_class[(g,)], abs=1e-12)


def test_order_on_the_command_line_gives_the_brute_force_emd(tmp_path, ref):
    df = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "b", "b"],
                       "age": ["young", "young", "mid", "mid", "old", "old", "old"]})
    path = tmp_path / "levels.csv"
    df.to_csv(path, index=False)
    expected = ref.t_closeness(df.assign(age=pd.Categorical(df["age"], categories=LEVELS)),
                               ["g"], "age", ordered="age")
    assert expected == pytest.approx(17 / 42)  # "mid" < "old" < "young" (as text) gives 9/42
    for engine in ([], ["--chunk-rows", "2"]):
        result, report = _audit_json(str(path), "--qi", "g", "--sensitive", "age", "--order",
                                     "age=young,mid,old", *engine)
        assert result.exit_code == 0, result.output
        assert report["metrics"]["t_closeness"] == pytest.approx(expected, abs=1e-12)
        assert report["parameters"]["ordered"] == ["age"]
    result, _ = _audit_json(str(path), "--qi", "g", "--sensitive", "age", "--order",
                            "age=young,old")
    assert result.exit_code == 2
    assert "'mid' is not in the order" in result.output


def test_a_ground_distance_matrix_replaces_the_order(tmp_path, ages_with_a_question_mark):
    """--ordered with a matrix for the same column: the matrix measures it, nothing is refused."""
    values = ["5", "10", "20", "30", "40", "50", "60", "?"]
    matrix = tmp_path / "ground.csv"
    pd.DataFrame([[abs(i - j) / 7 for j in range(8)] for i in range(8)], index=values,
                 columns=values).to_csv(matrix)
    result, report = _audit_json(str(ages_with_a_question_mark), "--qi", "g", "--sensitive",
                                 "age", "--ordered", "age", "--ground-distance",
                                 f"age={matrix}")
    assert result.exit_code == 0, result.output
    # |i - j| / (m - 1) over the values in this order is the ordered distance in that order.
    df = pd.read_csv(ages_with_a_question_mark, dtype=str)
    expected = t_closeness(df, ["g"], "age", ordered={"age": values})
    assert report["metrics"]["t_closeness"] == pytest.approx(expected, abs=1e-9)


def test_explicit_order_survives_explain_and_chunked_counting(tmp_path):
    df = pd.DataFrame({"g": [1, 1, 2, 2, 3, 3], "h": [1, 2, 1, 2, 1, 2],
                       "level": ["young", "young", "mid", "old", "old", "old"]})
    order = {"level": LEVELS}
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    counted = stream_contingency([path], ["g", "h"], ["level"], ordered=order, chunk_rows=2)
    assert list(counted["level"].values) == LEVELS
    assert t_closeness(counted) == pytest.approx(t_closeness(df, ["g", "h"], "level",
                                                             ordered=order))
    e = explain(df, ["g", "h"], "level", t=0.3, ordered=order)
    for cf in e.counterfactuals:
        kept = [q for q in ["g", "h"] if q not in cf.generalise]
        whole = t_closeness(df.assign(one=0), kept or ["one"], "level", ordered=order)
        assert cf.metrics["t_closeness"] == pytest.approx(whole)


@pytest.mark.parametrize("order, message", [
    ({"level": "young,mid,old"}, "list of its values"),
    ({"level": ["young", "young", "old"]}, "listed twice"),
    ({"level": []}, "each value once"),
])
def test_a_bad_order_is_an_input_error(order, message):
    df = pd.DataFrame({"g": [1, 2], "level": ["young", "old"]})
    with pytest.raises(InputError, match=message):
        t_closeness(df, ["g"], "level", ordered=order)


def test_anonymize_takes_the_same_order(tmp_path):
    """privface anonymize: --ordered on words exits 2 before any output; --order measures t over
    the order given, and its certificate re-audits with the same order."""
    df = pd.DataFrame({"g": [1, 1, 1, 2, 2, 2, 3, 3], "h": [1, 2, 1, 2, 1, 2, 1, 2],
                       "level": ["young", "mid", "old", "old", "old", "mid", "young", "mid"]})
    path = tmp_path / "levels.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    args = ["anonymize", str(path), "--qi", "g,h", "--sensitive", "level", "--t", "0.3",
            "--out", str(out)]
    refused = runner.invoke(app, [*args, "--ordered", "level"])
    assert refused.exit_code == 2 and "'level'" in refused.output and not out.exists()
    result = runner.invoke(app, [*args, "--order", "level=young,mid,old"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, dtype=str)
    assert audit(written, ["g", "h"], "level", t=0.3, ordered={"level": LEVELS}).passed
