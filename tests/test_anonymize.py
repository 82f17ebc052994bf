"""``anonymize_table``: Mondrian generalisation whose output passes its own audit and pycanon's.

Properties on random tables (binary 1/-1 and small categorical QIs, an int or str SA, random k, l
and t): either the requirements are infeasible for the whole table and InputError says so, or the
output

(a) passes privface's audit with the same requirements,
(b) passes pycanon's k-anonymity, l-diversity and t-closeness (QIs and SAs given to pycanon as str
    on a RangeIndex: pycanon's t on a str SA is the nominal EMD privface uses by default),
(c) keeps the input's index, columns and non-QI values; every QI cell is its original value or "*",
(d) is made of Mondrian partitions: a class's "*" QIs really vary among its members (a constant QI
    is never generalised), identical records share a class, and no class could still be cut on one
    of its "*" QIs with every part meeting the requirements,
(e) reports consistent information-loss numbers.

docs/making-it-private.md, "Generalising a table".
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from privface.privmetrics import audit
from privface.privmetrics.anonymize import anonymize_table
from privface.privmetrics.encoding import GENERALISED
from privface.privmetrics.dp import randomized_response
from privface.base.errors import InputError

try:  # the peer library (pinned by the test extra); the core-only run under pandas 3 lacks it
    from pycanon import anonymity as pc
except ImportError:
    pc = None

STAR = GENERALISED
assert STAR == "*"


@contextmanager
def quiet():
    """pycanon's groupby triggers pandas FutureWarnings (observed=False): they are not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --------------------------------------------------------------------------- brute force


def groups(df: pd.DataFrame, qi: list[str]) -> dict[tuple, list[int]]:
    """Equivalence classes as {QI tuple: row positions}, in plain Python (no pandas grouping)."""
    out: dict[tuple, list[int]] = defaultdict(list)
    columns = [df[q].tolist() for q in qi]
    for pos, key in enumerate(zip(*columns) if columns else [()] * len(df)):
        out[key].append(pos)
    return dict(out)


def emd(class_values: list, all_values: list, ordered: bool) -> float:
    """EMD between a class's SA distribution and the table's (nominal or ordered by value)."""
    domain = sorted(set(all_values))
    n, s = len(all_values), len(class_values)
    p = np.array([all_values.count(v) / n for v in domain])
    q = np.array([class_values.count(v) / s for v in domain])
    if ordered:
        return float(np.abs(np.cumsum(q - p)).sum() / max(len(domain) - 1, 1))
    return float(0.5 * np.abs(q - p).sum())


def class_fails(rows: list[int], sa_values: dict[str, list], *, k, l, t, ordered, slack=0.0):
    """Which requirements a set of rows (one class) breaks: a set of keys among k, l, t.

    ``slack`` > 0 counts a class within ``slack`` below t as breaking t (lenient side).
    """
    broken = set()
    if k is not None and len(rows) < k:
        broken.add("k")
    for name, values in sa_values.items():
        mine = [values[i] for i in rows]
        if l is not None and len(set(mine)) < l:
            broken.add("l")
        if t is not None and emd(mine, values, name in ordered) > t - slack:
            broken.add("t")
    return broken


def infeasible(df, sa, *, k, l) -> bool:
    """The whole table, as one class, already fails (t always holds for the whole table)."""
    return (k is not None and len(df) < k) or (
        l is not None and min(df[s].nunique() for s in sa) < l)


def for_pycanon(out: pd.DataFrame, qi: list[str], sa: list[str]) -> pd.DataFrame:
    """QIs and SAs as str on a RangeIndex: what pycanon 1.3.6 handles correctly."""
    conv = out.reset_index(drop=True).copy()
    for col in qi + sa:
        conv[col] = conv[col].astype(str)
    return conv


