"""Property tests: every privmetrics metric against a naive brute-force reference.

The reference is tests/reference.py. Random small tables mix every dtype a user may hand us (int,
CelebA-style 1/-1, wide and unsigned ints, str, bool, category with a random category order and
unused categories, float with NaN, object with None / NaN / pd.NA, nullable Int64 and string,
datetime with NaT), have arbitrary, duplicated or shuffled indexes, one or several sensitive
attributes, ordered attributes and random ground-distance matrices. The reference follows
docs/metrics.md literally; the engine must agree with it to 1e-9 relative (infinities exactly),
table-level and per class.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from privface.privmetrics.anonymity import k_anonymity, record_risk, reidentification_risk
from privface.privmetrics.closeness import (
    matrix_emd_per_class,
    nominal_emd_per_class,
    ordered_emd_per_class,
    t_closeness,
)
from privface.privmetrics.contingency import contingency_table
from privface.base.errors import InputError
from privface.privmetrics.diversity import (
    distinct_l_per_class,
    entropy_l_diversity,
    entropy_l_per_class,
    l_diversity,
    recursive_c,
    recursive_c_l_diversity,
    recursive_c_per_class,
    recursive_l_per_class,
)
from privface.privmetrics.likeness import (
    basic_beta_likeness,
    basic_beta_per_class,
    delta_disclosure,
    delta_disclosure_per_class,
    enhanced_beta_likeness,
    enhanced_beta_per_class,
)


def _load_reference():
    name = "privface_tests_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("reference.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ref = _load_reference()

REL, ABS = 1e-9, 1e-12
# The reference solves each matrix EMD as a linear program (HiGHS), whose feasibility tolerance
# leaves up to ~1e-11 on an EMD that is exactly 0 (a class with the table's own distribution).
LP_ABS = 1e-9


def same(actual, expected, what: str = "", abs_tol: float = ABS) -> None:
    """Floats to 1e-9 relative / ``abs_tol`` absolute; infinities (and NaN) exactly."""
    actual, expected = float(actual), float(expected)
    if math.isinf(expected) or math.isinf(actual) or math.isnan(expected):
        assert actual == expected or (math.isnan(actual) and math.isnan(expected)), \
            f"{what}: {actual!r} != {expected!r}"
    else:
        assert actual == pytest.approx(expected, rel=REL, abs=abs_tol), \
            f"{what}: {actual!r} != {expected!r}"


def same_per_class(values: np.ndarray, ct, df: pd.DataFrame, qi, expected: dict, what: str,
                   abs_tol: float = ABS) -> None:
    """Engine's per-class array (class order of ``ct``) against the reference's {class key: value}.

    Classes are matched through the rows: row i is in engine class ``ct.record_class[i]`` and in
    reference class ``row_keys[i]``.
    """
    values = np.asarray(values)
    assert len(values) == len(expected) == ct.n_classes, what
    keys = ref.row_keys(df, qi)
    for i, key in enumerate(keys):
        same(values[ct.record_class[i]], expected[key], f"{what}, row {i}, class {key!r}",
             abs_tol)


# --- random tables ------------------------------------------------------------------------------

NA_MARKERS = [None, np.nan, pd.NA]
ALL_KINDS = ["int", "int_pm1", "int_wide", "uint8", "str", "bool", "category", "float_nan",
             "object_none", "object_missing", "Int64", "string", "datetime", "number_text"]
# Kinds with an order of their own (an ordered SA must have one): numbers, numbers stored as text
# (ordered as numbers), dates, and categories (their category order). Words have none.
ORDERED_KINDS = ["int", "int_pm1", "int_wide", "uint8", "bool", "category", "float_nan", "Int64",
                 "datetime", "number_text", "int_span16", "int_span17"]
TEXT_KINDS = ["str", "object_none", "object_missing", "string"]


def _pick(draw, n, pool):
    return draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))


@st.composite
def column(draw, n: int, kind: str, *, category_order: str = "any"):
    """A column of ``n`` cells of the given kind, with a small pool of values (so classes repeat).

    category_order: "any" (random category order), or "sorted" (lexicographic categories).
    """
    if kind == "int":
        pool = draw(st.lists(st.integers(-3, 300), min_size=1, max_size=4, unique=True))
        return np.array(_pick(draw, n, pool), dtype=np.int64)
    if kind == "int_pm1":
        return np.array(_pick(draw, n, [-1, 1]), dtype=np.int64)
    if kind == "int_wide":  # spans too wide for the offset coding (hash path, 64-bit extremes)
        pool = draw(st.lists(st.sampled_from([0, 70_000, -(10 ** 12), 2 ** 62, -(2 ** 63),
                                              2 ** 63 - 1]), min_size=1, max_size=4,
                             unique=True))
        return np.array(_pick(draw, n, pool), dtype=np.int64)
    if kind == "uint8":
        pool = draw(st.lists(st.sampled_from([0, 1, 7, 255]), min_size=1, max_size=3, unique=True))
        return np.array(_pick(draw, n, pool), dtype=np.uint8)
    if kind == "str":
        pool = draw(st.lists(st.sampled_from(["a", "b", "c", "dd", "B", ""]), min_size=1,
                             max_size=4, unique=True))
        return np.array(_pick(draw, n, pool), dtype=object)
    if kind == "bool":
        return np.array(_pick(draw, n, [False, True]), dtype=bool)
    if kind == "category":
        cats = draw(st.lists(st.sampled_from(["lo", "mid", "hi", "zz", "aa"]), min_size=1,
                             max_size=5, unique=True))
        if category_order == "sorted":
            cats = sorted(cats)
        used = draw(st.lists(st.sampled_from(cats), min_size=1, max_size=len(cats), unique=True))
        pool = used + ([None] if draw(st.booleans()) else [])
        return pd.Categorical(_pick(draw, n, pool), categories=cats,
                              ordered=draw(st.booleans()))
    if kind == "float_nan":
        pool = draw(st.lists(st.sampled_from([0.5, 1.5, -2.25, 3.0, np.nan]), min_size=1,
                             max_size=4, unique_by=repr))
        return np.array(_pick(draw, n, pool), dtype=np.float64)
    if kind == "number_text":  # a CSV column read as text: "10" < "9" as text, not as numbers
        pool = draw(st.lists(st.sampled_from(["9", "10", "-2.5", "100", "1e3", None]),
                             min_size=1, max_size=4, unique_by=repr))
        return np.array(_pick(draw, n, pool), dtype=object)
    if kind == "object_none":
        pool = draw(st.lists(st.sampled_from(["u", "v", "w", None]), min_size=1, max_size=4,
                             unique_by=repr))
        return np.array(_pick(draw, n, pool), dtype=object)
    if kind == "object_missing":  # every missing marker in one column: all one value
        pool = ["u", "v"] + NA_MARKERS
        return np.array(_pick(draw, n, pool), dtype=object)
    if kind == "Int64":
        return pd.array(_pick(draw, n, [1, 2, 40, None]), dtype="Int64")
    if kind == "string":
        return pd.array(_pick(draw, n, ["x", "y", None]), dtype="string")
    if kind == "datetime":
        pool = [pd.Timestamp("2020-01-01"), pd.Timestamp("1999-12-31 23:59"), pd.NaT]
        return pd.to_datetime(pd.Series(_pick(draw, n, pool), dtype=object)).to_numpy()
    if kind == "int_span16":  # exactly 2**16 values wide: the widest offset coding (uint16)
        pool = [0, 65_535] + draw(st.lists(st.integers(1, 65_534), max_size=2))
        return np.array(_pick(draw, n, pool), dtype=np.int64)
    if kind == "int_span17":  # one wider: hashed, few codes
        pool = [0, 65_536] + draw(st.lists(st.integers(1, 65_535), max_size=2))
        return np.array(_pick(draw, n, pool), dtype=np.int64)
    raise AssertionError(kind)


@st.composite
def index_for(draw, n: int):
    """Any index: the engine must take rows by position and ignore it."""
    kind = draw(st.sampled_from(["range", "reversed", "shuffled", "duplicated", "strings",
                                 "offset", "float"]))
    if kind == "range":
        return pd.RangeIndex(n)
    if kind == "reversed":
        return pd.Index(list(range(n))[::-1])
    if kind == "shuffled":
        return pd.Index(draw(st.permutations(list(range(n)))))
    if kind == "duplicated":
        return pd.Index(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    if kind == "strings":
        return pd.Index([f"img{i:03d}.jpg" for i in draw(st.permutations(list(range(n))))])
    if kind == "offset":
        return pd.Index(list(range(100, 100 + 3 * n, 3)))
    return pd.Index([i / 2 for i in range(n)])


@st.composite
def tables(draw, *, min_qi=1, max_qi=3, min_sa=1, max_sa=2, max_rows=24,
           qi_kinds=ALL_KINDS, sa_kinds=ALL_KINDS, category_order="any"):
    """(df, qi, sa) with random dtypes and index."""
    n = draw(st.integers(1, max_rows))
    n_qi = draw(st.integers(min_qi, max_qi))
    n_sa = draw(st.integers(min_sa, max_sa))
    data = {}
    qi, sa = [], []
    for i in range(n_qi):
        kind = draw(st.sampled_from(qi_kinds))
        data[f"q{i}_{kind}"] = draw(column(n, kind, category_order=category_order))
        qi.append(f"q{i}_{kind}")
    for i in range(n_sa):
        kind = draw(st.sampled_from(sa_kinds))
        data[f"s{i}_{kind}"] = draw(column(n, kind, category_order=category_order))
        sa.append(f"s{i}_{kind}")
    df = pd.DataFrame(data, index=draw(index_for(n)))
    note(f"table:\n{df!r}\ndtypes: {dict(df.dtypes)}")
    return df, qi, sa


# --- k-anonymity and risk -----------------------------------------------------------------------

@given(tables(min_sa=0, max_sa=0), st.sampled_from([0.0, 0.2, 1 / 3, 0.5, 0.99, 1.0]))
def test_k_anonymity_and_risk(table, threshold):
    df, qi, _ = table
    ct = contingency_table(df, qi)
    assert k_anonymity(df, qi) == ref.k_anonymity(df, qi)
    assert k_anonymity(ct) == ref.k_anonymity(df, qi)
    risk = reidentification_risk(df, qi, threshold=threshold)
    expected = ref.reidentification_risk(df, qi, threshold)
    for field in ["highest", "average", "threshold", "records_at_risk"]:
        same(getattr(risk, field), expected[field], field)
    assert risk.uniques == expected["uniques"]
    assert isinstance(risk.uniques, int)
    per_record = record_risk(df, qi)
    assert len(per_record) == len(df)
    for i, (a, b) in enumerate(zip(per_record, ref.record_risk(df, qi))):
        same(a, b, f"record_risk row {i}")
    assert ct.n_records == len(df)
    assert sorted(ct.class_sizes.tolist()) == sorted(len(r) for r in ref.classes(df, qi).values())


# --- l-diversity --------------------------------------------------------------------------------

@given(tables())
def test_distinct_and_entropy_l(table):
    df, qi, sa = table
    ct = contingency_table(df, qi, sa)
    assert l_diversity(df, qi, sa) == ref.l_diversity(df, qi, sa)
    assert l_diversity(ct) == ref.l_diversity(df, qi, sa)
    same(entropy_l_diversity(df, qi, sa), ref.entropy_l_diversity(df, qi, sa), "entropy l")
    same(entropy_l_diversity(ct, sensitive=sa[-1]), ref.entropy_l_diversity(df, qi, sa[-1]),
         "entropy l, one SA of a contingency table")
    for name in sa:
        same_per_class(distinct_l_per_class(ct[name]), ct, df, qi,
                       ref.distinct_l_per_class(df, qi, name), f"distinct l of {name}")
        same_per_class(entropy_l_per_class(ct[name]), ct, df, qi,
                       ref.entropy_l_per_class(df, qi, name), f"entropy l of {name}")


C_VALUES = st.one_of(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 10.0]),
                     st.floats(0.05, 8.0, allow_nan=False, allow_infinity=False))


@given(tables(), C_VALUES, st.integers(1, 4))
def test_recursive_c_l(table, c, l):
    df, qi, sa = table
    ct = contingency_table(df, qi, sa)
    assert recursive_c_l_diversity(df, c=c, qi=qi, sensitive=sa) == \
        ref.recursive_c_l_diversity(df, c, qi, sa)
    assert recursive_c_l_diversity(ct, c=c) == ref.recursive_c_l_diversity(df, c, qi, sa)
    same(recursive_c(df, l, qi=qi, sensitive=sa), ref.recursive_c(df, l, qi, sa), "recursive c")
    for name in sa:
        same_per_class(recursive_l_per_class(ct[name], c), ct, df, qi,
                       ref.recursive_l_per_class(df, qi, name, c), f"recursive l of {name}")
        same_per_class(recursive_c_per_class(ct[name], l), ct, df, qi,
                       ref.recursive_c_per_class(df, qi, name, l), f"recursive c of {name}")


@given(tables(max_sa=1), st.integers(1, 4))
def test_recursive_c_is_the_smallest_integer_c_that_holds(table, l):
    """The c that recursive_c reports makes (c, l) hold, and c - 1 does not (definition check)."""
    df, qi, sa = table
    c = recursive_c(df, l, qi=qi, sensitive=sa)
    if math.isinf(c):
        assert ref.l_diversity(df, qi, sa) < l
        return
    assert recursive_c_l_diversity(df, c=c, qi=qi, sensitive=sa) >= l
    if c > 1:
        assert recursive_c_l_diversity(df, c=c - 1, qi=qi, sensitive=sa) < l


# --- t-closeness --------------------------------------------------------------------------------

@given(tables())
def test_t_closeness_nominal(table):
    df, qi, sa = table
    ct = contingency_table(df, qi, sa)
    same(t_closeness(df, qi, sa), ref.t_closeness(df, qi, sa), "nominal t")
    same(t_closeness(ct), ref.t_closeness(df, qi, sa), "nominal t from a contingency table")
    for name in sa:
        per_class = nominal_emd_per_class(ct[name])
        same_per_class(per_class, ct, df, qi, ref.nominal_emd_per_class(df, qi, name),
                       f"nominal EMD of {name}")
        assert ((per_class >= 0) & (per_class <= 1)).all()


@given(tables(sa_kinds=ORDERED_KINDS, category_order="sorted"), st.data())
def test_t_closeness_ordered(table, data):
    """Ordered SAs (ascending, missing last, bool False < True); here categories are sorted."""
    df, qi, sa = table
    ordered = data.draw(st.lists(st.sampled_from(sa), min_size=1, unique=True), label="ordered")
    ct = contingency_table(df, qi, sa, ordered=ordered)
    expected = ref.t_closeness(df, qi, sa, ordered=ordered)
    same(t_closeness(df, qi, sa, ordered=ordered), expected, "t with ordered SAs")
    same(t_closeness(ct), expected, "t with ordered SAs, from a contingency table")
    for name in ordered:
        per_class = ordered_emd_per_class(ct[name])
        same_per_class(per_class, ct, df, qi, ref.ordered_emd_per_class(df, qi, name),
                       f"ordered EMD of {name}")
        assert ((per_class >= 0) & (per_class <= 1)).all(), "ordered EMD must lie in [0, 1]"


@given(tables(max_sa=1, sa_kinds=TEXT_KINDS))
def test_ordered_words_are_refused_not_sorted_as_text(table):
    """Words have no order of their own: declared ordered without an order, they are an input
    error naming the column (a column with no value but missing ones has nothing to order)."""
    df, qi, sa = table
    if all(ref.is_missing(v) for v in df[sa[0]]):
        t_closeness(df, qi, sa, ordered=sa)
        return
    with pytest.raises(InputError, match="not every value is a number") as info:
        t_closeness(df, qi, sa, ordered=sa)
    assert info.value.column == sa[0]


@given(tables(max_sa=1, sa_kinds=["category"], category_order="any"))
def test_t_closeness_ordered_category_uses_category_order(table):
    """A declared-ordered category SA is ordered by its categories, whatever their spelling.

    Regression test for an engine bug: a category whose categories are not in lexicographic order
    (e.g. ["lo", "hi"]) was rejected with "declared ordered, but its values cannot be sorted".
    """
    df, qi, sa = table
    same(t_closeness(df, qi, sa, ordered=sa), ref.t_closeness(df, qi, sa, ordered=sa),
         "t with an ordered SA")


def test_t_closeness_ordered_category_minimal():
    """The bug above, minimal: categories ["lo", "mid", "hi"] in that (non-alphabetic) order.

    Table P = (1/2, 1/4, 1/4) over lo < mid < hi. Class q=1 has (1, 0, 0): cumulative differences
    1/2, 1/4, 0, so EMD = (1/2 + 1/4) / 2 = 3/8. Class q=2 has (0, 1/2, 1/2): -1/2, -1/4, 0 -> 3/8.
    """
    df = pd.DataFrame({"q": [1, 1, 2, 2],
                       "level": pd.Categorical(["lo", "lo", "mid", "hi"],
                                               categories=["lo", "mid", "hi"], ordered=True)})
    assert t_closeness(df, ["q"], "level", ordered="level") == pytest.approx(3 / 8)


@st.composite
def ground_distance(draw, m: int):
    """A random symmetric, zero-diagonal, non-negative m x m matrix (not necessarily a metric)."""
    entry = st.one_of(st.integers(0, 5).map(float),
                      st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False))
    dist = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            dist[i, j] = dist[j, i] = draw(entry)
    return dist


@given(tables(max_rows=16), st.data())
def test_t_closeness_matrix(table, data):
    df, qi, sa = table
    matrices = {name: data.draw(ground_distance(len(ref.sorted_values(df, name))), label=name)
                for name in sa}
    ct = contingency_table(df, qi, sa)
    expected = ref.t_closeness(df, qi, sa, ground_distance=matrices)
    same(t_closeness(df, qi, sa, ground_distance=matrices), expected, "t, matrix ground distance",
         LP_ABS)
    for name in sa:
        same_per_class(matrix_emd_per_class(ct[name], matrices[name]), ct, df, qi,
                       ref.matrix_emd_per_class(df, qi, name, matrices[name]),
                       f"matrix EMD of {name}", LP_ABS)


@given(tables(max_rows=16, max_sa=1, sa_kinds=["int", "float_nan", "str", "bool", "Int64"]))
def test_t_closeness_matrix_reproduces_nominal_and_ordered(table):
    """The all-ones matrix gives the nominal EMD; |i - j| / (m - 1) gives the ordered one."""
    df, qi, sa = table
    m = len(ref.sorted_values(df, sa[0]))
    ones = np.ones((m, m)) - np.eye(m)
    same(t_closeness(df, qi, sa, ground_distance={sa[0]: ones}), ref.t_closeness(df, qi, sa),
         "all-ones matrix vs nominal")
    if m > 1:
        steps = np.abs(np.subtract.outer(np.arange(m), np.arange(m))) / (m - 1)
        same(t_closeness(df, qi, sa, ground_distance={sa[0]: steps}),
             ref.t_closeness(df, qi, sa, ordered=sa), "|i-j|/(m-1) matrix vs ordered")


# --- beta-likeness and delta-disclosure ---------------------------------------------------------

@given(tables())
def test_beta_likeness_and_delta_disclosure(table):
    df, qi, sa = table
    ct = contingency_table(df, qi, sa)
    same(basic_beta_likeness(df, qi, sa), ref.basic_beta_likeness(df, qi, sa), "basic beta")
    same(enhanced_beta_likeness(df, qi, sa), ref.enhanced_beta_likeness(df, qi, sa),
         "enhanced beta")
    same(delta_disclosure(df, qi, sa), ref.delta_disclosure(df, qi, sa), "delta")
    same(basic_beta_likeness(ct), ref.basic_beta_likeness(df, qi, sa), "basic beta (ct)")
    same(enhanced_beta_likeness(ct), ref.enhanced_beta_likeness(df, qi, sa), "enhanced (ct)")
    same(delta_disclosure(ct), ref.delta_disclosure(df, qi, sa), "delta (ct)")
    for name in sa:
        sc = ct[name]
        same_per_class(basic_beta_per_class(sc), ct, df, qi,
                       ref.basic_beta_per_class(df, qi, name), f"basic beta of {name}")
        same_per_class(enhanced_beta_per_class(sc), ct, df, qi,
                       ref.enhanced_beta_per_class(df, qi, name), f"enhanced beta of {name}")
        same_per_class(delta_disclosure_per_class(sc), ct, df, qi,
                       ref.delta_disclosure_per_class(df, qi, name), f"delta of {name}")


# --- relations between metrics ------------------------------------------------------------------

@given(tables())
def test_bounds_and_relations(table):
    df, qi, sa = table
    ct = contingency_table(df, qi, sa)
    k = k_anonymity(ct)
    distinct = l_diversity(ct)
    ent = entropy_l_diversity(ct)
    assert 1 <= distinct <= k
    assert 1 - 1e-12 <= ent <= distinct + 1e-9
    assert recursive_c_l_diversity(ct, c=2.0) <= distinct
    assert 0 <= t_closeness(ct) <= 1
    basic, enhanced = basic_beta_likeness(ct), enhanced_beta_likeness(ct)
    assert 0 <= basic <= enhanced
    assert delta_disclosure(ct) >= 0
    if len(ref.classes(df, qi)) == 1:  # one class: it is the table
        assert t_closeness(ct) == pytest.approx(0, abs=1e-12)
        assert basic == pytest.approx(0, abs=1e-12)
        assert delta_disclosure(ct) == pytest.approx(0, abs=1e-12)


# --- invariances --------------------------------------------------------------------------------

def orderable_subset(sa: list[str]):
    """Some of the SAs (named ``s<i>_<kind>``) whose kind has an order of its own."""
    orderable = [s for s in sa if s.split("_", 1)[1] in ORDERED_KINDS]
    return st.lists(st.sampled_from(orderable), unique=True) if orderable else st.just([])


def all_metrics(df, qi, sa, *, ordered=()) -> dict:
    """Every table-level number the engine reports, keyed by name (one contingency table)."""
    ct = contingency_table(df, qi, sa, ordered=ordered)
    risk = reidentification_risk(ct)
    return {
        "k": k_anonymity(ct),
        "risk.highest": risk.highest, "risk.average": risk.average,
        "risk.records_at_risk": risk.records_at_risk, "risk.uniques": risk.uniques,
        "l": l_diversity(ct),
        "entropy_l": entropy_l_diversity(ct),
        "recursive_l(c=2)": recursive_c_l_diversity(ct, c=2.0),
        "recursive_l(c=1.5)": recursive_c_l_diversity(ct, c=1.5),
        "recursive_c(l=2)": recursive_c(ct, 2),
        "t": t_closeness(ct),
        "basic_beta": basic_beta_likeness(ct),
        "enhanced_beta": enhanced_beta_likeness(ct),
        "delta": delta_disclosure(ct),
    }


def same_metrics(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        same(a[key], b[key], key)


@given(tables(category_order="sorted"), st.data())
def test_row_order_and_index_do_not_matter(table, data):
    df, qi, sa = table
    n = len(df)
    perm = data.draw(st.permutations(list(range(n))), label="row order")
    shuffled = df.iloc[perm]
    shuffled.index = data.draw(index_for(n), label="new index")
    ordered = data.draw(orderable_subset(sa), label="ordered")
    same_metrics(all_metrics(shuffled, qi, sa, ordered=ordered),
                 all_metrics(df, qi, sa, ordered=ordered))
    # record_risk follows the rows it belongs to.
    np.testing.assert_allclose(record_risk(shuffled, qi), record_risk(df, qi)[perm])


@given(tables(), st.randoms(use_true_random=False))
def test_renaming_values_does_not_change_nominal_metrics(table, rnd):
    """Renaming every column's values bijectively (missing included) changes no nominal metric."""
    df, qi, sa = table
    renamed = {}
    for name in df.columns:
        cells = ref.column(df, name)
        distinct = list(dict.fromkeys(cells))
        new_names = [f"r{i}" for i in range(len(distinct))]
        rnd.shuffle(new_names)
        mapping = dict(zip(distinct, new_names))
        renamed[name] = np.array([mapping[c] for c in cells], dtype=object)
    renamed = pd.DataFrame(renamed, index=df.index)
    same_metrics(all_metrics(renamed, qi, sa), all_metrics(df, qi, sa))


