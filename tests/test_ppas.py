"""PPAS (privacy-preserving attribute selection) against brute force, statistics and real data.

The brute force below reads the reference's classes from ``class_view`` (the audit's per-class
metrics), then searches every class by hand for each face: the feasible ones, those that agree
with the face outside the editable attributes, the nearest, and the best reachable k, l and t.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from privface.privmetrics.ppas import bits as ppas_bits
from privface.base.errors import InputError
from privface.privmetrics.ppas import (
    NO_DP_GUARANTEE,
    PPASInfeasibleError,
    select_attributes,
)
from privface.privmetrics.dp import flip_probability, randomized_response
from privface.privmetrics.views import class_view

# --------------------------------------------------------------------------- brute force

_NAN = ("missing",)


def _cell(x):
    """A hashable, NaN-safe stand-in for one QI value."""
    try:
        if pd.isna(x):
            return _NAN
    except (TypeError, ValueError):
        pass
    if isinstance(x, np.generic):
        x = x.item()
    return x


def _key(row, qi) -> tuple:
    return tuple(_cell(row[c]) for c in qi)


def _classes(R, qi, sens, ordered=()):
    """{class key: (size, l, t)} of the reference, from the audit's per-class view."""
    view = class_view(R, qi, sens, ordered=ordered)
    out = {}
    for _, row in view.iterrows():
        out[_key(row, qi)] = (
            int(row["size"]),
            int(min(row[f"{s}.l_diversity"] for s in sens)),
            float(max(row[f"{s}.t_closeness"] for s in sens)),
        )
    return out


def _ok(stats, k, l, t) -> bool:
    size, lv, tv = stats
    return ((k is None or size >= k) and (l is None or lv >= l)
            and (t is None or tv <= t))


def _brute(classes, face_key, qi, editable, k, l, t):
    """(nearest distance or None, set of nearest keys, best k, best l, best t) for one face."""
    fixed = [j for j, c in enumerate(qi) if c not in editable]
    agree = {key: st_ for key, st_ in classes.items()
             if all(key[j] == face_key[j] for j in fixed)}
    best_k = max((s[0] for s in agree.values()), default=0)
    best_l = max((s[1] for s in agree.values()), default=0)
    best_t = min((s[2] for s in agree.values()), default=math.inf)
    feas = {key: sum(a != b for a, b in zip(key, face_key))
            for key, s in agree.items() if _ok(s, k, l, t)}
    if not feas:
        return None, set(), best_k, best_l, best_t
    d = min(feas.values())
    return d, {key for key, v in feas.items() if v == d}, best_k, best_l, best_t


# --------------------------------------------------------------------------- random tables

# Two values per QI, in the dtypes a user may hand us.
_PAIRS = [
    ((1, -1), "int8"),
    ((0, 1), "int64"),
    (("y", "n"), object),
    ((True, False), bool),
    ((0.5, np.nan), "float64"),
]


@st.composite
def problems(draw, *, max_qi: int = 5):
    q = draw(st.integers(1, max_qi))
    kinds = [draw(st.sampled_from(range(len(_PAIRS)))) for _ in range(q)]
    qi = [f"q{j}" for j in range(q)]
    n = draw(st.integers(1, 40))
    # Few distinct QI vectors, so that classes of several rows occur.
    protos = draw(st.lists(st.lists(st.booleans(), min_size=q, max_size=q), min_size=1,
                           max_size=6))
    rows = draw(st.lists(st.sampled_from(range(len(protos))), min_size=n, max_size=n))
    flips = draw(st.lists(st.integers(0, 3 * q + 2), min_size=n, max_size=n))
    ref_bits = np.array([protos[r] for r in rows], dtype=bool)
    for i, f in enumerate(flips):  # an occasional flip, for rarer classes
        if f < q:
            ref_bits[i, f] ^= True
    cols = {}
    for j, name in enumerate(qi):
        (v0, v1), dtype = _PAIRS[kinds[j]]
        cols[name] = pd.Series(np.where(ref_bits[:, j], v1, v0)).astype(dtype)
    n_sa = draw(st.integers(1, 2))
    sens = [f"s{i}" for i in range(n_sa)]
    for s in sens:
        cols[s] = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    R = pd.DataFrame(cols)
    ordered = [s for s in sens if draw(st.booleans())]
    editable = [c for c in qi if draw(st.booleans())]
    m = draw(st.integers(1, 12))
    face_bits = np.array(draw(st.lists(st.lists(st.booleans(), min_size=q, max_size=q),
                                       min_size=m, max_size=m)), dtype=bool)
    labels = pd.Index([f"f{i}" for i in range(m)])
    fcols = {}
    for j, name in enumerate(qi):
        (v0, v1), dtype = _PAIRS[kinds[j]]
        fcols[name] = pd.Series(np.where(face_bits[:, j], v1, v0), index=labels).astype(dtype)
    faces = pd.DataFrame(fcols, index=labels)
    k = draw(st.none() | st.integers(1, 5))
    l = draw(st.none() | st.integers(1, 4))
    t = draw(st.none() | st.floats(0.0, 1.0))
    return R, faces, qi, editable, sens, ordered, k, l, t