def check_output(df, out_result, qi, sa, *, k, l, t, ordered=(), original=None):
    """Properties (a)-(e) of one anonymisation, cheapest first (shrinking a failure stays fast).

    ``original``: the QI values before generalisation (the randomised-response release on the
    epsilon path; the input otherwise)."""
    original = df if original is None else original
    out = out_result.table
    ordered = list(ordered)

    # (c) same frame shape; non-QI values untouched; QI cells original or "*".
    assert out.index.equals(df.index)
    assert list(out.columns) == list(df.columns)
    for col in df.columns:
        if col not in qi:
            pd.testing.assert_series_equal(out[col], df[col])
    for q in qi:
        for got, was in zip(out[q].tolist(), original[q].tolist()):
            assert got == was or (isinstance(got, str) and got == STAR), (q, got, was)

    # (d) each output class is one Mondrian partition.
    classes = groups(out, qi)
    sa_values = {s: out[s].tolist() for s in sa}
    orig_cols = {q: original[q].tolist() for q in qi}
    for key, rows in classes.items():
        for j, q in enumerate(qi):
            members = {orig_cols[q][i] for i in rows}
            if isinstance(key[j], str) and key[j] == STAR:
                # Mondrian generalises a QI only where it varies in the partition.
                assert len(members) > 1, f"{q} generalised in a class where it is constant"
                # ...and only because no cut on it keeps every part valid.
                parts = defaultdict(list)
                for i in rows:
                    parts[orig_cols[q][i]].append(i)
                assert any(class_fails(part, sa_values, k=k, l=l, t=t, ordered=ordered,
                                       slack=1e-9) for part in parts.values()), \
                    f"class {key} could still be cut on {q}"
            else:
                assert members == {key[j]}
    # Identical records (same QIs and SAs) end up in one class.
    class_of = {}
    for key, rows in classes.items():
        for i in rows:
            class_of[i] = key
    atoms = groups(original.reset_index(drop=True), qi + sa)
    for rows in atoms.values():
        assert len({class_of[i] for i in rows}) == 1

    # (a) privface's own audit, recomputed from scratch.
    report = audit(out, qi, sa, k=k, l=l, t=t, ordered=ordered)
    assert report.passed, report.to_text()
    assert out_result.audit.passed
    assert out_result.audit.metrics == pytest.approx(report.metrics, nan_ok=True)

    # (e) information loss.
    loss = out_result.loss
    n = len(out)
    stars = {q: sum(1 for v in out[q].tolist() if isinstance(v, str) and v == STAR) for q in qi}
    sizes = np.array([len(r) for r in classes.values()])
    assert loss.generalised_cells == sum(stars.values())
    assert loss.generalised_share == pytest.approx(sum(stars.values()) / (n * len(qi)))
    assert loss.suppressed_rows == 0
    assert loss.n_classes == len(classes) == report.n_classes
    assert loss.discernibility == int((sizes ** 2).sum())
    assert loss.average_class_size == pytest.approx(n / len(classes))
    if k:
        assert loss.normalized_average_class_size == pytest.approx(n / len(classes) / k)
    else:
        assert math.isnan(loss.normalized_average_class_size)
    assert loss.per_attribute == pytest.approx({q: stars[q] / n for q in qi})

    # The certificate is JSON and says what was asked and reached.
    cert = json.loads(json.dumps(out_result.certificate()))
    assert cert["passed"] is True
    assert cert["requirements"] == {name: v for name, v in (("k", k), ("l", l), ("t", t))
                                    if v is not None}
    assert cert["quasi_identifiers"] == qi and cert["sensitive"] == sa
    assert cert["n_records"] == n
    assert cert["information_loss"]["generalised_cells"] == loss.generalised_cells
    assert cert["reached"]["k_anonymity"] == report.metrics["k_anonymity"]

    # (b) pycanon's audit on the same output (last: the slowest check), where it is installed.
    if pc is None:
        return classes
    conv = for_pycanon(out, qi, sa)
    with quiet():
        if k is not None:
            assert pc.k_anonymity(conv, qi) >= k
        if l is not None:
            assert pc.l_diversity(conv, qi, sa) >= l
        nominal = [s for s in sa if s not in ordered]
        if t is not None and nominal:
            assert pc.t_closeness(conv, qi, nominal) <= t + 1e-9
        if t is not None and ordered:
            # pycanon uses the ordered distance for numeric SAs: give it the ordered ones as ints.
            for s in ordered:
                num = conv.copy()
                num[s] = out[s].to_numpy()
                if num[s].nunique() >= 2:  # pycanon divides by m - 1
                    assert pc.t_closeness(num, qi, [s]) <= t + 1e-9
    return classes


