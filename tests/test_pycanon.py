"""Differential tests against pycanon 1.3.6, the peer library (``from pycanon import anonymity``).

docs/metrics.md: where pycanon defines the same metric, privface returns the same value on the
same table; where we differ on purpose, the docs say how and why (docs/pycanon-differences.md).

* Agreement: random tables on which pycanon's bugs do not bite (a RangeIndex, no missing values,
  string SAs for nominal t-closeness, integer SAs for ordered t-closeness) and the real CelebA
  slice.
* Differences: one test per pycanon bug, each on a small hand-made table, checking pycanon's
  (wrong) value as well as ours so that a fixed pycanon release shows up here. Every bug was
  checked against the 1.3.6 source (pycanon/anonymity/_*.py and utils/aux_anonymity.py).
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from privface.privmetrics.anonymity import k_anonymity
from privface.privmetrics.closeness import t_closeness
from privface.privmetrics.diversity import (
    entropy_l_diversity,
    l_diversity,
    recursive_c,
    recursive_c_l_diversity,
)
from privface.privmetrics.likeness import (
    basic_beta_likeness,
    delta_disclosure,
    enhanced_beta_likeness,
)

pycanon = pytest.importorskip("pycanon", reason="pycanon (the peer library) is not installed")
from pycanon import anonymity as pc  # noqa: E402

# pycanon is slow (a pandas filter per class and value): fewer examples than the default profile.
PYCANON_EXAMPLES = max(10, settings.default.max_examples // 3)


@contextmanager
def quiet():
    """pycanon's groupby triggers pandas FutureWarnings (observed=False): they are not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # its log(0) on missing SA values
        yield


def pc_all(df, qi, sa) -> dict:
    """Every pycanon metric privface also computes."""
    with quiet():
        c, l = pc.recursive_c_l_diversity(df, qi, sa)
        return {
            "k": pc.k_anonymity(df, qi),
            "l": pc.l_diversity(df, qi, sa),
            "entropy_l": pc.entropy_l_diversity(df, qi, sa),
            "recursive": (c, l),
            "t": pc.t_closeness(df, qi, sa),
            "basic_beta": pc.basic_beta_likeness(df, qi, sa),
            "enhanced_beta": pc.enhanced_beta_likeness(df, qi, sa),
            "delta": pc.delta_disclosure(df, qi, sa),
        }


def close(a, b) -> bool:
    return float(a) == pytest.approx(float(b), rel=1e-9, abs=1e-12)


def check_agreement(df: pd.DataFrame, qi: list, sa: list, ordered: list, theirs=None) -> None:
    """privface and pycanon agree wherever pycanon is right (see the module docstring).

    ``ordered``: the SAs pycanon treats as ordered (its numeric ones). Where pycanon is known to be
    wrong on this table, assert the documented relation instead of equality.
    """
    theirs = theirs or pc_all(df, qi, sa)
    assert k_anonymity(df, qi) == theirs["k"]
    assert l_diversity(df, qi, sa) == theirs["l"]
    # pycanon reports int(exp(H)): our value floored, except that at an exact integer its float
    # rounding can land just below it (exp(ln 2) = 1.9999999999999998 -> 1; pinned below).
    ent = entropy_l_diversity(df, qi, sa)
    if abs(ent - round(ent)) < 1e-9:
        assert theirs["entropy_l"] in (round(ent), round(ent) - 1)
    else:
        assert theirs["entropy_l"] == math.floor(ent)
    c_theirs, l_theirs = theirs["recursive"]
    assert l_theirs == l_diversity(df, qi, sa)  # pycanon's l is the distinct l
    if l_theirs == 1:
        assert math.isnan(c_theirs)
    # t-closeness: pycanon uses the ordered distance for numeric SAs, the equal one for strings.
    assert close(t_closeness(df, qi, sa, ordered=ordered), theirs["t"])
    assert close(basic_beta_likeness(df, qi, sa), theirs["basic_beta"])
    enhanced = enhanced_beta_likeness(df, qi, sa)
    if math.isinf(enhanced):  # a class breaks a value's own cap: pycanon still reports a number
        assert math.isfinite(theirs["enhanced_beta"])
    else:
        assert close(enhanced, theirs["enhanced_beta"])
    delta = delta_disclosure(df, qi, sa)
    if math.isinf(delta):  # a class lacks a value: pycanon skips it and reports a number
        assert math.isfinite(theirs["delta"])
    else:
        assert close(delta, theirs["delta"])


