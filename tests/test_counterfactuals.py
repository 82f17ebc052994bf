"""``explain``: how far a table is from its requirements, and the smallest QI sets to withhold.

Checked against a brute force on small random tables: the share of records in breaking classes,
and (when the search is exhaustive) exactly the passing QI sets of the smallest size, least
discernibility first. Withholding a set = dropping those QIs from the grouping; with every QI
withheld the table is one class.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from privface.privmetrics import audit
from privface.privmetrics.counterfactuals import explain

# --------------------------------------------------------------------------- brute force


def groups(df: pd.DataFrame, qi) -> list[list[int]]:
    out: dict[tuple, list[int]] = defaultdict(list)
    columns = [df[q].tolist() for q in qi]
    for pos, key in enumerate(zip(*columns) if columns else [()] * len(df)):
        out[key].append(pos)
    return list(out.values())


def emd(mine: list, values: list, ordered: bool) -> float:
    domain = sorted(set(values))
    p = np.array([values.count(v) / len(values) for v in domain])
    q = np.array([mine.count(v) / len(mine) for v in domain])
    if ordered:
        return float(np.abs(np.cumsum(q - p)).sum() / max(len(domain) - 1, 1))
    return float(0.5 * np.abs(q - p).sum())


class Brute:
    """Per-class verdicts for any set of withheld QIs."""

    def __init__(self, df, qi, sa, *, k=None, l=None, t=None, ordered=()):
        self.df, self.qi, self.sa = df, list(qi), list(sa)
        self.k, self.l, self.t, self.ordered = k, l, t, set(ordered)
        self.values = {s: df[s].tolist() for s in sa}
        self.margins: list[float] = []  # |EMD - t| of every class seen (ties are float-fragile)

    def keys(self):
        return [name for name, v in (("k", self.k), ("l", self.l), ("t", self.t))
                if v is not None]

    def breaking(self, withheld=()) -> dict[str, float]:
        kept = [q for q in self.qi if q not in withheld]
        counts = dict.fromkeys(self.keys(), 0)
        for rows in groups(self.df, kept):
            if self.k is not None and len(rows) < self.k:
                counts["k"] += len(rows)
            l_broken = t_broken = False
            for s, values in self.values.items():
                mine = [values[i] for i in rows]
                if self.l is not None and len(set(mine)) < self.l:
                    l_broken = True
                if self.t is not None:
                    d = emd(mine, values, s in self.ordered)
                    self.margins.append(abs(d - self.t))
                    t_broken |= d > self.t
            if l_broken:
                counts["l"] += len(rows)
            if t_broken:
                counts["t"] += len(rows)
        return {key: c / len(self.df) for key, c in counts.items()}

    def passes(self, withheld=()) -> bool:
        return not any(self.breaking(withheld).values())

    def discernibility(self, withheld) -> int:
        kept = [q for q in self.qi if q not in withheld]
        return sum(len(r) ** 2 for r in groups(self.df, kept))

    def minimal_passing(self):
        """(size, sets) of the smallest passing withheld sets, sorted like explain sorts them."""
        for size in range(len(self.qi) + 1):
            passing = [s for s in combinations(self.qi, size) if self.passes(s)]
            if passing:
                return size, sorted(passing, key=lambda s: (self.discernibility(s), s))
        return None, []  # not even withholding everything passes


def audit_without(df, qi, sa, withheld, **req):
    """privface's audit on the table with the withheld QIs dropped (one class when none is left)."""
    kept = [q for q in qi if q not in withheld]
    if not kept:
        df = df.assign(_all_withheld="*")
        kept = ["_all_withheld"]
    return audit(df, kept, sa or None, **req)


# --------------------------------------------------------------------------- random tables


@st.composite
def tables(draw, max_qi=6, max_rows=30):
    n = draw(st.integers(2, max_rows))
    data, qi, sa, ordered = {}, [], [], []
    for i in range(draw(st.integers(1, max_qi))):
        pool = draw(st.sampled_from([[1, -1], [1, -1], ["a", "b", "c"], [0, 1, 2, 3]]))
        # Skewed columns make some QIs matter more than others.
        weights = draw(st.sampled_from(["uniform", "skewed"]))
        if weights == "skewed":
            col = draw(st.lists(st.sampled_from([pool[0]] * 4 + pool[1:]), min_size=n,
                                max_size=n))
        else:
            col = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
        data[f"q{i}"] = col
        qi.append(f"q{i}")
    for i in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            data[f"s{i}"] = draw(st.lists(st.sampled_from("xyzw"), min_size=n, max_size=n))
        else:
            data[f"s{i}"] = draw(st.lists(st.sampled_from([1, 2, 3, 4]), min_size=n,
                                          max_size=n))
            if draw(st.booleans()):
                ordered.append(f"s{i}")
        sa.append(f"s{i}")
    df = pd.DataFrame(data)
    if draw(st.booleans()):
        df.index = pd.Index([f"{i:06d}.jpg" for i in range(n)], name="image_id")
    return df, qi, sa, ordered