# --------------------------------------------------------------------------- random tables

QI_POOLS = {"binary": [1, -1], "cat_str": ["a", "b", "c"], "cat_int": [0, 5, 9]}
SA_POOLS = {"int": [1, 2, 3, 10], "str": ["x", "y", "z", "w"]}


@st.composite
def tables(draw, min_rows=1, max_rows=40, max_sa=2):
    n = draw(st.integers(min_rows, max_rows))
    data, qi, sa = {}, [], []
    for i in range(draw(st.integers(1, 4))):
        pool = QI_POOLS[draw(st.sampled_from(sorted(QI_POOLS)))]
        data[f"q{i}"] = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
        qi.append(f"q{i}")
    for i in range(draw(st.integers(1, max_sa))):
        kind = draw(st.sampled_from(sorted(SA_POOLS)))
        col = draw(st.lists(st.sampled_from(SA_POOLS[kind]), min_size=n, max_size=n))
        data[f"s{i}"] = np.array(col, dtype=np.int64 if kind == "int" else object)
        sa.append(f"s{i}")
    data["note"] = [f"row{i}" for i in range(n)]  # a column that is neither QI nor SA
    index_kind = draw(st.sampled_from(["range", "shifted", "shuffled", "labels"]))
    index = {
        "range": pd.RangeIndex(n),
        "shifted": pd.RangeIndex(100, 100 + n),
        "shuffled": pd.Index(draw(st.permutations(list(range(n))))),
        "labels": pd.Index([f"{i:06d}.jpg" for i in range(n)], name="image_id"),
    }[index_kind]
    df = pd.DataFrame(data, index=index)
    return df, qi, sa


requirements = st.fixed_dictionaries({
    "k": st.none() | st.integers(1, 6),
    "l": st.none() | st.integers(1, 3),
    "t": st.none() | st.floats(0.05, 1.0),
}).filter(lambda r: any(v is not None for v in r.values()))


@given(tables(), requirements)
def test_output_passes_both_audits_or_requirements_are_infeasible(table, req):
    df, qi, sa = table
    before = df.copy(deep=True)
    try:
        result = anonymize_table(df, qi, sa, **req)
    except InputError as exc:
        event("infeasible")
        assert infeasible(df, sa, k=req["k"], l=req["l"]), str(exc)
        assert "no generalisation can meet" in str(exc)
        return
    event("feasible")
    assert not infeasible(df, sa, k=req["k"], l=req["l"])
    pd.testing.assert_frame_equal(df, before)  # the input is not modified
    classes = check_output(df, result, qi, sa, **req)
    event(f"classes={min(len(classes), 5)}")


@st.composite
def ordered_tables(draw):
    """Binary QIs and one int SA measured with the ordered distance (values with gaps: 10)."""
    n = draw(st.integers(2, 24))
    qi = [f"q{i}" for i in range(draw(st.integers(1, 3)))]
    data = {q: draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n)) for q in qi}
    data["s"] = np.array(draw(st.lists(st.sampled_from(SA_POOLS["int"]), min_size=n,
                                       max_size=n)), dtype=np.int64)
    df = pd.DataFrame(data)
    return df, qi, ["s"]


