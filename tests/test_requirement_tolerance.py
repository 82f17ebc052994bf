"""Verdicts do not turn on the last bit of a float: a table that meets a requirement exactly meets
it, whatever rounding its metric picked up (privmetrics/compare.py, docs/metrics.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from privface.privmetrics import audit
from privface.privmetrics.anonymity import reidentification_risk
from privface.privmetrics.anonymize import anonymize_table
from privface.privmetrics.audit import Requirements
from privface.privmetrics.compare import TOLERANCE
from privface.privmetrics.counterfactuals import explain
from privface.privmetrics.diversity import recursive_c_l_diversity
from privface.privmetrics.ppas import select_attributes
from privface.privmetrics.views import class_view, record_view


@given(st.integers(1, 50), st.integers(1, 3), st.integers(0, 3))
def test_m_equally_likely_values_meet_entropy_l_of_m(m, repeat, other_classes):
    """A class with m equally frequent values has entropy l exactly m (computed: 6.999999999999998
    for m = 7): every verdict on entropy_l = m holds, and one a little above m fails."""
    values = list(range(m)) * repeat
    rows = [(0, v) for v in values]
    for c in range(1, other_classes + 1):  # classes with more values, which meet m as well
        rows += [(c, v) for v in range(m + c)] * repeat
    df = pd.DataFrame(rows, columns=["q", "s"])
    report = audit(df, ["q"], "s", entropy_l=m, l=m)
    assert report.passed, report.to_text()
    text = report.to_text()
    assert "FAIL" not in text and "ok   entropy l-diversity" in text
    requirements = Requirements(entropy_l=m)
    assert not class_view(df, ["q"], "s", requirements=requirements)["breaks_entropy_l"].any()
    assert not record_view(df, ["q"], "s", requirements=requirements)["breaks_any"].any()
    assert explain(df, ["q"], "s", entropy_l=m).passed
    above = m * (1 + 1e-6)
    assert not audit(df, ["q"], "s", entropy_l=above).passed
    assert not explain(df, ["q"], "s", entropy_l=above).passed


@st.composite
def tables(draw):
    n_values = draw(st.integers(2, 6))
    n = draw(st.integers(2, 40))
    q = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    s = draw(st.lists(st.integers(0, n_values - 1), min_size=n, max_size=n))
    df = pd.DataFrame({"q": q, "s": s})
    note(repr(df))
    return df


@given(tables(), st.booleans())
def test_a_bound_equal_to_the_brute_force_value_is_met(ref, df, ordered):
    """t, beta, enhanced beta and delta asked at the brute-force value (the same number, rounded
    another way) hold; asked a little below it, they fail."""
    sa = "s"
    asked = {
        "t": ref.t_closeness(df, ["q"], sa, ordered=sa if ordered else ()),
        "beta": ref.basic_beta_likeness(df, ["q"], sa),
        "enhanced_beta": ref.enhanced_beta_likeness(df, ["q"], sa),
        "delta": ref.delta_disclosure(df, ["q"], sa),
    }
    order = ["s"] if ordered else []
    for key, value in asked.items():
        if not np.isfinite(value):
            continue
        note(f"{key} = {value!r}")
        assert audit(df, ["q"], sa, ordered=order, **{key: value}).passed, key
        assert not class_view(df, ["q"], sa, ordered=order, requirements=Requirements(
            **{key: value}))[f"breaks_{key}"].any(), key
        if value > 1e-6:
            below = value * (1 - 1e-6) - 1e-9
            assert not audit(df, ["q"], sa, ordered=order, **{key: below}).passed, key


@given(tables())
def test_anonymize_keeps_every_class_of_a_table_that_meets_t_exactly(ref, df):
    """Merging classes never raises the EMD above the largest part's, so a table whose every class
    meets t needs no generalisation: anonymize_table's judge of parts compares as the audit."""
    t = ref.t_closeness(df, ["q"], "s")
    result = anonymize_table(df, ["q"], "s", t=t)
    assert result.table["q"].tolist() == df["q"].tolist()
    assert result.audit.passed


def test_recursive_c_l_is_strict_in_the_number_the_user_typed():
    """Counts 55, 13, 12 with c = 2.2: (c, 2) needs 55 < 2.2 * (13 + 12) = 55, which is false,
    though 2.2 * 25 is 55.00000000000001 in floating point."""
    df = pd.DataFrame({"q": [1] * 80, "s": [1] * 55 + [2] * 13 + [3] * 12})
    assert recursive_c_l_diversity(df, c=2.2, qi=["q"], sensitive="s") == 1
    assert not audit(df, ["q"], "s", c=2.2, l=2).passed
    assert audit(df, ["q"], "s", c=2.2 + 1e-6, l=2).passed


def test_risk_threshold_typed_as_a_decimal_counts_its_exact_value():
    """A class of 3 has risk 1/3; a threshold of 0.3333333333 (1/3 as typed) does not put it at
    risk, a threshold of 0.33 does."""
    df = pd.DataFrame({"q": [1, 1, 1, 2, 2, 2, 2]})
    assert reidentification_risk(df, ["q"], threshold=0.3333333333).records_at_risk == 0
    assert reidentification_risk(df, ["q"], threshold=0.33).records_at_risk == \
        pytest.approx(3 / 7)


def test_ppas_feasibility_uses_the_same_comparison(ref):
    """A reference class that meets t exactly is a feasible target for PPAS (the face keeps its
    class: nothing is editable)."""
    reference = pd.DataFrame({"Male": [1, 1, 1, -1, -1, -1, -1],
                              "identity": [3, 1, 3, 4, 1, 2, 2]})  # both classes: t = 3/7
    t = ref.t_closeness(reference, ["Male"], "identity")
    cert = select_attributes(reference, {"Male": 1}, qi=["Male"], editable=[],
                             sensitive="identity", t=t, epsilon=None)
    assert cert.certificates[0].feasible


def test_tolerance_is_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    assert TOLERANCE == 1e-9 and "relative tolerance of 1e-9" in text