# --- random tables pycanon handles correctly ----------------------------------------------------

QI_POOLS = {
    "int": [-1, 1],
    "int3": [0, 5, 9],
    "str": ["a", "b", "c"],
    "bool": [False, True],
}


@st.composite
def clean_tables(draw, max_rows=20):
    """RangeIndex, no missing values; SAs: strings (nominal) or integers (ordered, >= 2 values)."""
    n = draw(st.integers(2, max_rows))
    data, qi, sa, ordered = {}, [], [], []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(sorted(QI_POOLS)))
        data[f"q{i}"] = draw(st.lists(st.sampled_from(QI_POOLS[kind]), min_size=n, max_size=n))
        qi.append(f"q{i}")
    for i in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            col = draw(st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=n, max_size=n))
            data[f"s{i}"] = np.array(col, dtype=object)
        else:
            col = draw(st.lists(st.sampled_from([1, 2, 3, 10]), min_size=n, max_size=n))
            assume(len(set(col)) >= 2)  # pycanon divides by m - 1 (pinned below)
            data[f"s{i}"] = np.array(col, dtype=np.int64)
            ordered.append(f"s{i}")
        sa.append(f"s{i}")
    df = pd.DataFrame(data)
    note(repr(df))
    return df, qi, sa, ordered


@settings(max_examples=PYCANON_EXAMPLES)
@given(clean_tables())
def test_agrees_with_pycanon_on_clean_tables(table):
    check_agreement(*table)


@st.composite
def balanced_tables(draw):
    """Every class holds each of its values equally often, so sorting counts either way agrees."""
    rows = []
    keys = draw(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 2)), min_size=1,
                         max_size=4, unique=True))
    for key in keys:
        values = draw(st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=1, max_size=4,
                               unique=True))
        repeat = draw(st.integers(1, 3))
        rows += [(*key, v) for v in values for _ in range(repeat)]
    rows = draw(st.permutations(rows))
    return pd.DataFrame(rows, columns=["q0", "q1", "s"])


@settings(max_examples=PYCANON_EXAMPLES)
@given(balanced_tables())
def test_recursive_c_agrees_with_pycanon_on_balanced_classes(df):
    """pycanon's (c, l) is (our recursive_c at l, our distinct l) when its sort is harmless."""
    with quiet():
        c, l = pc.recursive_c_l_diversity(df, ["q0", "q1"], ["s"])
    assert l == l_diversity(df, ["q0", "q1"], "s")
    if l == 1:
        assert math.isnan(c)
    else:
        assert c == recursive_c(df, l, ["q0", "q1"], "s")
        assert recursive_c_l_diversity(df, c=float(c), qi=["q0", "q1"], sensitive="s") >= l


# --- where pycanon is wrong: one pinned table per difference -----------------------------------
# Each test states pycanon 1.3.6's value, ours, and why ours is right.

def test_difference_index_labels_used_as_positions():
    """pycanon groups by index *labels* (groupby().groups) and then selects rows with ``iloc`` (by
    *position*). On any index other than 0..n-1 it looks at the wrong rows (or raises IndexError).

    Class a holds s = {x, y}, class b holds s = {z, z}: distinct l is 1. With the index [0, 2, 1, 3]
    pycanon reads positions {0, 2} for a and {1, 3} for b and reports 2. privface takes rows by
    position and ignores the index, as pandas users expect after a filter or a sort.
    """
    df = pd.DataFrame({"q": ["a", "a", "b", "b"], "s": ["x", "y", "z", "z"]}, index=[0, 2, 1, 3])
    with quiet():
        assert pc.l_diversity(df, ["q"], ["s"]) == 2  # wrong
        assert pc.l_diversity(df.reset_index(drop=True), ["q"], ["s"]) == 1
    assert l_diversity(df, ["q"], "s") == 1
    # A filtered table (labels beyond the length) makes pycanon fail outright.
    shifted = df.set_axis([10, 11, 12, 13])
    with quiet(), pytest.raises(IndexError):
        pc.l_diversity(shifted, ["q"], ["s"])
    assert l_diversity(shifted, ["q"], "s") == 1


