"""Engine behaviour beyond the metric values: encoding, errors, audit verdicts, views, power."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import pandas as pd
import pytest

from privface.privmetrics import (InputError, Requirements, audit, class_view, contingency_table,
                                  distinguishing_power, k_anonymity, l_diversity, record_view,
                                  t_closeness)
from privface.privmetrics.encoding import combine_codes, encode_column, encode_rows


def _schema() -> dict:
    text = resources.files("privface.privmetrics").joinpath("schema/audit-v1.json").read_text()
    return json.loads(text)


# --- encoding ------------------------------------------------------------------------------


def test_two_valued_integers_take_one_bit():
    codes = encode_column(pd.Series([1, -1, -1, 1], dtype="int8"))
    assert codes.cardinality == 2
    assert codes.codes.tolist() == [1, 0, 0, 1]


def test_missing_values_are_one_value_of_their_own():
    s = pd.Series(["a", None, np.nan, "a", pd.NA], dtype=object)
    codes = encode_column(s)
    assert codes.cardinality == 2
    assert codes.codes[1] == codes.codes[2] == codes.codes[4] != codes.codes[0]


def test_category_missing_gets_the_last_code():
    s = pd.Series(pd.Categorical(["lo", None, "hi"], categories=["lo", "hi"], ordered=True))
    codes = encode_column(s)
    assert codes.codes.tolist() == [0, 2, 1]


def test_keys_that_overflow_64_bits_are_renumbered_and_stay_exact():
    rng = np.random.default_rng(1)
    n = 2000
    # 6 columns of ~1e6 distinct values: the product of cardinalities is far beyond 2**63.
    df = pd.DataFrame({f"c{j}": rng.integers(0, 10**12, n) for j in range(6)})
    df.iloc[1] = df.iloc[0]
    keys = encode_rows(df, list(df.columns))
    assert keys.radices is None
    assert keys.keys[0] == keys.keys[1]
    assert len(np.unique(keys.keys)) == len(df.drop_duplicates())


def test_radices_reconstruct_the_key():
    df = pd.DataFrame({"a": [0, 1, 2, 1], "b": ["x", "y", "x", "y"],
                       "c": [True, False, True, True]})
    keys = encode_rows(df, ["a", "b", "c"])
    rebuilt = sum(col.codes.astype(np.int64) * r for col, r in zip(keys.columns, keys.radices))
    assert rebuilt.tolist() == keys.keys.tolist()


def test_many_narrow_columns_fold_through_the_accumulator():
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.integers(0, 3, size=(500, 30)), columns=[f"q{j}" for j in range(30)])
    keys = encode_rows(df, list(df.columns)).keys
    assert len(np.unique(keys)) == len(df.drop_duplicates())
    dup_rows = df.duplicated(keep=False).to_numpy()
    assert (pd.Series(keys).duplicated(keep=False).to_numpy() == dup_rows).all()


def test_combine_codes_of_no_column_is_one_class():
    assert combine_codes([], 3).keys.tolist() == [0, 0, 0]


# --- input errors --------------------------------------------------------------------------


def test_missing_column_is_named_with_suggestion():
    df = pd.DataFrame({"Male": [1], "Smiling": [1]})
    with pytest.raises(InputError) as err:
        k_anonymity(df, ["Mlae"])
    assert err.value.column == "Mlae"
    assert "did you mean Male" in str(err.value)


def test_column_cannot_be_both_qi_and_sensitive():
    df = pd.DataFrame({"Male": [1], "Smiling": [1]})
    with pytest.raises(InputError, match="both a quasi-identifier and a sensitive"):
        contingency_table(df, ["Male"], ["Male"])


def test_empty_table_is_an_input_error():
    with pytest.raises(InputError, match="no rows"):
        k_anonymity(pd.DataFrame({"Male": pd.Series([], dtype="int8")}), ["Male"])


def test_sensitive_metric_without_sensitive_attribute():
    with pytest.raises(InputError, match="needs a sensitive attribute"):
        l_diversity(pd.DataFrame({"Male": [1, 1]}), ["Male"])


def test_ordered_attribute_must_be_sensitive_and_numeric():
    df = pd.DataFrame({"Male": [1, 1], "mix": ["a", 1]})
    with pytest.raises(InputError, match="not a sensitive attribute"):
        t_closeness(df, ["Male"], "mix", ordered="Male")
    with pytest.raises(InputError, match="not every value is a number"):
        t_closeness(df, ["Male"], "mix", ordered="mix")


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 2.5}, {"t": 1.5}, {"l": -1}, {"c": 0},
                                    {"delta": -1}, {"entropy_l": 0.5}, {"k": True}])
def test_bad_requirements_are_rejected_early(kwargs):
    with pytest.raises(InputError, match="requirement"):
        Requirements(**kwargs)


def test_requirement_on_sensitive_metric_needs_a_sensitive_attribute():
    with pytest.raises(InputError, match="need a sensitive attribute"):
        audit(pd.DataFrame({"Male": [1, 1]}), ["Male"], t=0.2)


# --- audit verdicts ------------------------------------------------------------------------


@pytest.fixture
def faces() -> pd.DataFrame:
    return pd.DataFrame({
        "Male":     [1, 1, 1, 1, -1, -1, -1, -1, -1],
        "Young":    [1, 1, 1, 1, 1, 1, 1, -1, -1],
        "identity": [1, 2, 3, 3, 4, 5, 6, 7, 7],
        "smile":    ["y", "n", "y", "n", "y", "y", "n", "y", "n"],
    }, index=[f"{i:06d}.jpg" for i in range(9)])


def test_audit_counts_the_records_that_break_each_requirement(faces):
    report = audit(faces, ["Male", "Young"], ["identity", "smile"], k=3, l=2)
    by = {r.metric: r for r in report.requirements}
    # Classes: (1,1) x4, (-1,1) x3, (-1,-1) x2 -> only the last breaks k=3.
    assert by["k_anonymity"].records_failing == 2
    assert by["k_anonymity"].classes_failing == 1
    # identity is 7,7 in class (-1,-1): l = 1 there; every other class has >= 2 identities.
    assert by["l_diversity"].records_failing == 2
    assert by["l_diversity"].sensitive == "identity"
    assert not report.passed
    assert report.metrics["k_anonymity"] == 2
    assert report.by_sensitive["smile"]["l_diversity"] == 2
    assert report.metrics["l_diversity"] == 1


def test_audit_without_requirements_passes_and_measures(faces):
    report = audit(faces, ["Male", "Young"], ["identity"])
    assert report.passed and report.requirements == []
    assert report.metrics["uniques"] == 0
    assert report.risk.highest == pytest.approx(1 / 2)
    assert report.risk.average == pytest.approx(3 / 9)


def test_audit_passes_exactly_at_the_threshold(faces):
    assert audit(faces, ["Male", "Young"], ["smile"], k=2).passed
    assert not audit(faces, ["Male", "Young"], ["smile"], k=3).passed
    t = audit(faces, ["Male", "Young"], ["smile"]).metrics["t_closeness"]
    assert audit(faces, ["Male", "Young"], ["smile"], t=t).passed
    assert not audit(faces, ["Male", "Young"], ["smile"], t=t * 0.999).passed


def test_recursive_requirement_uses_l_and_c(faces):
    # Class (1,1) has identities 1,2,3,3: r = (2,1,1). (c=2, l=2): 2 < 2*(1+1) holds.
    report = audit(faces.iloc[:4], ["Male"], ["identity"], c=2, l=2)
    assert report.passed
    report = audit(faces.iloc[:4], ["Male"], ["identity"], c=1, l=2)
    assert not report.passed
    assert report.requirements[-1].asked == 2


def test_worst_classes_list_the_breaking_classes_first(faces):
    report = audit(faces, ["Male", "Young"], ["identity"], k=3, worst=2)
    top = report.worst_classes.iloc[0]
    assert (top["Male"], top["Young"], top["size"]) == (-1, -1, 2)
    assert top["breaks"] == "k"
    assert len(report.worst_classes) == 2


def test_json_report_follows_the_schema(faces):
    report = audit(faces, ["Male", "Young"], ["identity", "smile"], k=3, l=2, delta=1, power=True)
    payload = json.loads(report.to_json())
    jsonschema.validate(payload, _schema())
    assert payload["metrics"]["delta_disclosure"] == "inf"
    assert payload["by_sensitive"]["identity"]["delta_disclosure"] == "inf"
    assert set(payload["metrics"]) == {
        "k_anonymity", "l_diversity", "entropy_l_diversity", "recursive_c_l_diversity",
        "t_closeness", "basic_beta_likeness", "enhanced_beta_likeness", "delta_disclosure",
        "max_prosecutor_risk", "uniques"}


def test_json_report_without_sensitive_attribute_has_null_sa_metrics(faces):
    payload = audit(faces, ["Male"]).to_dict()
    jsonschema.validate(payload, _schema())
    assert payload["metrics"]["l_diversity"] is None
    assert payload["by_sensitive"] == {}


def test_text_report_states_verdict_and_failures(faces):
    text = audit(faces, ["Male", "Young"], ["identity"], k=3).to_text()
    assert text.startswith("privface audit: FAILED")
    assert "FAIL k-anonymity" in text
    assert "2 records / 1 classes break it" in text


# --- views ---------------------------------------------------------------------------------


def test_record_view_flags_records_in_breaking_classes(faces):
    view = record_view(faces, ["Male", "Young"], ["identity"], requirements=Requirements(k=3, l=2))
    assert list(view.index) == list(faces.index)
    broken = view.index[view["breaks_any"]].tolist()
    assert broken == ["000007.jpg", "000008.jpg"]
    assert view.loc["000000.jpg", "risk"] == pytest.approx(1 / 4)


def test_record_view_ignores_duplicate_index_labels(faces):
    dup = faces.set_axis(["x"] * len(faces))
    view = record_view(dup, ["Male", "Young"], requirements=Requirements(k=3))
    assert view["breaks_k"].sum() == 2


def test_class_view_has_one_row_per_class(faces):
    view = class_view(faces, ["Male", "Young"], ["identity", "smile"])
    assert len(view) == 3
    assert view["size"].sum() == len(faces)
    assert {"identity.t_closeness", "smile.entropy_l_diversity"} <= set(view.columns)


# --- distinguishing power ------------------------------------------------------------------


def test_distinguishing_power_matches_regrouping_without_the_attribute():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.integers(0, 2, size=(300, 6)), columns=list("abcdef"))
    dp = distinguishing_power(df, list(df.columns)).set_index("attribute")
    for col in df.columns:
        rest = [c for c in df.columns if c != col]
        sizes = df.groupby(rest).size()
        assert dp.loc[col, "k"] == sizes.min()
        assert dp.loc[col, "uniques"] == (sizes == 1).sum()


def test_distinguishing_power_without_radices_falls_back_to_regrouping():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({f"c{j}": rng.integers(0, 10**12, 50) for j in range(6)})
    df["b"] = rng.integers(0, 2, 50)
    dp = distinguishing_power(df, list(df.columns)).set_index("attribute")
    assert (dp["uniques"] == 50).all()  # every row stays unique without any one column