@given(tables(), st.randoms(use_true_random=False))
def test_missing_markers_are_one_value(table, rnd):
    """None, NaN and pd.NA are the same value: mixing them in an object column changes nothing."""
    df, qi, sa = table
    mixed = {}
    for name in df.columns:
        cells = ref.column(df, name)
        mixed[name] = np.array([rnd.choice(NA_MARKERS) if c is ref.MISSING else c
                                for c in cells], dtype=object)
    mixed = pd.DataFrame(mixed, index=df.index)
    same_metrics(all_metrics(mixed, qi, sa), all_metrics(df, qi, sa))


@given(tables(max_sa=1))
def test_several_sensitive_attributes_report_the_worst(table):
    """Each SA on its own; the table-level value is the worst over them."""
    df, qi, sa = table
    # A second SA, correlated with the QIs (missing values included).
    df = df.assign(extra=np.array(df[qi[0]].tolist()[::-1], dtype=object))
    both = sa + ["extra"]
    alone = [all_metrics(df, qi, [name]) for name in both]
    together = all_metrics(df, qi, both)
    for key, pick in [("l", min), ("entropy_l", min), ("recursive_l(c=2)", min),
                      ("recursive_c(l=2)", max), ("t", max), ("basic_beta", max),
                      ("enhanced_beta", max), ("delta", max)]:
        same(together[key], pick(m[key] for m in alone), key)