@st.composite
def cases(draw, **kwargs):
    df, qi, sa, ordered = draw(tables(**kwargs))
    req = {"k": draw((st.none() if sa else st.nothing()) | st.integers(1, 6))}
    if sa:
        req["l"] = draw(st.none() | st.integers(1, 3))
        req["t"] = draw(st.none() | st.floats(0.05, 1.0))
    assume(any(v is not None for v in req.values()))
    return df, qi, sa, ordered, {key: v for key, v in req.items() if v is not None}


def _call(df, qi, sa, ordered, req, **kw):
    return explain(df, qi, sa or None, ordered=ordered, **req, **kw)


@given(cases())
def test_records_breaking_matches_brute_force(case):
    df, qi, sa, ordered, req = case
    brute = Brute(df, qi, sa, ordered=ordered, **req)
    expected = brute.breaking()
    assume(all(m > 1e-9 for m in brute.margins))
    result = _call(df, qi, sa, ordered, req)
    assert list(result.records_breaking) == brute.keys()
    assert result.records_breaking == pytest.approx(expected)
    assert result.passed == (not any(expected.values()))
    if result.passed:
        event("passed")
        assert result.counterfactuals == []


@given(cases())
def test_exhaustive_search_returns_exactly_the_minimal_passing_sets(case):
    df, qi, sa, ordered, req = case
    brute = Brute(df, qi, sa, ordered=ordered, **req)
    size, passing = brute.minimal_passing()
    assume(all(m > 1e-9 for m in brute.margins))
    result = _call(df, qi, sa, ordered, req, max_size=len(qi), limit=1000)
    if size == 0:
        event("already passes")
        assert result.passed and result.counterfactuals == []
        return
    assert not result.passed
    if size is None:
        event("impossible")
        assert result.search == "none found" and result.counterfactuals == []
        assert result.all_generalised is None
        assert result.closest is not None
        return
    event(f"minimal size {size}")
    assert result.search == "exhaustive"
    got = [cf.generalise for cf in result.counterfactuals]
    assert got == passing
    for cf in result.counterfactuals:
        kept = [q for q in qi if q not in cf.generalise]
        sizes = [len(r) for r in groups(df, kept)]
        assert cf.n_classes == len(sizes)
        assert cf.discernibility == sum(s * s for s in sizes)
        assert cf.metrics["k_anonymity"] == min(sizes)
        assert cf.generalised_share == pytest.approx(len(cf.generalise) / len(qi))
    # The default limit returns the first five of them.
    limited = _call(df, qi, sa, ordered, req, max_size=len(qi))
    assert [cf.generalise for cf in limited.counterfactuals] == passing[:5]


@given(cases())
def test_returned_sets_pass_the_audit_and_so_do_their_supersets(case):
    df, qi, sa, ordered, req = case
    brute = Brute(df, qi, sa, ordered=ordered, **req)
    brute.breaking()
    assume(all(m > 1e-9 for m in brute.margins))
    result = _call(df, qi, sa, ordered, req)  # default max_size=4, beam=5, limit=5
    if result.passed:
        assert audit(df, qi, sa or None, ordered=ordered, **req).passed
        return
    assert not audit(df, qi, sa or None, ordered=ordered, **req).passed
    assert result.max_size == min(4, len(qi))
    for cf in result.counterfactuals:
        assert audit_without(df, qi, sa, cf.generalise, ordered=ordered, **req).passed
        rest = [q for q in qi if q not in cf.generalise]
        for extra in range(1, len(rest) + 1):
            for more in combinations(rest, extra):
                superset = tuple(cf.generalise) + more
                assert audit_without(df, qi, sa, superset, ordered=ordered, **req).passed
    if result.search == "none found":
        event("none found")
        everything = audit_without(df, qi, sa, tuple(qi), ordered=ordered, **req).passed
        assert (result.all_generalised is not None) == everything
        # No set up to max_size passes.
        for size in range(1, result.max_size + 1):
            for s in combinations(qi, size):
                assert not brute.passes(s)
    else:
        sizes = {len(cf.generalise) for cf in result.counterfactuals}
        assert len(sizes) == 1 and result.counterfactuals


def test_docstring_example():
    df = pd.DataFrame({"Male": [1, 1, -1, -1], "Hat": [1, -1, 1, -1], "Young": [1] * 4})
    e = explain(df, ["Male", "Hat", "Young"], k=2)
    assert e.records_breaking == {"k": 1.0}
    assert [cf.generalise for cf in e.counterfactuals] == [("Hat",), ("Male",)]
    assert e.search == "exhaustive"
    assert "no smaller set exists" in e.to_text()