def _face_keys(faces, qi):
    return [_key(row, qi) for _, row in faces.iterrows()]


# --------------------------------------------------------------------------- properties


@given(problems())
def test_targets_are_feasible_and_nearest(problem):
    R, faces, qi, editable, sens, ordered, k, l, t = problem
    note(f"R=\n{R}\nfaces=\n{faces}\neditable={editable} k={k} l={l} t={t} ordered={ordered}")
    res = select_attributes(R, faces, qi=qi, editable=editable, sensitive=sens, k=k, l=l, t=t,
                            epsilon=None, seed=0, ordered=ordered, on_infeasible="skip")
    classes = _classes(R, qi, sens, ordered)
    assert list(res.targets.index) == list(faces.index)
    assert list(res.targets.columns) == qi
    assert res.summary["feasible_classes"] == sum(_ok(s, k, l, t) for s in classes.values())
    skipped = res.skipped.to_numpy()
    for i, face_key in enumerate(_face_keys(faces, qi)):
        d, nearest, bk, bl, bt = _brute(classes, face_key, qi, editable, k, l, t)
        cert = res.certificates[i]
        assert cert.epsilon == 0.0 and not cert.dp and cert.guarantee == NO_DP_GUARANTEE
        if d is None:
            assert skipped[i] and not cert.feasible and cert.reason
            assert not res.changed.iloc[i].any()
            assert res.targets.iloc[i].isna().all()
            continue
        assert not skipped[i] and cert.feasible and cert.reason is None
        target = _key(res.targets.iloc[i], qi)
        # Every target is a class of R that meets the requirements (re-audited) ...
        assert target in classes and _ok(classes[target], k, l, t)
        assert (cert.k, cert.l) == classes[target][:2]
        assert cert.t == pytest.approx(classes[target][2], abs=1e-12)
        # ... keeps every non-editable QI (no DP step here), and is as near as possible.
        changed = [c for c, a, b in zip(qi, target, face_key) if a != b]
        assert set(changed) <= set(editable)
        assert target in nearest and len(changed) == d
        assert list(cert.changed) == changed and cert.n_changed == d
        assert res.changed.iloc[i].tolist() == [c in changed for c in qi]
    if not skipped.any():
        assert res.targets.dtypes.tolist() == R[qi].dtypes.tolist()