# --- keys wider than 64 bits -------------------------------------------------------------------

@given(tables(min_qi=3, max_qi=8, max_sa=2, max_rows=30,
              qi_kinds=["int_span16", "int_span17", "int_pm1", "str", "float_nan"],
              sa_kinds=["int_span16", "int_span17", "str", "object_missing"]), st.data())
def test_many_wide_quasi_identifiers(table, data):
    """Many high-cardinality QIs: cardinality products beyond 2**62 and 2**63 (re-numbering).

    Regression test for an engine bug: ``combine_codes`` re-numbered the keys inside ``flush()``
    (setting ``radices`` to None) and then appended to ``radices`` for a constant column:
    AttributeError. Minimal table: four columns with values {0, 65535} then a constant column.
    """
    df, qi, sa = table
    ordered = data.draw(orderable_subset(sa), label="ordered")
    ct = contingency_table(df, qi, sa, ordered=ordered)
    assert k_anonymity(ct) == ref.k_anonymity(df, qi)
    assert l_diversity(ct) == ref.l_diversity(df, qi, sa)
    same(entropy_l_diversity(ct), ref.entropy_l_diversity(df, qi, sa), "entropy l")
    same(t_closeness(ct), ref.t_closeness(df, qi, sa, ordered=ordered), "t")
    same(delta_disclosure(ct), ref.delta_disclosure(df, qi, sa), "delta")
    same(enhanced_beta_likeness(ct), ref.enhanced_beta_likeness(df, qi, sa), "enhanced beta")
    np.testing.assert_allclose(record_risk(ct), ref.record_risk(df, qi), rtol=REL)
    for name in sa:
        same_per_class(distinct_l_per_class(ct[name]), ct, df, qi,
                       ref.distinct_l_per_class(df, qi, name), f"distinct l of {name}")