def test_difference_rows_with_a_missing_single_qi_are_dropped():
    """pycanon's groupby drops rows whose QI is NaN when there is one QI (pandas' dropna=True in
    ``.groups``): the lone record with an unknown QI disappears and k goes from 1 to 2. A record
    with a missing QI is still a record (its "unknown" value is as linkable as any other), so
    privface keeps it in a class of its own.

    With two QIs pandas 2.3 keeps NaN keys in ``.groups``: pycanon keeps the record too and agrees
    (docs/pycanon-differences.md, section 2, says both).
    """
    df = pd.DataFrame({"q": [1.0, 1.0, np.nan], "s": ["x", "y", "x"]})
    with quiet():
        assert pc.k_anonymity(df, ["q"]) == 2  # wrong: the third record is unique
    assert k_anonymity(df, ["q"]) == 1
    two = df.assign(r=1)
    with quiet():
        assert pc.k_anonymity(two, ["q", "r"]) == 1
        assert pc.l_diversity(two, ["q", "r"], ["s"]) == 1
    assert k_anonymity(two, ["q", "r"]) == 1 and l_diversity(two, ["q", "r"], "s") == 1


def test_difference_missing_sensitive_values_are_lost():
    """pycanon counts each SA value with ``column == value``; NaN == NaN is False, so a missing SA
    value gets count 0. Entropy l-diversity then fails (log 0 -> int(nan)) and ordered t-closeness
    is wrong. privface counts missing as one value of its own.

    Values 1 < 2 < missing, P = (1/2, 1/4, 1/4); class 1 = (1/2, 0, 1/2), class 2 = (1/2, 1/2, 0):
    cumulative differences (0, -1/4, 0) and (0, 1/4, 0), t = (1/4) / 2 = 1/8. pycanon says 1/4.
    """
    df = pd.DataFrame({"q": [1, 1, 2, 2], "s": [1.0, np.nan, 1.0, 2.0]})
    with quiet():
        with pytest.raises(ValueError):
            pc.entropy_l_diversity(df, ["q"], ["s"])
        assert pc.t_closeness(df, ["q"], ["s"]) == pytest.approx(0.25)  # wrong
    assert entropy_l_diversity(df, ["q"], "s") == pytest.approx(2.0)
    assert t_closeness(df, ["q"], "s", ordered="s") == pytest.approx(1 / 8)


def test_difference_entropy_l_is_floored():
    """pycanon returns ``int(min exp(H))``. Two equiprobable values have exp(H) = 2, but the float
    exp(1) ** ln 2 is 1.9999999999999998, so pycanon says 1: the table "only" satisfies entropy
    1-diversity, i.e. no diversity at all. privface returns the real number 2.0 (the table satisfies
    entropy l-diversity for every l <= 2.0); floor it yourself if you need an integer.
    """
    df = pd.DataFrame({"q": [1, 1], "s": ["a", "b"]})
    with quiet():
        assert pc.entropy_l_diversity(df, ["q"], ["s"]) == 1  # wrong
    assert entropy_l_diversity(df, ["q"], "s") == pytest.approx(2.0)
    # Away from integers pycanon's int() is a floor of the same number.
    df3 = pd.DataFrame({"q": [1, 1, 1], "s": ["a", "a", "b"]})
    with quiet():
        assert pc.entropy_l_diversity(df3, ["q"], ["s"]) == 1
    h = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert entropy_l_diversity(df3, ["q"], "s") == pytest.approx(math.exp(h))  # 1.89