@given(problems(), st.floats(0.05, 20.0), st.integers(0, 2**32 - 1))
def test_dp_touches_only_editable_and_targets_stay_feasible(problem, epsilon, seed):
    R, faces, qi, editable, sens, ordered, k, l, t = problem
    if not editable:
        with pytest.raises(InputError, match="no attribute is editable"):
            select_attributes(R, faces, qi=qi, editable=editable, sensitive=sens, k=k, l=l,
                              t=t, epsilon=epsilon, seed=seed, ordered=ordered)
        return
    res = select_attributes(R, faces, qi=qi, editable=editable, sensitive=sens, k=k, l=l, t=t,
                            epsilon=epsilon, seed=seed, ordered=ordered, on_infeasible="skip")
    classes = _classes(R, qi, sens, ordered)
    fixed = [c for c in qi if c not in editable]
    assert not res.changed[fixed].to_numpy().any()
    for i, face_key in enumerate(_face_keys(faces, qi)):
        cert = res.certificates[i]
        assert cert.dp and cert.seeded
        assert cert.epsilon == pytest.approx(epsilon)
        assert cert.epsilon_per_attribute == pytest.approx(epsilon / len(editable))
        d, *_ = _brute(classes, face_key, qi, editable, k, l, t)
        # Feasibility depends on the non-editable QIs only, never on the noise.
        assert cert.feasible == (d is not None)
        if cert.feasible:
            target = _key(res.targets.iloc[i], qi)
            assert target in classes and _ok(classes[target], k, l, t)
        json.dumps(cert.to_dict(), allow_nan=False)
    # The same seed gives the same result.
    again = select_attributes(R, faces, qi=qi, editable=editable, sensitive=sens, k=k, l=l, t=t,
                              epsilon=epsilon, seed=seed, ordered=ordered, on_infeasible="skip")
    pd.testing.assert_frame_equal(res.targets, again.targets)
    pd.testing.assert_frame_equal(res.changed, again.changed)


@given(problems())
def test_infeasible_error_reports_best_reachable(problem):
    R, faces, qi, editable, sens, ordered, k, l, t = problem
    classes = _classes(R, qi, sens, ordered)
    brute = [_brute(classes, fk, qi, editable, k, l, t) for fk in _face_keys(faces, qi)]
    bad = [i for i, b in enumerate(brute) if b[0] is None]
    kwargs = dict(qi=qi, editable=editable, sensitive=sens, k=k, l=l, t=t, epsilon=None,
                  ordered=ordered)
    if not bad:
        select_attributes(R, faces, **kwargs)
        return
    with pytest.raises(PPASInfeasibleError) as info:
        select_attributes(R, faces, **kwargs)
    exc = info.value
    assert isinstance(exc, InputError)
    _, _, bk, bl, bt = brute[bad[0]]
    assert exc.face == faces.index[bad[0]]
    assert exc.n_infeasible == len(bad)
    assert (exc.best_k, exc.best_l) == (bk, bl)
    assert exc.best_t == pytest.approx(bt, abs=1e-12) if math.isfinite(bt) else exc.best_t == bt
    message = str(exc)
    assert f"k={bk}" in message and f"l={bl}" in message
    assert f"t={'inf' if math.isinf(bt) else format(exc.best_t, '.6g')}" in message
    unmet = [name for name, asked, best, worse in
             [("k", k, bk, lambda a, b: b < a), ("l", l, bl, lambda a, b: b < a),
              ("t", t, bt, lambda a, b: b > a)]
             if asked is not None and worse(asked, best)]
    assert list(exc.unmet) == unmet
    if not unmet:
        assert "no single class meets them together" in message
    else:
        assert "cannot be met: " + unmet[0] in message