@given(ordered_tables(), st.floats(0.05, 1.0), st.integers(1, 4))
def test_ordered_sensitive_attribute(table, t, k):
    df, qi, sa = table
    assume(len(df) >= k)
    result = anonymize_table(df, qi, sa, k=k, t=t, ordered=sa)
    check_output(df, result, qi, sa, k=k, l=None, t=t, ordered=sa)


def test_ordered_integer_sa_with_gaps_passes_its_own_audit():
    """The ordered distance is over the SA's distinct values (1 < 2 < 10: m - 1 = 2), as in the
    audit and pycanon. Splitting on q puts s = [2] alone: ordered EMD 0.4 > 0.25, so the split is
    not allowed and q must be generalised."""
    df = pd.DataFrame({"q": [1, 1, 1, 1, -1], "s": [1, 1, 1, 10, 2]})
    assert audit(df, ["q"], "s", t=0.25, ordered="s").metrics["t_closeness"] == \
        pytest.approx(0.4)
    result = anonymize_table(df, ["q"], "s", t=0.25, ordered="s")
    assert (result.table["q"] == STAR).all()
    check_output(df, result, ["q"], ["s"], k=None, l=None, t=0.25, ordered=["s"])


def test_ordered_integer_sa_with_gaps_is_not_over_generalised():
    """Both classes are within ordered EMD 0.25 (0.133 and 0.2 over 1 < 2 < 10): the table already
    meets t and Mondrian must keep q."""
    df = pd.DataFrame({"q": [1, 1, -1, -1, 1], "s": [1, 1, 1, 10, 2]})
    assert audit(df, ["q"], "s", t=0.25, ordered="s").passed
    result = anonymize_table(df, ["q"], "s", t=0.25, ordered="s")
    pd.testing.assert_frame_equal(result.table, df)


def test_multiple_sensitive_attributes_each_meet_l():
    """s0 alone would allow a split on q; s1 is constant within each half, so l=2 forbids it."""
    df = pd.DataFrame({
        "q": [1, 1, 1, 1, -1, -1, -1, -1],
        "s0": ["x", "y", "x", "y", "x", "y", "x", "y"],
        "s1": [7, 7, 7, 7, 8, 8, 8, 8],
    })
    assert (anonymize_table(df, ["q"], "s0", l=2).table["q"] == df["q"]).all()
    result = anonymize_table(df, ["q"], ["s0", "s1"], l=2)
    assert (result.table["q"] == STAR).all()
    assert result.audit.by_sensitive["s1"]["l_diversity"] == 2
    check_output(df, result, ["q"], ["s0", "s1"], k=None, l=2, t=None)


@given(tables(min_rows=1), st.sampled_from([{"k": 1}, {"l": 1}, {"t": 1.0},
                                           {"k": 1, "l": 1, "t": 1.0}]))
def test_trivial_requirements_leave_the_table_unchanged(table, req):
    """k=1, l=1 and t=1 hold for every partition: Mondrian cuts down to the original classes."""
    df, qi, sa = table
    result = anonymize_table(df, qi, sa, **req)
    pd.testing.assert_frame_equal(result.table, df)
    assert result.loss.generalised_cells == 0
    assert result.loss.n_classes == len(groups(df, qi))


def test_k_equal_to_the_table_size_generalises_all_varying_qis():
    df = pd.DataFrame({"a": [1, -1, 1, -1], "b": [1, 1, 1, 1], "s": ["x", "y", "z", "w"]})
    result = anonymize_table(df, ["a", "b"], "s", k=4)
    assert result.table["a"].tolist() == [STAR] * 4
    assert result.table["b"].tolist() == [1, 1, 1, 1]  # constant: kept
    assert result.loss.n_classes == 1 and result.loss.discernibility == 16