def test_difference_recursive_counts_sorted_ascending():
    """Recursive (c, l) needs counts in *descending* order r_1 >= r_2 >= ...: (c, l) holds iff
    r_1 < c (r_l + ... + r_m). pycanon sorts ascending (np.sort), so it divides the rarest count by
    the largest ones. Counts (3, 1, 1), l = 3: the right c is floor(3 / 1) + 1 = 4; pycanon says
    floor(1 / 3) + 1 = 1, but (1, 3) does not hold: 3 < 1 * 1 is false.
    """
    df = pd.DataFrame({"q": [1] * 5, "s": ["a", "a", "a", "b", "c"]})
    with quiet():
        c, l = pc.recursive_c_l_diversity(df, ["q"], ["s"])
    assert (c, l) == (1, 3)  # wrong c
    assert recursive_c(df, 3, ["q"], "s") == 4.0
    assert recursive_c_l_diversity(df, c=1.0, qi=["q"], sensitive="s") == 1  # (1, 3) fails
    assert recursive_c_l_diversity(df, c=4.0, qi=["q"], sensitive="s") == 3


def test_difference_enhanced_beta_capped_with_the_rarest_value():
    """Enhanced beta-likeness (Cao & Karras 2012): every value s with P_E(s) > P(s) must have
    (P_E(s) - P(s)) / P(s) <= min(beta, -ln P(s)); the cap belongs to each value. pycanon returns
    max over values s of min(basic beta, -ln P(s)) = min(basic beta, -ln P(rarest value)): one cap,
    the loosest, for all values.

    P(a) = 3/4, P(b) = 1/4. Class 1 is all a: its gain on a is (1 - 3/4) / (3/4) = 1/3, above a's
    cap -ln(3/4) = 0.288, so no beta makes class 1 enhanced-beta-like: privface says inf. pycanon
    says min(1/2, -ln(1/4)) = 1/2 (the basic beta, from b in class 2) and so claims the table
    satisfies enhanced 1/2-likeness, which it does not.
    """
    df = pd.DataFrame({"q": [1] * 4 + [2] * 8, "s": ["a"] * 4 + ["a"] * 5 + ["b"] * 3})
    with quiet():
        assert pc.enhanced_beta_likeness(df, ["q"], ["s"]) == pytest.approx(0.5)  # wrong
    assert basic_beta_likeness(df, ["q"], "s") == pytest.approx(0.5)
    assert enhanced_beta_likeness(df, ["q"], "s") == math.inf
    # A rare value concentrated in one class: P(b) = 1/10, class 2 is all b, gain 9. pycanon caps
    # it at -ln(1/10) = 2.303 and reports that; privface: inf (9 > b's own cap 2.303).
    rare = pd.DataFrame({"q": [1] * 9 + [2], "s": ["a"] * 9 + ["b"]})
    with quiet():
        assert pc.enhanced_beta_likeness(rare, ["q"], ["s"]) == pytest.approx(-math.log(0.1))
    assert basic_beta_likeness(rare, ["q"], "s") == pytest.approx(9.0)
    assert enhanced_beta_likeness(rare, ["q"], "s") == math.inf


def test_difference_delta_disclosure_skips_absent_values():
    """delta-disclosure (Brickell & Shmatikov 2008) bounds |ln(P_E(s) / P(s))| for every value of
    the table; a value absent from a class has ratio 0 and an infinite log ratio, so the table is
    not delta-disclosure private for any finite delta. pycanon keeps only ratios > 0 and reports
    ln 2 here; privface reports inf.
    """
    df = pd.DataFrame({"q": [1, 1, 2, 2], "s": ["x", "x", "x", "y"]})
    with quiet():
        assert pc.delta_disclosure(df, ["q"], ["s"]) == pytest.approx(math.log(2))  # wrong
    assert delta_disclosure(df, ["q"], "s") == math.inf