def test_multiword_vectors_match_brute_force():
    """More than 64 QIs (two uint64 words per vector), against a numpy brute force."""
    rng = np.random.default_rng(5)
    q, n_ref, m = 70, 600, 300
    protos = rng.random((25, q)) < 0.5
    ref_bits = protos[rng.integers(0, 25, n_ref)]
    ref_bits ^= rng.random((n_ref, q)) < 0.01
    qi = [f"a{j}" for j in range(q)]
    R = pd.DataFrame(np.where(ref_bits, 1, -1).astype(np.int8), columns=qi)
    R["identity"] = rng.integers(0, 40, n_ref)
    face_bits = protos[rng.integers(0, 25, m)] ^ (rng.random((m, q)) < 0.2)
    fixed = [3, 64, 69]
    face_bits[:, fixed] = protos[0, fixed]  # faces agree with prototype 0 outside A
    faces = pd.DataFrame(np.where(face_bits, 1, -1), columns=qi)
    editable = [c for j, c in enumerate(qi) if j not in fixed]
    res = select_attributes(R, faces, qi=qi, editable=editable, sensitive="identity", k=3,
                            l=2, epsilon=None, seed=1, on_infeasible="skip")
    view = class_view(R, qi, "identity")
    ok = (view["size"] >= 3) & (view["identity.l_diversity"] >= 2)
    feas = view.loc[ok, qi].to_numpy() == 1
    agree = (feas[None, :, fixed] == face_bits[:, None, fixed]).all(axis=2)
    dist = np.where(agree, (feas[None] != face_bits[:, None]).sum(axis=2), 10**6)
    best = dist.min(axis=1)
    target = res.targets.to_numpy(dtype=float) == 1
    has = ~res.skipped.to_numpy()
    assert np.array_equal(has, best < 10**6) and has.sum() > m // 2
    reached = (target[has] != face_bits[has]).sum(axis=1)
    assert np.array_equal(reached, best[has])
    assert (res.changed.to_numpy() == (target != face_bits))[has].all()
    # Each target is one of the feasible classes.
    keys = {tuple(r) for r in feas}
    assert all(tuple(r) in keys for r in target[has])