# --- hand-made edge cases -----------------------------------------------------------------------

def test_hand_made_values():
    """A few values worked out by hand from the definitions."""
    df = pd.DataFrame({"q": [1, 1, 1, 1, 2, 2], "s": ["a", "a", "b", "c", "a", "b"]},
                      index=[5, 5, 5, 0, 0, 0])
    # P = (1/2, 1/3, 1/6); class 1: (1/2, 1/4, 1/4); class 2: (1/2, 1/2, 0).
    assert k_anonymity(df, ["q"]) == 2
    assert l_diversity(df, ["q"], "s") == 2
    assert entropy_l_diversity(df, ["q"], "s") == pytest.approx(2.0)
    # class 1 counts (2, 1, 1): c=2 -> l=1: 2 < 4; l=2: 2 < 4; l=3: 2 < 2 fails -> 2.
    assert recursive_c_l_diversity(df, c=2.0, qi=["q"], sensitive="s") == 2
    # recursive_c(l=2): class 1: floor(2/2)+1 = 2; class 2 (1,1): floor(1/1)+1 = 2.
    assert recursive_c(df, 2, qi=["q"], sensitive="s") == 2.0
    assert recursive_c(df, 3, qi=["q"], sensitive="s") == math.inf
    # nominal: class 1: 0.5*(0 + 1/12 + 1/12) = 1/12; class 2: 0.5*(0 + 1/6 + 1/6) = 1/6.
    assert t_closeness(df, ["q"], "s") == pytest.approx(1 / 6)
    # ordered a<b<c: class 2 cumulative diffs (0, 1/6, 0) -> (1/6)/2 = 1/12; class 1 (0,-1/12,0).
    assert t_closeness(df, ["q"], "s", ordered={"s": ["a", "b", "c"]}) == pytest.approx(1 / 12)
    # basic beta: class 2 value b: (1/2 - 1/3)/(1/3) = 1/2; enhanced: 1/2 <= -ln(1/3) -> 1/2.
    assert basic_beta_likeness(df, ["q"], "s") == pytest.approx(0.5)
    assert enhanced_beta_likeness(df, ["q"], "s") == pytest.approx(0.5)
    assert delta_disclosure(df, ["q"], "s") == math.inf  # class 2 lacks c
    risk = reidentification_risk(df, ["q"], threshold=0.3)
    assert (risk.highest, risk.average, risk.records_at_risk, risk.uniques) == \
        (pytest.approx(0.5), pytest.approx(2 / 6), pytest.approx(2 / 6), 0)