def test_difference_int_coded_identity_is_not_ordered():
    """pycanon picks the ground distance from the dtype: any numeric SA gets the ordered distance.
    An identity coded as integers is nominal: person 2 is not "between" persons 1 and 3. pycanon's t
    then changes when identities are merely renumbered; privface's default (nominal) does not, and
    ``ordered=`` reproduces pycanon's number when the order is real.
    """
    df = pd.DataFrame({"q": [1, 1, 2, 2], "identity": [1, 2, 3, 4]})
    renumbered = df.assign(identity=[1, 3, 2, 4])
    with quiet():
        assert pc.t_closeness(df, ["q"], ["identity"]) == pytest.approx(1 / 3)
        assert pc.t_closeness(renumbered, ["q"], ["identity"]) == pytest.approx(1 / 6)
    assert t_closeness(df, ["q"], "identity") == pytest.approx(0.5)
    assert t_closeness(renumbered, ["q"], "identity") == pytest.approx(0.5)
    assert t_closeness(df, ["q"], "identity", ordered="identity") == pytest.approx(1 / 3)
    # The same table with string identities: pycanon switches to the nominal distance.
    with quiet():
        assert pc.t_closeness(df.astype({"identity": str}), ["q"], ["identity"]) == \
            pytest.approx(0.5)


def test_difference_category_dtype():
    """pycanon does not handle the category dtype: its groupby keeps unused categories as empty
    classes (observed=False), so k and l become 0; t-closeness rejects a category SA whose
    categories are not strings ("invalid sens_att value type"). privface takes a category column
    as its values (unused categories are not classes).
    """
    df = pd.DataFrame({"q": pd.Categorical(["x", "x"], categories=["x", "y"]), "s": ["1", "2"]})
    with quiet():
        assert pc.k_anonymity(df, ["q"]) == 0  # wrong: one class of 2 records
        assert pc.l_diversity(df, ["q"], ["s"]) == 0
    assert k_anonymity(df, ["q"]) == 2
    assert l_diversity(df, ["q"], "s") == 2
    grades = pd.DataFrame({"q": [1, 1, 2, 2], "s": pd.Categorical([1, 2, 1, 1])})
    with quiet(), pytest.raises(ValueError, match="invalid sens_att value type"):
        pc.t_closeness(grades, ["q"], ["s"])
    # P = (3/4, 1/4); class 1 = (1/2, 1/2): EMD 1/4; class 2 = (1, 0): 1/4.
    assert t_closeness(grades, ["q"], "s") == pytest.approx(0.25)


def test_difference_constant_numeric_sa():
    """A numeric SA with one value: pycanon computes 1 / (m - 1) with m = 1 and raises
    ZeroDivisionError. Every class has the table's distribution, so t = 0.
    """
    df = pd.DataFrame({"q": [1, 1, 2, 2], "s": [5, 5, 5, 5]})
    with quiet(), pytest.raises(ZeroDivisionError):
        pc.t_closeness(df, ["q"], ["s"])
    assert t_closeness(df, ["q"], "s", ordered="s") == 0.0
    assert t_closeness(df, ["q"], "s") == 0.0


# --- the real CelebA slice ----------------------------------------------------------------------

QI10 = ["Male", "Young", "Smiling", "Eyeglasses", "Wearing_Hat", "Bald", "Mustache", "Pale_Skin",
        "Chubby", "Blond_Hair"]
QI3 = ["Male", "Young", "Smiling"]


def _read_attributes(path) -> pd.DataFrame:
    try:
        from privface.privmetrics.readers.celeba import read_celeba_attributes
    except ImportError:
        return pd.read_csv(path, sep=r"\s+", skiprows=1)
    return read_celeba_attributes(path)


@pytest.fixture(scope="module")
def celeba(celeba_dir) -> pd.DataFrame:
    """The 20,000 labelled images with their identity, rows in file order, RangeIndex, int64."""
    attrs = _read_attributes(celeba_dir / "list_attr_celeba_first20k.txt")
    ids = pd.read_csv(celeba_dir / "identity_CelebA.txt", sep=r"\s+", header=None,
                      names=["image", "identity"], index_col=0)["identity"]
    table = attrs.astype(np.int64)
    table["identity"] = ids.reindex(attrs.index).to_numpy()
    assert len(table) == 20_000 and table["identity"].notna().all()
    return table.reset_index(drop=True)