def test_popcount_lookup_table_matches_numpy(monkeypatch):
    """numpy < 2 has no bitwise_count: the 16-bit lookup table gives the same selection."""
    rng = np.random.default_rng(9)
    q = 80
    qi = [f"a{j}" for j in range(q)]
    R = pd.DataFrame(np.where(rng.random((400, q)) < 0.5, 1, -1), columns=qi)
    R = pd.concat([R, R], ignore_index=True)
    R["identity"] = np.arange(len(R))
    faces = pd.DataFrame(np.where(rng.random((200, q)) < 0.5, 1, -1), columns=qi)
    kw = dict(qi=qi, editable=qi[:-5], sensitive="identity", k=2, epsilon=3.0, seed=4,
              on_infeasible="skip")
    fast = select_attributes(R, faces, **kw)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    slow = select_attributes(R, faces, **kw)
    pd.testing.assert_frame_equal(fast.targets, slow.targets)
    words = rng.integers(0, 2**63, (50, 3), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = np.array([[bin(int(w)).count("1") for w in row] for row in words])
    assert np.array_equal(ppas_bits._popcount(words), expected)


def _three_way_reference():
    """Classes at Hamming distance 1 from (1, 1, 1), each of 3 records; (1, 1, 1) is absent."""
    rows = [(-1, 1, 1), (1, -1, 1), (1, 1, -1)] * 3
    R = pd.DataFrame(rows, columns=["a", "b", "c"]).astype("int8")
    R["identity"] = np.arange(len(R))
    return R


def test_ties_are_broken_uniformly_at_random():
    R = _three_way_reference()
    n = 6000
    faces = pd.DataFrame({"a": [1] * n, "b": [1] * n, "c": [1] * n})
    res = select_attributes(R, faces, qi=["a", "b", "c"], editable=["a", "b", "c"],
                            sensitive="identity", k=3, epsilon=None, seed=11)
    assert (res.changed.sum(axis=1) == 1).all()
    shares = res.changed.mean().to_numpy()
    tol = 4.5 * math.sqrt((1 / 3) * (2 / 3) / n)
    assert np.all(np.abs(shares - 1 / 3) < tol), shares
    # One face, many seeds: every tied class comes up, in about equal shares.
    seeds = 600
    picks = np.zeros(3)
    for seed in range(seeds):  # a loop over seeds, in a test
        one = select_attributes(R, {"a": 1, "b": 1, "c": 1}, qi=["a", "b", "c"],
                                editable=["a", "b", "c"], sensitive="identity", k=3,
                                epsilon=None, seed=seed)
        picks += one.changed.to_numpy()[0]
    tol = 4.5 * math.sqrt((1 / 3) * (2 / 3) / seeds)
    assert np.all(np.abs(picks / seeds - 1 / 3) < tol), picks


def test_seed_reproduces_and_is_recorded():
    R = _three_way_reference()
    faces = pd.DataFrame({"a": [1, -1] * 50, "b": [1] * 100, "c": [-1, 1] * 50})
    kw = dict(qi=["a", "b", "c"], editable=["a", "b"], sensitive="identity", k=3, epsilon=1.0,
              on_infeasible="skip")
    one, two = (select_attributes(R, faces, seed=42, **kw) for _ in range(2))
    pd.testing.assert_frame_equal(one.targets, two.targets)
    assert one.summary["seeded"] and one.certificates[0].seeded
    assert one.certificates[0].to_dict()["seeded"] is True
    other = select_attributes(R, faces, seed=43, **kw)
    assert not one.targets.equals(other.targets)
    unseeded = select_attributes(R, faces, seed=None, **kw)
    assert not unseeded.summary["seeded"] and not unseeded.certificates[5].seeded


def test_flip_rate_of_the_dp_step():
    """Every vector of the editable QIs is a class of R: the target is the noisy vector."""
    a, n, epsilon = 5, 40_000, 2.5
    grid = (np.arange(1 << a)[:, None] >> np.arange(a)) & 1
    qi = [f"e{j}" for j in range(a)] + ["fixed"]
    R = pd.DataFrame(np.where(grid, 1, -1), columns=qi[:a]).astype("int8")
    R["fixed"] = np.int8(1)
    R = pd.concat([R, R], ignore_index=True)
    R["identity"] = np.arange(len(R))
    rng = np.random.default_rng(3)
    faces = pd.DataFrame(np.where(rng.random((n, a)) < 0.5, 1, -1), columns=qi[:a])
    faces["fixed"] = 1
    res = select_attributes(R, faces, qi=qi, editable=qi[:a], sensitive="identity", k=2,
                            epsilon=epsilon, seed=2024)
    p = 1.0 / (1.0 + math.exp(epsilon / a))
    tol = 4.5 * math.sqrt(p * (1 - p) / n)
    rates = res.changed[qi[:a]].mean().to_numpy()
    assert np.all(np.abs(rates - p) < tol), (rates, p)
    assert not res.changed["fixed"].any()
    # Flips are independent across attributes: the number flipped is Binomial(a, p).
    counts = np.bincount(res.changed.sum(axis=1), minlength=a + 1) / n
    expected = np.array([math.comb(a, j) * p**j * (1 - p) ** (a - j) for j in range(a + 1)])
    assert np.all(np.abs(counts - expected) < 4.5 * np.sqrt(expected * (1 - expected) / n))
    assert res.summary["epsilon"] == epsilon
    assert res.summary["epsilon_per_attribute"] == pytest.approx(epsilon / a)
    # The rate is the one randomised response of privmetrics.dp has for a binary attribute.
    assert p == pytest.approx(flip_probability(epsilon / a), rel=1e-12)


@pytest.mark.parametrize("bad", [{"seed": -1}, {"seed": 1.5}, {"epsilon": float("inf")},
                                 {"epsilon": "2"}])
def test_ppas_and_dp_check_epsilon_and_seed_the_same_way(bad):
    """One check of each: PPAS and randomised response on a table refuse the same inputs alike."""
    R = _small()
    args = {"epsilon": 1.0, **bad}
    with pytest.raises(InputError) as ppas_error:
        select_attributes(R, {"Male": 1, "Young": 1}, qi=["Male", "Young"], editable=["Male"],
                          sensitive="identity", **args)
    with pytest.raises(InputError) as dp_error:
        randomized_response(R, ["Male"], args["epsilon"], seed=args.get("seed"))
    # PPAS adds only that epsilon=None skips its DP step.
    ppas_message = ppas_error.value.message.replace(
        " (or None for no DP step, which gives no privacy guarantee)", "").replace(
        "; pass epsilon=None to skip the DP step (no privacy guarantee)", "")
    assert ppas_message == dp_error.value.message


# --------------------------------------------------------------------------- inputs


def _small():
    R = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, 1, 1, 1],
                      "identity": [1, 2, 3, 4]}).astype("int8")
    return R