def test_docstring_example_numbers():
    df = pd.DataFrame({"Male": [1, 1, 1, 1, -1, -1, -1, -1],
                       "Young": [1, 1, -1, -1, 1, -1, 1, -1],
                       "identity": [1, 2, 3, 4, 5, 6, 7, 8]})
    result = anonymize_table(df, ["Male", "Young"], "identity", k=4)
    assert result.loss.generalised_cells == 8
    assert result.loss.generalised_share == 0.5
    assert result.loss.n_classes == 2 and result.loss.discernibility == 32
    assert result.loss.per_attribute == {"Male": 0.0, "Young": 1.0}
    check_output(df, result, ["Male", "Young"], ["identity"], k=4, l=None, t=None)


# --------------------------------------------------------------------------- infeasible


@pytest.mark.parametrize("req, needle", [
    ({"k": 5}, "fewer than k=5"),
    ({"l": 3}, "fewer than l=3"),
    ({"k": 5, "l": 3}, "fewer than k=5"),
])
def test_infeasible_requirements_raise_and_say_why(req, needle):
    df = pd.DataFrame({"q": [1, -1, 1, -1], "s": ["x", "y", "x", "y"]})
    with pytest.raises(InputError, match="no generalisation can meet") as info:
        anonymize_table(df, ["q"], "s", **req)
    assert needle in str(info.value)


def test_t_zero_is_feasible():
    """t = 0 holds for the whole table as one class (its distribution is the table's), and this
    table already meets it: both classes have the table's SA distribution. anonymize_table must
    not call it infeasible."""
    df = pd.DataFrame({"q": [1, 1, -1, -1], "s": ["x", "y", "x", "y"]})
    assert audit(df, ["q"], "s", t=0).passed
    result = anonymize_table(df, ["q"], "s", t=0)
    check_output(df, result, ["q"], ["s"], k=None, l=None, t=0)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, match", [
    ({}, "at least one requirement"),
    ({"k": 0}, "requirement k"),
    ({"k": 2.5}, "requirement k"),
    ({"k": True}, "requirement k"),
    ({"l": 0}, "requirement l"),
    ({"t": -0.1}, "requirement t"),
    ({"t": 1.5}, "requirement t"),
    ({"t": float("nan")}, "requirement t"),
    ({"k": 2, "epsilon": 0}, "epsilon"),
    ({"k": 2, "epsilon": -1.0}, "epsilon"),
    ({"k": 2, "epsilon": float("inf")}, "epsilon"),
])
def test_bad_requirements_raise_input_error(kwargs, match):
    df = pd.DataFrame({"q": [1, -1, 1, -1], "s": ["x", "y", "x", "y"]})
    with pytest.raises(InputError, match=match):
        anonymize_table(df, ["q"], "s", **kwargs)


@pytest.mark.parametrize("qi, sa, kwargs", [
    (["q"], None, {"l": 2}),
    (["q"], None, {"t": 0.5}),
    (["nope"], "s", {"k": 2}),
    (["q"], "nope", {"l": 2}),
])
def test_bad_columns_raise_input_error(qi, sa, kwargs):
    df = pd.DataFrame({"q": [1, -1, 1, -1], "s": ["x", "y", "x", "y"]})
    with pytest.raises(InputError):
        anonymize_table(df, qi, sa, **kwargs)


# --------------------------------------------------------------------------- epsilon