@pytest.mark.realdata
def test_celeba_identity_10_qis(celeba):
    """k, l, entropy l and recursive (c, l) on 20,000 rows, 10 QIs, SA identity."""
    theirs = {}
    with quiet():
        theirs["k"] = pc.k_anonymity(celeba, QI10)
        theirs["l"] = pc.l_diversity(celeba, QI10, ["identity"])
        theirs["entropy_l"] = pc.entropy_l_diversity(celeba, QI10, ["identity"])
        theirs["recursive"] = pc.recursive_c_l_diversity(celeba, QI10, ["identity"])
    assert k_anonymity(celeba, QI10) == theirs["k"]
    assert l_diversity(celeba, QI10, "identity") == theirs["l"]
    assert math.floor(entropy_l_diversity(celeba, QI10, "identity") + 1e-9) == theirs["entropy_l"]
    assert theirs["recursive"][1] == theirs["l"]


@pytest.mark.realdata
def test_celeba_heavy_makeup_10_qis(celeba):
    """Every metric on 20,000 rows, 10 QIs, SA Heavy_Makeup (1/-1: pycanon's ordered distance over
    two values equals the nominal one, so the default t must match)."""
    theirs = pc_all(celeba, QI10, ["Heavy_Makeup"])
    check_agreement(celeba, QI10, ["Heavy_Makeup"], ordered=[], theirs=theirs)
    check_agreement(celeba, QI10, ["Heavy_Makeup"], ordered=["Heavy_Makeup"], theirs=theirs)
    # The numbers themselves, to see the differences at a glance.
    assert enhanced_beta_likeness(celeba, QI10, "Heavy_Makeup") == math.inf
    assert delta_disclosure(celeba, QI10, "Heavy_Makeup") == math.inf


@pytest.mark.realdata
def test_celeba_identity_on_a_slice(celeba):
    """t, beta and delta with SA identity (pycanon is classes x values slow: 1,000 rows, 3 QIs).

    identity is int-coded: pycanon's t is the ordered one, privface's default is nominal.
    """
    part = celeba.iloc[:1000].reset_index(drop=True)
    with quiet():
        t_theirs = pc.t_closeness(part, QI3, ["identity"])
        basic_theirs = pc.basic_beta_likeness(part, QI3, ["identity"])
        delta_theirs = pc.delta_disclosure(part, QI3, ["identity"])
    assert close(t_closeness(part, QI3, "identity", ordered="identity"), t_theirs)
    assert t_closeness(part, QI3, "identity") > t_theirs + 0.1  # nominal: much further
    assert close(basic_beta_likeness(part, QI3, "identity"), basic_theirs)
    assert delta_disclosure(part, QI3, "identity") == math.inf  # every class lacks identities
    assert math.isfinite(delta_theirs)


@pytest.mark.realdata
def test_celeba_recursive_c_l(celeba):
    """3 QIs, SA identity: pycanon's c (ascending counts) is 1, which the definition rejects."""
    with quiet():
        c_theirs, l_theirs = pc.recursive_c_l_diversity(celeba, QI3, ["identity"])
    assert l_theirs == l_diversity(celeba, QI3, "identity") > 1
    c_ours = recursive_c(celeba, l_theirs, QI3, "identity")
    assert c_theirs == 1 < c_ours
    # The definition decides: (c_ours, l) holds, (c_theirs, l) and (c_ours - 1, l) do not.
    assert recursive_c_l_diversity(celeba, c=c_ours, qi=QI3, sensitive="identity") >= l_theirs
    assert recursive_c_l_diversity(celeba, c=c_ours - 1, qi=QI3, sensitive="identity") < l_theirs
    assert recursive_c_l_diversity(celeba, c=float(c_theirs), qi=QI3,
                                   sensitive="identity") < l_theirs


@pytest.mark.realdata
def test_celeba_sorted_table(celeba):
    """A table sorted by identity (index labels permuted): pycanon reads the wrong rows."""
    by_identity = celeba.sort_values("identity", kind="stable")
    with quiet():
        wrong = pc.t_closeness(by_identity, QI3, ["Heavy_Makeup"])
        right = pc.t_closeness(by_identity.reset_index(drop=True), QI3, ["Heavy_Makeup"])
    assert not close(wrong, right)
    assert close(t_closeness(by_identity, QI3, "Heavy_Makeup"), right)
    assert t_closeness(by_identity, QI3, "Heavy_Makeup") == t_closeness(celeba, QI3, "Heavy_Makeup")