def test_bad_inputs():
    R = _small()
    kw = dict(qi=["Male", "Young"], editable=["Male"], sensitive="identity")
    R3 = R.assign(Male=[1, 0, -1, -1])
    with pytest.raises(InputError, match="non-binary QIs are future work") as info:
        select_attributes(R3, {"Male": 1, "Young": 1}, epsilon=None, **kw)
    assert info.value.column == "Male"
    with pytest.raises(InputError, match="expected -1 or 1") as info:
        select_attributes(R, {"Male": 2, "Young": 1}, epsilon=None, **kw)
    assert info.value.column == "Male"
    with pytest.raises(InputError, match="no such quasi-identifier") as info:
        select_attributes(R, {"Male": 1}, epsilon=None, **kw)
    assert info.value.column == "Young"
    with pytest.raises(InputError, match="must be one of the quasi-identifiers"):
        select_attributes(R, {"Male": 1, "Young": 1}, qi=["Male"], editable=["Young"],
                          sensitive="identity", epsilon=None)
    for eps in (0, -1.0, math.inf, math.nan, True, "2"):
        with pytest.raises(InputError, match="epsilon"):
            select_attributes(R, {"Male": 1, "Young": 1}, epsilon=eps, **kw)
    with pytest.raises(InputError, match="requirement k"):
        select_attributes(R, {"Male": 1, "Young": 1}, k=0, epsilon=None, **kw)
    with pytest.raises(InputError, match="on_infeasible"):
        select_attributes(R, {"Male": 1, "Young": 1}, epsilon=None, on_infeasible="drop", **kw)
    with pytest.raises(InputError, match="seed"):
        select_attributes(R, {"Male": 1, "Young": 1}, epsilon=1.0, seed=-3, **kw)
    with pytest.raises(TypeError):
        select_attributes(R, {"Male": 1, "Young": 1}, **kw)  # epsilon must be said, even None


def test_one_face_as_series_or_dict_and_constant_qi():
    R = _small()
    kw = dict(qi=["Male", "Young"], editable=["Male", "Young"], sensitive="identity", k=2,
              epsilon=None)
    # Young is constant (1) in R; a face with Young=-1 is moved to 1.
    res = select_attributes(R, pd.Series({"Male": 1, "Young": -1}, name="me.jpg"), **kw)
    assert res.targets.index.tolist() == ["me.jpg"]
    assert res.targets.loc["me.jpg"].tolist() == [1, 1]
    assert res.targets.dtypes.tolist() == [np.dtype("int8")] * 2
    assert res.certificates.for_face("me.jpg").changed == ("Young",)
    res = select_attributes(R, {"Male": -1, "Young": 1}, **kw)
    assert res.targets.index.tolist() == [0] and res.certificates[0].n_changed == 0
    none = select_attributes(R, R.iloc[:0], **kw)
    assert none.targets.shape == (0, 2) and len(none.certificates) == 0
    assert none.summary["faces"] == 0


def test_skip_and_summary():
    R = _small()
    faces = pd.DataFrame({"Male": [1, -1], "Young": [1, -1]}, index=["a", "b"])
    res = select_attributes(R, faces, qi=["Male", "Young"], editable=["Male"],
                            sensitive="identity", k=2, l=2, epsilon=0.5, seed=0,
                            on_infeasible="skip")
    assert res.skipped.tolist() == [False, True]
    assert str(res.targets["Male"].dtype) == "Int8"
    assert res.targets.loc["b"].isna().all()
    cert = res.certificates.for_face("b")
    assert not cert.feasible and cert.k is None
    assert "no class of the reference agrees" in cert.reason
    d = cert.to_dict()
    assert d["reached"] == {"k": None, "l": None, "t": None}
    json.dumps(res.certificates.to_list(), allow_nan=False)
    json.dumps(res.summary, allow_nan=False)
    s = res.summary
    assert (s["faces"], s["targeted"], s["skipped"], s["feasible_classes"]) == (2, 1, 1, 2)
    assert s["requirements"] == {"k": 2, "l": 2} and s["seeded"] and s["dp"]
    frame = res.certificates.to_frame()
    assert frame["feasible"].tolist() == [True, False] and frame["k"].isna().tolist() == [False,
                                                                                            True]
    with pytest.raises(PPASInfeasibleError, match=r"face 'b' \(row 2 of 2\).*best reachable "
                                                  r"k=0, l=0, t=inf"):
        select_attributes(R, faces, qi=["Male", "Young"], editable=["Male"],
                          sensitive="identity", k=2, l=2, epsilon=0.5, seed=0)