def test_passed_table_returns_passed():
    df = pd.DataFrame({"q": [1, 1, -1, -1], "s": ["x", "y", "x", "y"]})
    e = explain(df, ["q"], "s", k=2, l=2, t=0.01)
    assert e.passed and e.counterfactuals == []
    assert e.records_breaking == {"k": 0.0, "l": 0.0, "t": 0.0}
    assert e.to_text() == "Every requirement already holds."


def test_impossible_requirements_say_so():
    df = pd.DataFrame({"q": [1, -1, 1], "r": [1, 1, -1], "s": ["x", "x", "x"]})
    e = explain(df, ["q", "r"], "s", l=2)
    assert not e.passed and e.search == "none found" and e.all_generalised is None
    assert "cannot be met by generalisation" in e.to_text()


def test_needs_a_requirement():
    with pytest.raises(ValueError):
        explain(pd.DataFrame({"q": [1, -1]}), ["q"])


# --------------------------------------------------------------------------- beam search


@st.composite
def wide_tables(draw, n_qi=20):
    """Many QIs: most are block-level (constant on blocks of 5 rows, so they never break k <= 5),
    a few are noisy row-level ones. The minimal set is among the noisy QIs, and sizes 3 and up
    exceed the exhaustive limit (C(20, 3) = 1140 > 1000), so the search switches to the beam."""
    blocks = draw(st.integers(4, 12))
    n = 5 * blocks
    noisy = draw(st.integers(3, 6))
    data = {}
    for i in range(n_qi):
        if i < noisy:
            col = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
        else:
            per_block = draw(st.lists(st.sampled_from([1, -1]), min_size=blocks,
                                      max_size=blocks))
            col = [per_block[r // 5] for r in range(n)]
        data[f"q{i:02d}"] = col
    data["s"] = draw(st.lists(st.sampled_from("xyzw"), min_size=n, max_size=n))
    df = pd.DataFrame(data)
    names = list(df.columns[:-1])
    order = draw(st.permutations(names))  # noisy QIs anywhere in the order
    df = df[list(order) + ["s"]]
    return df, list(order)


@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(wide_tables(), st.integers(2, 5), st.sampled_from([None, 2]))
def test_beam_search_returns_sets_that_really_pass(table, k, l):
    df, qi = table
    req = {"k": k} if l is None else {"k": k, "l": l}
    result = explain(df, qi, "s", **req, max_size=6)
    if result.passed:
        return
    brute = Brute(df, qi, ["s"], **req)
    event(result.search)
    if result.search == "none found":
        return
    sizes = {len(cf.generalise) for cf in result.counterfactuals}
    assert len(sizes) == 1
    size = sizes.pop()
    # Sizes 1 and 2 are searched exhaustively: a set found later is never smaller than needed.
    for smaller in range(1, min(size, 3)):
        assert not any(brute.passes(s) for s in combinations(qi, smaller))
    if size >= 3:
        assert result.search == "beam"
        assert "beam search" in result.to_text()
    for cf in result.counterfactuals:
        assert audit_without(df, qi, ["s"], cf.generalise, **req).passed
        assert brute.passes(cf.generalise)


def test_beam_search_on_more_qis_than_one_int64_key_holds():
    """68 binary QIs: the class keys are re-numbered (no mixed-radix place values), so withheld
    sets are evaluated by regrouping the rows. Rows 2m and 2m+1 agree on the 66 structured QIs
    (pairs: k=2 holds); two noisy QIs break some pairs, and withholding them both fixes it."""
    from privface.privmetrics import contingency_table

    rng = np.random.default_rng(5)
    n = 40
    pair = np.arange(n) // 2
    data = {f"c{j:02d}": np.where(np.isin(pair, [j % 20, (3 * j + 1) % 20]), -1, 1)
            for j in range(66)}
    data["noisy_a"] = rng.choice([1, -1], n)
    data["noisy_b"] = rng.choice([1, -1], n)
    data["s"] = rng.choice(list("xyz"), n)
    df = pd.DataFrame(data)
    qi = [c for c in df.columns if c != "s"]
    assert contingency_table(df, qi, "s").row_keys.radices is None
    brute = Brute(df, qi, ["s"], k=2)
    assert not brute.passes() and brute.passes(("noisy_a", "noisy_b"))
    result = explain(df, qi, "s", k=2, max_size=3, beam=3)
    assert not result.passed
    assert result.records_breaking == pytest.approx(brute.breaking())
    assert result.counterfactuals, result.to_text()
    if len(result.counterfactuals[0].generalise) == 2:
        assert result.search == "beam"  # C(68, 2) = 2278 sets: more than the exhaustive limit
    for cf in result.counterfactuals:
        assert brute.passes(cf.generalise)
        assert audit_without(df, qi, ["s"], cf.generalise, k=2).passed
        assert cf.discernibility == brute.discernibility(cf.generalise)