def test_missing_values_are_a_class_and_a_value():
    df = pd.DataFrame({"q": [1.0, np.nan, None, 1.0], "s": ["x", None, np.nan, pd.NA]},
                      dtype=object)
    assert k_anonymity(df, ["q"]) == 2
    assert l_diversity(df, ["q"], "s") == 1  # the missing class holds one value: missing
    assert delta_disclosure(df, ["q"], "s") == math.inf


def test_uint64_near_the_top_of_the_range():
    """Regression test for an engine bug: uint64 values above 2**63 with a small span raised
    OverflowError (``_encode_integers`` computed ``values.astype(np.int64) - lo`` with ``lo`` a
    Python int beyond int64). Hash-like ids stored as uint64 hit this.
    """
    df = pd.DataFrame({"q": np.array([2 ** 64 - 1, 2 ** 64 - 2, 2 ** 64 - 1], dtype=np.uint64),
                       "s": [1, 2, 3]})
    assert k_anonymity(df, ["q"]) == 1
    assert l_diversity(df, ["q"], "s") == 1


@given(st.lists(st.sampled_from([0, 1, 2 ** 63, 2 ** 64 - 2, 2 ** 64 - 1]), min_size=1,
                max_size=12))
def test_uint64_columns(values):
    df = pd.DataFrame({"q": np.array(values, dtype=np.uint64),
                       "s": np.array(values[::-1], dtype=np.uint64)})
    assert k_anonymity(df, ["q"]) == ref.k_anonymity(df, ["q"])
    same(t_closeness(df, ["q"], "s", ordered="s"), ref.t_closeness(df, ["q"], "s", ordered="s"))