def test_no_feasible_class_at_all():
    R = _small()
    with pytest.raises(PPASInfeasibleError) as info:
        select_attributes(R, {"Male": 1, "Young": 1}, qi=["Male", "Young"],
                          editable=["Male", "Young"], sensitive="identity", k=3, t=0.1,
                          epsilon=1.0)
    exc = info.value
    assert (exc.best_k, exc.best_l, exc.best_t, exc.unmet) == (2, 2, 0.5, ("k", "t"))
    assert "no class of the reference (2 classes) meets them at all" in str(exc)


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_celeba_1000_faces_certificates_reaudit(celeba_dir):
    from privface.privmetrics.readers import (
        join_identities,
        read_celeba_attributes,
        read_celeba_identities,
    )

    attrs = read_celeba_attributes(celeba_dir / "list_attr_celeba_first20k.txt")
    R = join_identities(attrs, read_celeba_identities(celeba_dir / "identity_CelebA.txt"))
    qi = list(attrs.columns[:10])  # 5_o_Clock_Shadow ... Blurry
    view = class_view(R, qi, "identity")
    # With identity as the SA, t=0.2 is out of reach: a class's nominal EMD to the slice's
    # identity distribution is at least the share of records whose identity the class lacks,
    # and the best class over these 10 QIs reaches 0.7816. So t=0.95 (13 classes with k=5, l=2).
    assert view["identity.t_closeness"].min() > 0.2
    with pytest.raises(PPASInfeasibleError, match=r"best reachable .* t=0\.7816"):
        select_attributes(R, attrs.iloc[:10], qi=qi, editable=qi, sensitive="identity", k=5,
                          l=2, t=0.2, epsilon=2.0)
    faces = attrs.iloc[:1000]
    res = select_attributes(R, faces, qi=qi, editable=qi, sensitive="identity", k=5, l=2,
                            t=0.95, epsilon=2.0, seed=20240517)
    assert res.summary["feasible_classes"] == 13 and res.summary["targeted"] == 1000
    assert res.targets.index.equals(faces.index)
    assert res.targets.dtypes.tolist() == R[qi].dtypes.tolist()
    audited = view.set_index(qi)
    reached = audited.loc[pd.MultiIndex.from_frame(res.targets)]
    assert (reached["size"] >= 5).all()
    assert (reached["identity.l_diversity"] >= 2).all()
    assert (reached["identity.t_closeness"] <= 0.95).all()
    certs = res.certificates.to_frame()
    assert np.array_equal(certs["k"].to_numpy(dtype=int), reached["size"].to_numpy())
    assert np.array_equal(certs["l"].to_numpy(dtype=int),
                          reached["identity.l_diversity"].to_numpy())
    assert np.allclose(certs["t"], reached["identity.t_closeness"], atol=1e-12)
    assert np.array_equal(certs["n_changed"], (res.targets != faces[qi]).sum(axis=1))
    cert = res.certificates[0]
    assert cert.epsilon == 2.0 and cert.epsilon_per_attribute == pytest.approx(0.2)
    assert cert.seeded and cert.reference_size == 20_000
    json.dumps(res.certificates.to_list(), allow_nan=False)
    # A subset editable: faces whose other QIs no feasible class shares are skipped, with a reason.
    part = select_attributes(R, faces, qi=qi, editable=qi[:6], sensitive="identity", k=5, l=2,
                             t=0.95, epsilon=2.0, seed=1, on_infeasible="skip")
    assert not part.changed[qi[6:]].to_numpy().any()
    assert 0 < part.summary["skipped"] < 1000