@settings(max_examples=max(10, settings.default.max_examples // 3))
@given(tables(min_rows=6), st.floats(0.5, 8.0), st.integers(0, 2**31 - 1), st.integers(1, 3))
def test_epsilon_path_is_seeded_certified_and_passes(table, epsilon, seed, k):
    df, qi, sa = table
    before = df.copy(deep=True)
    try:
        result = anonymize_table(df, qi, sa, k=k, l=1, epsilon=epsilon, seed=seed)
    except InputError as exc:
        # Randomised response refuses a column showing one value whose domain it cannot guess
        # (CelebA's 1/-1 columns get {-1, 1}).
        assert "domain" in str(exc)
        result = None
    assume(result is not None)
    pd.testing.assert_frame_equal(df, before)
    dp = result.certificate()["differential_privacy"]
    assert dp["seeded"] is True and dp["seed"] == seed
    assert dp["epsilon"] == pytest.approx(epsilon)
    assert sum(dp["per_attribute"].values()) == pytest.approx(epsilon)
    assert set(dp["per_attribute"]) == set(qi)
    json.dumps(result.certificate())
    # The generalisation is applied to the randomised release, which the certificate's seed and
    # domains reproduce: cells are released values or "*".
    release = randomized_response(df, qi, epsilon, seed=seed, domains=dp["domains"]).table
    check_output(df, result, qi, sa, k=k, l=1, t=None, original=release)
    # Same seed, same output.
    again = anonymize_table(df, qi, sa, k=k, l=1, epsilon=epsilon, seed=seed)
    pd.testing.assert_frame_equal(again.table, result.table)


def test_epsilon_without_seed_is_recorded_unseeded():
    df = pd.DataFrame({"q": [1, -1] * 10, "r": [1, 1, -1, -1] * 5, "s": list("xyzw") * 5})
    result = anonymize_table(df, ["q", "r"], "s", k=3, epsilon=2.0)
    dp = result.certificate()["differential_privacy"]
    assert dp["seeded"] is False and dp["seed"] is None and dp["epsilon"] == 2.0
    assert audit(result.table, ["q", "r"], "s", k=3).passed


def test_no_epsilon_records_dp_not_applied():
    df = pd.DataFrame({"q": [1, -1] * 4, "s": list("xyzw") * 2})
    cert = anonymize_table(df, ["q"], "s", k=2).certificate()
    assert cert["differential_privacy"]["applied"] is False
    assert cert["differential_privacy"]["epsilon"] == 0


# --------------------------------------------------------------------------- Parquet round trip


def test_output_with_mixed_generalised_column_is_writable_as_parquet(tmp_path):
    """A QI column mixing original ints and "*" is an object column pyarrow cannot store as is."""
    pytest.importorskip("pyarrow")
    from privface.privmetrics.readers import read_table, write_table

    df = pd.DataFrame({"Male": [1, 1, 1, 1, -1, -1, -1, -1],
                       "Young": [1, 1, 1, 1, 1, -1, 1, -1],
                       "Hat": [1, -1, 1, -1, 1, 1, -1, -1]})
    out = anonymize_table(df, ["Male", "Young", "Hat"], k=2).table
    assert (out["Hat"] == STAR).any() and (out["Hat"] != STAR).any()
    write_table(out, tmp_path / "out.parquet")
    back = read_table(tmp_path / "out.parquet")
    assert audit(back, ["Male", "Young", "Hat"], k=2).passed


# --------------------------------------------------------------------------- real data

QI10_COUNT = 10


@pytest.fixture(scope="module")
def celeba_identities(celeba_dir):
    if pc is None:
        pytest.skip("pycanon (the peer library) is not installed")
    from privface.privmetrics.readers import (join_identities, read_celeba_attributes,
                                              read_celeba_identities)

    attrs = read_celeba_attributes(celeba_dir / "list_attr_celeba_first20k.txt")
    return join_identities(attrs, read_celeba_identities(celeba_dir / "identity_CelebA.txt"))


@pytest.mark.realdata
def test_real_celeba_k5_l2_t02_passes_privface_and_pycanon(celeba_identities, capsys):
    table = celeba_identities
    qi = list(table.columns[:QI10_COUNT])
    start = time.perf_counter()
    result = anonymize_table(table, qi, "identity", k=5, l=2, t=0.2)
    took = time.perf_counter() - start
    out = result.table
    assert audit(out, qi, "identity", k=5, l=2, t=0.2).passed
    assert out.index.equals(table.index)
    assert (out["identity"] == table["identity"]).all()
    # pycanon on its terms: str QIs, RangeIndex, the SA as str so that its t is the nominal one.
    # A category of str is a str dtype to pycanon and keeps its per-value filter fast.
    conv = for_pycanon(out, qi, [])
    conv["identity"] = pd.Categorical(out["identity"].astype(str).to_numpy())
    start = time.perf_counter()
    with quiet():
        k_pc = pc.k_anonymity(conv, qi)
        l_pc = pc.l_diversity(conv, qi, ["identity"])
        t_pc = pc.t_closeness(conv, qi, ["identity"])
    took_pc = time.perf_counter() - start
    assert k_pc >= 5 and l_pc >= 2 and t_pc <= 0.2 + 1e-9
    assert k_pc == result.audit.metrics["k_anonymity"]
    assert l_pc == result.audit.metrics["l_diversity"]
    assert t_pc == pytest.approx(result.audit.metrics["t_closeness"], abs=1e-9)
    assert took_pc < 30, f"pycanon took {took_pc:.1f} s"
    with capsys.disabled():
        print(f"\n[real k=5 l=2 t=0.2, 10 QIs] classes={result.loss.n_classes} "
              f"generalised_share={result.loss.generalised_share:.4f} "
              f"anonymize={took:.2f}s pycanon={took_pc:.2f}s")


@pytest.mark.realdata
def test_real_celeba_k5_l2_keeps_most_detail(celeba_identities, capsys):
    table = celeba_identities
    qi = list(table.columns[:QI10_COUNT])
    start = time.perf_counter()
    result = anonymize_table(table, qi, "identity", k=5, l=2)
    took = time.perf_counter() - start
    out = result.table
    assert audit(out, qi, "identity", k=5, l=2).passed
    assert result.loss.generalised_share < 0.2
    conv = for_pycanon(out, qi, ["identity"])
    with quiet():
        assert pc.k_anonymity(conv, qi) == result.audit.metrics["k_anonymity"] >= 5
        assert pc.l_diversity(conv, qi, ["identity"]) == result.audit.metrics["l_diversity"] >= 2
    assert took < 10
    with capsys.disabled():
        print(f"\n[real k=5 l=2, 10 QIs] classes={result.loss.n_classes} "
              f"generalised_share={result.loss.generalised_share:.4f} "
              f"discernibility={result.loss.discernibility} anonymize={took:.2f}s")


@pytest.mark.realdata
def test_real_celeba_binary_sa_t_closeness_agrees_with_pycanon(celeba_identities):
    """A t that does not collapse everything: SA Male (two values), 10 other QIs, t=0.1."""
    table = celeba_identities
    qi = list(table.columns[:QI10_COUNT])
    assert "Male" not in qi
    result = anonymize_table(table, qi, "Male", k=5, l=2, t=0.1)
    assert result.loss.n_classes > 1
    check_out = result.table
    assert audit(check_out, qi, "Male", k=5, l=2, t=0.1).passed
    conv = for_pycanon(check_out, qi, ["Male"])
    with quiet():
        t_pc = pc.t_closeness(conv, qi, ["Male"])
    assert t_pc <= 0.1 + 1e-9
    assert t_pc == pytest.approx(result.audit.metrics["t_closeness"], abs=1e-9)


@pytest.mark.parametrize("dtype", [object, "string", pd.StringDtype("python", na_value=np.nan)],
                         ids=["object", "string", "str"])
def test_a_generalised_text_column_keeps_its_dtype(dtype):
    """"*" fits a text column: a `string` or pandas 3 `str` QI stays so; an int QI becomes object
    to hold "*" beside its numbers; the untouched columns keep their dtypes."""
    df = pd.DataFrame({"zip": pd.Series(["02134", "02139"] * 4, dtype=dtype),
                       "n": [1, 2, 1, 2, 3, 4, 3, 4], "s": list(range(8))})
    result = anonymize_table(df, ["zip", "n"], "s", k=8)
    assert result.table["zip"].dtype == df["zip"].dtype
    assert result.table["n"].dtype == object and result.table["s"].dtype == df["s"].dtype
    assert result.table["zip"].tolist() == [STAR] * 8
