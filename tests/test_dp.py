"""Randomised response (local DP) for face attributes: mechanism, estimators and accounting.

Statistical checks use fixed seeds, so they are deterministic; their tolerances are derived from the
sample size and the estimator's variance (5 standard errors, or a chi-square test at alpha 1e-4),
not tuned to the seeds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from privface.privmetrics.dp import (
    MAX_JOINT_COLUMNS,
    DPRelease,
    epsilon_for_flip_probability,
    estimate_frequencies,
    estimate_joint_frequencies,
    flip_probability,
    keep_probability,
    randomized_response,
)
from privface.base.errors import InputError
from privface.privmetrics.readers import read_celeba_attributes

Z = 5.0  # tolerance in standard errors
ALPHA = 1e-4  # significance level of the chi-square tests


def _binary(n: int, share: float, seed: int) -> np.ndarray:
    """CelebA-style int8 1/-1 values with exactly round(share * n) ones, shuffled."""
    ones = int(round(share * n))
    x = np.array([1] * ones + [-1] * (n - ones), dtype=np.int8)
    return np.random.default_rng(seed).permutation(x)


def _grr_variance(f: np.ndarray, p: float, k: int, n: int) -> np.ndarray:
    """Exact variance of the GRR share estimate for true shares f of a fixed table of n rows."""
    q = (1 - p) / (k - 1)
    return (f * p * (1 - p) + (1 - f) * q * (1 - q)) / (n * (p - q) ** 2)


# --------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("eps", [0.05, 0.5, 1.0, 3.0, 50.0, 800.0])
@pytest.mark.parametrize("k", [2, 3, 7])
def test_probability_helpers(eps, k):
    p, f = keep_probability(eps, k), flip_probability(eps, k)
    assert p + f == pytest.approx(1.0)
    if eps < 700:  # e^eps overflows beyond; the helpers must not
        assert p == pytest.approx(math.exp(eps) / (math.exp(eps) + k - 1), rel=1e-12)
        # p / q = e^eps: the epsilon-LDP ratio
        assert p / (f / (k - 1)) == pytest.approx(math.exp(eps), rel=1e-9)
    assert 0 <= f < (k - 1) / k and 1 / k < p <= 1  # f underflows to 0 at eps = 800
    if eps < 30:  # the inverse is well conditioned while f is not a rounding error
        assert epsilon_for_flip_probability(f, k) == pytest.approx(eps, rel=1e-9)


def test_binary_flip_probability_formula():
    assert flip_probability(1.0) == pytest.approx(1 / (1 + math.e))
    assert flip_probability(math.log(3)) == pytest.approx(0.25)
    assert epsilon_for_flip_probability(0.25) == pytest.approx(math.log(3))


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, -math.inf, math.nan, "1", None, True])
def test_probability_helpers_reject_bad_epsilon(bad):
    with pytest.raises(InputError, match="epsilon"):
        flip_probability(bad)
    with pytest.raises(InputError, match="epsilon"):
        keep_probability(bad)


@pytest.mark.parametrize("flip, k", [(0.0, 2), (0.5, 2), (0.7, 2), (-0.1, 2), (2 / 3, 3),
                                     (math.nan, 2), (0.1, 1)])
def test_epsilon_for_flip_probability_rejects_out_of_range(flip, k):
    with pytest.raises(InputError):
        epsilon_for_flip_probability(flip, k)


# --------------------------------------------------------------------------- (a) the mechanism


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0, 2.0, 5.0])
def test_binary_flip_rate_matches_theory(eps):
    n = 200_000
    x = _binary(n, 0.3, seed=1)
    table = pd.DataFrame({"Male": x})
    release = randomized_response(table, ["Male"], eps, seed=int(eps * 1000))
    y = release.table["Male"].to_numpy()
    assert set(np.unique(y)) <= {-1, 1}
    f = 1 / (1 + math.exp(eps))
    assert release.keep_probability["Male"] == pytest.approx(1 - f)
    # overall and per true value (the mechanism is symmetric)
    for mask in (np.ones(n, bool), x == 1, x == -1):
        m = int(mask.sum())
        rate = float(np.mean(y[mask] != x[mask]))
        se = math.sqrt(f * (1 - f) / m)
        assert abs(rate - f) <= Z * se, (eps, m, rate, f)


def test_bool_column_flips_and_stays_bool():
    n = 100_000
    x = _binary(n, 0.5, seed=2) == 1
    release = randomized_response(pd.DataFrame({"Smiling": x}), "Smiling", 1.0, seed=3)
    y = release.table["Smiling"]
    assert y.dtype == bool
    f = flip_probability(1.0)
    assert abs(np.mean(y.to_numpy() != x) - f) <= Z * math.sqrt(f * (1 - f) / n)


@pytest.mark.parametrize("eps, k", [(0.5, 3), (1.0, 5), (3.0, 8)])
def test_kary_keep_rate_and_uniform_over_other_values(eps, k):
    n = 200_000
    rng = np.random.default_rng(k)
    values = [f"v{i}" for i in range(k)]
    x_codes = rng.integers(0, k, n)
    table = pd.DataFrame({"Hair": np.array(values, dtype=object)[x_codes]})
    release = randomized_response(table, ["Hair"], eps, seed=100 + k)
    assert release.domains["Hair"] == values
    y_codes = pd.Index(values).get_indexer(release.table["Hair"])
    assert (y_codes >= 0).all()
    p = math.exp(eps) / (math.exp(eps) + k - 1)
    assert release.keep_probability["Hair"] == pytest.approx(p)
    kept = y_codes == x_codes
    assert abs(kept.mean() - p) <= Z * math.sqrt(p * (1 - p) / n)
    # Given a change, the new value is uniform over the k - 1 others, for every true value.
    for v in range(k):
        changed = (x_codes == v) & ~kept
        counts = np.bincount(y_codes[changed], minlength=k)
        assert counts[v] == 0
        others = np.delete(counts, v)
        assert stats.chisquare(others).pvalue > ALPHA, (v, others)
    # ... and the offset of the new value from the old is uniform too (no cyclic bias).
    offsets = (y_codes - x_codes)[~kept] % k
    assert stats.chisquare(np.bincount(offsets, minlength=k)[1:]).pvalue > ALPHA


def test_declared_domain_values_absent_from_the_table_are_reachable():
    n = 50_000
    table = pd.DataFrame({"Hair": ["black"] * n})
    release = randomized_response(table, ["Hair"], 1.0,
                                  domains={"Hair": ["black", "blond", "brown", "gray"]}, seed=4)
    counts = release.table["Hair"].value_counts()
    p = keep_probability(1.0, 4)
    q = (1 - p) / 3
    for value in ["blond", "brown", "gray"]:
        assert abs(counts[value] / n - q) <= Z * math.sqrt(q * (1 - q) / n)


def test_columns_are_randomised_independently():
    n = 100_000
    x = _binary(n, 0.5, seed=5)
    table = pd.DataFrame({"A": x, "B": x})  # identical columns
    release = randomized_response(table, ["A", "B"], 2.0, seed=6)
    flip_a = release.table["A"].to_numpy() != x
    flip_b = release.table["B"].to_numpy() != x
    contingency = pd.crosstab(flip_a, flip_b).to_numpy()
    assert stats.chi2_contingency(contingency).pvalue > ALPHA


# --------------------------------------------------------------------------- (b) estimators


@pytest.mark.parametrize("eps, share", [(0.5, 0.1), (1.0, 0.5), (2.0, 0.83)])
def test_binary_estimator_is_unbiased(eps, share):
    n, repeats = 2_000, 300
    x = _binary(n, share, seed=7)
    table = pd.DataFrame({"Eyeglasses": x})
    estimates = np.array([
        estimate_frequencies(randomized_response(table, ["Eyeglasses"], eps, seed=s),
                             "Eyeglasses").to_numpy()
        for s in range(repeats)])
    truth = np.array([1 - share, share])
    sd = np.sqrt(_grr_variance(truth, keep_probability(eps), 2, n))
    assert np.all(np.abs(estimates.mean(axis=0) - truth) <= Z * sd / math.sqrt(repeats))
    # the spread over releases matches the variance formula (sample sd within 15%)
    assert estimates[:, 1].std(ddof=1) == pytest.approx(sd[1], rel=0.15)


def test_kary_estimator_is_unbiased():
    n, repeats, eps = 3_000, 300, 1.5
    truth = np.array([0.5, 0.3, 0.15, 0.05, 0.0])  # includes a value nobody has
    counts = np.round(truth * n).astype(int)
    values = ["a", "b", "c", "d", "e"]
    column = np.repeat(np.array(values, dtype=object), counts)
    table = pd.DataFrame({"Hair": pd.Categorical(column, categories=values)})
    domains = {"Hair": values}
    estimates = np.array([
        estimate_frequencies(randomized_response(table, "Hair", eps, domains=domains, seed=s),
                             "Hair").to_numpy()
        for s in range(repeats)])
    sd = np.sqrt(_grr_variance(truth, keep_probability(eps, 5), 5, n))
    assert np.all(np.abs(estimates.mean(axis=0) - truth) <= Z * sd / math.sqrt(repeats))
    assert np.allclose(estimates.sum(axis=1), 1.0)


def test_estimate_from_table_equals_estimate_from_release():
    table = pd.DataFrame({"Male": _binary(1_000, 0.4, seed=8)})
    release = randomized_response(table, ["Male"], 1.0, seed=9)
    a = estimate_frequencies(release, "Male")
    b = estimate_frequencies(release.table, "Male", epsilon=1.0, domain=[-1, 1])
    pd.testing.assert_series_equal(a, b)
    assert a.index.name == "Male" and a.index.tolist() == [-1, 1]


def test_estimate_formula_on_a_fixed_table():
    # p = 3/4, q = 1/4: estimate = (observed - 1/4) / (1/2)
    noisy = pd.DataFrame({"Male": [1] * 9 + [-1]})
    est = estimate_frequencies(noisy, "Male", epsilon=math.log(3), domain=[-1, 1])
    assert est.tolist() == pytest.approx([-0.3, 1.3])
    clipped = estimate_frequencies(noisy, "Male", epsilon=math.log(3), domain=[-1, 1], clip=True)
    assert clipped.tolist() == pytest.approx([0.0, 1.0])


@given(obs=st.lists(st.integers(0, 50), min_size=2, max_size=6).filter(lambda c: sum(c) > 0),
       eps=st.floats(0.05, 5.0))
def test_clipped_estimate_is_the_projection_onto_the_simplex(obs, eps):
    k = len(obs)
    values = list(range(k))
    noisy = pd.DataFrame({"A": np.repeat(values, obs)})
    raw = estimate_frequencies(noisy, "A", epsilon=eps, domain=values).to_numpy()
    clipped = estimate_frequencies(noisy, "A", epsilon=eps, domain=values, clip=True).to_numpy()
    assert raw.sum() == pytest.approx(1.0)
    assert clipped.min() >= 0 and clipped.sum() == pytest.approx(1.0)
    # optimality of the Euclidean projection: KKT, clipped = max(raw - theta, 0) for one theta
    theta = (raw - clipped)[clipped > 0]
    assert np.ptp(theta) == pytest.approx(0.0, abs=1e-9)
    assert np.all(raw[clipped == 0] <= theta[0] + 1e-9)
    if raw.min() >= 0:
        assert clipped == pytest.approx(raw)


def _channel(p: float, k: int) -> np.ndarray:
    q = (1 - p) / (k - 1)
    return (p - q) * np.eye(k) + q


def test_joint_estimator_recovers_a_known_joint_distribution():
    # A correlated joint of three binary attributes, exact counts.
    joint = np.array([0.30, 0.05, 0.10, 0.05, 0.02, 0.08, 0.15, 0.25])  # order (-1,-1,-1) ...
    n = 60_000
    counts = np.round(joint * n).astype(int)
    cells = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], np.int8)
    rows = np.repeat(cells, counts, axis=0)
    table = pd.DataFrame(rows, columns=["Male", "Beard", "Bald"])
    budgets = {"Male": 2.0, "Beard": 1.5, "Bald": 2.5}
    release = randomized_response(table, list(budgets), None, split=budgets, seed=10)
    est = estimate_joint_frequencies(release, ["Male", "Beard", "Bald"])
    assert est.index.names == ["Male", "Beard", "Bald"]
    assert list(est.index) == [tuple(c) for c in cells.tolist()]
    # exact covariance of the (linear) estimator for this fixed table
    channel = np.kron(np.kron(_channel(keep_probability(2.0), 2), _channel(keep_probability(1.5),
                                                                           2)),
                      _channel(keep_probability(2.5), 2))
    inverse = np.linalg.inv(channel)
    cov_obs = sum(c * (np.diag(channel[:, i]) - np.outer(channel[:, i], channel[:, i]))
                  for i, c in enumerate(counts)) / n**2
    sd = np.sqrt(np.diag(inverse @ cov_obs @ inverse.T))
    truth = counts / n
    assert np.all(np.abs(est.to_numpy() - truth) <= Z * sd), (est.to_numpy(), truth, sd)
    # it *is* the inverse of the Kronecker product applied to the observed joint shares
    observed = (release.table.groupby(["Male", "Beard", "Bald"]).size()
                .reindex(est.index, fill_value=0).to_numpy() / n)
    assert est.to_numpy() == pytest.approx(np.linalg.solve(channel, observed), abs=1e-12)


def test_joint_estimator_is_unbiased_and_consistent_with_the_marginals():
    n, repeats = 1_000, 200
    rng = np.random.default_rng(11)
    a = rng.integers(0, 2, n)
    b = np.where(rng.random(n) < 0.8, a, 1 - a)  # correlated with a
    hair = rng.choice(["black", "blond", "brown"], n, p=[0.6, 0.3, 0.1])
    table = pd.DataFrame({"A": a.astype(bool), "B": b.astype(bool), "Hair": hair})
    truth = table.groupby(["A", "Hair"]).size() / n
    total = np.zeros(6)
    for s in range(repeats):
        release = randomized_response(table, ["A", "B", "Hair"], 4.5, seed=s)
        est = estimate_joint_frequencies(release, ["A", "Hair"])
        total += est.to_numpy()
        if s < 5:
            # summing the joint over Hair gives exactly the marginal estimate of A
            marginal = est.groupby(level="A").sum()
            assert marginal.to_numpy() == pytest.approx(
                estimate_frequencies(release, "A").to_numpy(), abs=1e-12)
            single = estimate_joint_frequencies(release, ["Hair"])
            assert single.to_numpy() == pytest.approx(
                estimate_frequencies(release, "Hair").to_numpy(), abs=1e-12)
    truth = truth.reindex(est.index, fill_value=0).to_numpy()
    p_a, p_h = keep_probability(1.5, 2), keep_probability(1.5, 3)
    channel = np.kron(_channel(p_a, 2), _channel(p_h, 3))
    inverse = np.linalg.inv(channel)
    counts = truth * n
    cov_obs = sum(c * (np.diag(channel[:, i]) - np.outer(channel[:, i], channel[:, i]))
                  for i, c in enumerate(counts)) / n**2
    sd = np.sqrt(np.diag(inverse @ cov_obs @ inverse.T))
    assert np.all(np.abs(total / repeats - truth) <= Z * sd / math.sqrt(repeats))


def test_joint_estimator_clip_and_guards():
    cols = [f"A{i}" for i in range(MAX_JOINT_COLUMNS + 1)]
    table = pd.DataFrame(np.tile(np.array([[1], [-1]], np.int8), (1, len(cols))), columns=cols)
    release = randomized_response(table, cols, 13.0, seed=12)
    with pytest.raises(InputError, match=f"at most {MAX_JOINT_COLUMNS} columns"):
        estimate_joint_frequencies(release, cols)
    est = estimate_joint_frequencies(release, cols[:3], clip=True)
    assert est.min() >= 0 and est.sum() == pytest.approx(1.0)
    with pytest.raises(InputError) as info:
        estimate_joint_frequencies(release, ["A0", "Nope"])
    assert info.value.column == "Nope"
    with pytest.raises(InputError, match="twice"):
        estimate_joint_frequencies(release, ["A0", "A0"])
    with pytest.raises(InputError, match="DPRelease"):
        estimate_joint_frequencies(table, ["A0"])


# --------------------------------------------------------------------------- (c) accounting


def test_even_split_budget_accounting():
    cols = [f"A{i}" for i in range(10)]
    table = pd.DataFrame(np.tile(np.array([[1], [-1]], np.int8), (5, 10)), columns=cols)
    release = randomized_response(table, cols, 1.0, seed=0)
    assert release.mechanism == "randomized_response"
    assert list(release.per_attribute) == cols == release.columns
    assert all(e == pytest.approx(0.1) for e in release.per_attribute.values())
    assert release.epsilon == pytest.approx(1.0, rel=1e-15)
    assert math.fsum(release.per_attribute.values()) == pytest.approx(release.epsilon)
    assert release.keep_probability == pytest.approx({c: keep_probability(0.1) for c in cols})
    assert release.domains == {c: [-1, 1] for c in cols}


def test_per_attribute_budget_accounting():
    table = pd.DataFrame({"Male": [1, -1] * 3, "Young": [1, 1, -1] * 2,
                          "Hair": ["a", "b", "c"] * 2})
    budgets = {"Male": 0.3, "Young": 1.2, "Hair": 0.5}
    for epsilon in (None, 2.0):
        release = randomized_response(table, ["Male", "Young", "Hair"], epsilon, split=budgets,
                                      seed=1)
        assert release.per_attribute == budgets
        assert release.epsilon == pytest.approx(2.0)
        assert release.keep_probability["Hair"] == pytest.approx(keep_probability(0.5, 3))
    with pytest.raises(InputError, match="sum of the per-attribute"):
        randomized_response(table, ["Male", "Young", "Hair"], 1.0, split=budgets)
    with pytest.raises(InputError, match="no budget") as info:
        randomized_response(table, ["Male", "Young", "Hair"], None, split={"Male": 1.0})
    assert info.value.column == "Young"
    with pytest.raises(InputError, match="not randomised") as info:
        randomized_response(table, ["Male"], None, split={"Male": 1.0, "Hair": 1.0})
    assert info.value.column == "Hair"
    with pytest.raises(InputError) as info:
        randomized_response(table, ["Male", "Young"], None, split={"Male": 1.0, "Young": 0.0})
    assert info.value.column == "Young"
    with pytest.raises(InputError, match="split"):
        randomized_response(table, ["Male"], 1.0, split="uneven")


def test_seed_is_recorded_and_unseeded_releases_differ():
    table = pd.DataFrame({"Male": _binary(2_000, 0.5, seed=13)})
    seeded = randomized_response(table, ["Male"], 1.0, seed=123)
    assert seeded.seed == 123 and seeded.seeded is True
    again = randomized_response(table, ["Male"], 1.0, seed=123)
    pd.testing.assert_frame_equal(seeded.table, again.table)
    one = randomized_response(table, ["Male"], 1.0)
    two = randomized_response(table, ["Male"], 1.0)
    assert one.seed is None and one.seeded is False
    assert not one.table.equals(two.table)  # P(equal) = (p^2 + (1-p)^2)^2000, about 1e-430
    summary = json.loads(json.dumps(seeded.to_dict()))
    assert summary["seeded"] is True and summary["seed"] == 123
    assert "seed" in summary["randomness"]
    summary = json.loads(json.dumps(one.to_dict()))
    assert summary["seeded"] is False and summary["seed"] is None
    assert "OS entropy" in summary["randomness"]
    assert summary["epsilon"] == 1.0 and summary["rows"] == 2_000
    assert summary["per_attribute"] == {"Male": 1.0}


def test_to_dict_is_json_ready_for_exotic_domains():
    table = pd.DataFrame({"When": pd.to_datetime(["2020-01-01", "2021-01-01"]),
                          "N": np.array([3, 4], np.uint16)})
    d = randomized_response(table, ["When", "N"], 1.0, seed=0).to_dict()
    assert json.loads(json.dumps(d))["domains"]["N"] == [3, 4]


def test_to_dict_writes_infinite_domain_values_as_the_audit_does():
    """One JSON conversion: an infinite value is ``"inf"``, as in audit reports and certificates."""
    table = pd.DataFrame({"Ratio": [0.5, math.inf, -math.inf, 0.5]})
    d = randomized_response(table, ["Ratio"], 1.0, seed=0).to_dict()
    domain = json.loads(json.dumps(d, allow_nan=False))["domains"]["Ratio"]
    assert sorted(domain, key=str) == ["-inf", 0.5, "inf"]


# --------------------------------------------------------------------------- (d) bad input


@pytest.mark.parametrize("eps", [0, 0.0, -1.0, math.inf, -math.inf, math.nan, "1", True])
def test_bad_epsilon(eps):
    table = pd.DataFrame({"Male": [1, -1]})
    with pytest.raises(InputError, match="epsilon"):
        randomized_response(table, ["Male"], eps)


def test_missing_epsilon_with_even_split():
    with pytest.raises(InputError, match="epsilon is needed"):
        randomized_response(pd.DataFrame({"Male": [1, -1]}), ["Male"])


@pytest.mark.parametrize("missing", [np.nan, None, pd.NA])
def test_missing_values_name_the_column_and_first_row(missing):
    table = pd.DataFrame({"Male": [1, -1, 1, 1, -1],
                          "Young": np.array([1, -1, missing, missing, 1], dtype=object)},
                         index=list("abcde"))
    with pytest.raises(InputError, match="missing value") as info:
        randomized_response(table, ["Male", "Young"], 1.0)
    assert info.value.column == "Young" and info.value.row == 3
    assert "'c'" in str(info.value)


def test_nan_in_float_column():
    table = pd.DataFrame({"Score": [0.5, 1.5, np.nan]})
    with pytest.raises(InputError) as info:
        randomized_response(table, ["Score"], 1.0, domains={"Score": [0.5, 1.5]})
    assert info.value.column == "Score" and info.value.row == 3


def test_unknown_and_repeated_columns():
    table = pd.DataFrame({"Male": [1, -1], "Eyeglasses": [1, -1]})
    with pytest.raises(InputError, match="did you mean Eyeglasses") as info:
        randomized_response(table, ["Eyeglases"], 1.0)
    assert info.value.column == "Eyeglases"
    with pytest.raises(InputError, match="twice") as info:
        randomized_response(table, ["Male", "Male"], 1.0)
    assert info.value.column == "Male"
    with pytest.raises(InputError, match="at least one"):
        randomized_response(table, [], 1.0)
    with pytest.raises(InputError, match="strings"):
        randomized_response(table, [0], 1.0)
    dup = pd.DataFrame([[1, -1], [-1, 1]], columns=["Male", "Male"])
    with pytest.raises(InputError, match="repeated") as info:
        randomized_response(dup, ["Male"], 1.0)
    assert info.value.column == "Male"
    with pytest.raises(InputError, match="DataFrame"):
        randomized_response({"Male": [1, -1]}, ["Male"], 1.0)


def test_value_outside_declared_domain_names_column_and_row():
    table = pd.DataFrame({"Male": np.array([1, -1, 0, 1], np.int8)})
    with pytest.raises(InputError, match="outside the declared domain") as info:
        randomized_response(table, ["Male"], 1.0, domains={"Male": [-1, 1]})
    assert info.value.column == "Male" and info.value.row == 3
    assert "column 'Male'" in str(info.value) and "row 3" in str(info.value)


def test_bad_domains():
    table = pd.DataFrame({"Male": np.array([1, -1], np.int8), "Hair": ["a", "a"],
                          "Cat": pd.Categorical(["x", "y"])})
    with pytest.raises(InputError, match="declare it") as info:
        randomized_response(table, ["Hair"], 1.0)  # one distinct value, no declared domain
    assert info.value.column == "Hair"
    cases = [({"Male": [1]}, "at least two"), ({"Male": [1, 1, -1]}, "twice"),
             ({"Male": [1, -1, np.nan]}, "missing"), ({"Male": "1,-1"}, "list"),
             ({"Male": [1, -1, 300]}, "dtype"), ({"Cat": ["x", "y", "z"]}, "dtype"),
             ({"Young": [1, -1]}, "not randomised")]
    for domains, message in cases:
        with pytest.raises(InputError, match=message) as info:
            randomized_response(table, ["Male", "Cat"], 1.0, domains=domains)
        assert info.value.column == next(iter(domains))


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed(seed):
    with pytest.raises(InputError, match="seed"):
        randomized_response(pd.DataFrame({"Male": [1, -1]}), ["Male"], 1.0, seed=seed)


def test_estimator_bad_input():
    table = pd.DataFrame({"Male": [1, -1, 2]})
    with pytest.raises(InputError, match="needs the column's epsilon") as info:
        estimate_frequencies(table, "Male")
    assert info.value.column == "Male"
    with pytest.raises(InputError, match="outside") as info:
        estimate_frequencies(table, "Male", epsilon=1.0, domain=[-1, 1])
    assert info.value.column == "Male" and info.value.row == 3
    with pytest.raises(InputError) as info:
        estimate_frequencies(table, "Female", epsilon=1.0, domain=[-1, 1])
    assert info.value.column == "Female"
    with pytest.raises(InputError, match="epsilon"):
        estimate_frequencies(table, "Male", epsilon=0.0, domain=[-1, 1, 2])
    release = randomized_response(pd.DataFrame({"Male": [1, -1]}), ["Male"], 1.0, seed=0)
    with pytest.raises(InputError, match="come from the release"):
        estimate_frequencies(release, "Male", epsilon=1.0)
    with pytest.raises(InputError, match="not a randomised column"):
        estimate_frequencies(release, "Young")
    with pytest.raises(InputError, match="no rows"):
        estimate_frequencies(table.iloc[:0], "Male", epsilon=1.0, domain=[-1, 1])


# --------------------------------------------------------------------------- (e) preservation


def _mixed_table() -> pd.DataFrame:
    n = 12
    return pd.DataFrame({
        "Male": np.array([1, -1, 1] * 4, np.int8),
        "Hair": pd.Categorical(["brown", "black", "blond", "black"] * 3,
                               categories=["gray", "black", "blond", "brown"], ordered=True),
        "Smiling": np.array([True, False] * 6),
        "Age": pd.array([20, 30, 40, 30] * 3, dtype="Int64"),
        "Name": pd.array(["u", "v"] * 6, dtype="string"),
        "identity": np.arange(n, dtype=np.int64),
    }, index=pd.Index(["x", "x", "y", "y", "z", "z"] * 2, name="image_id"))  # duplicated index


def test_input_is_not_modified_and_dtypes_and_index_are_preserved():
    table = _mixed_table()
    before = table.copy(deep=True)
    cols = ["Male", "Hair", "Smiling", "Age", "Name"]
    release = randomized_response(table, cols, 50.0, seed=14, domains={"Male": [-1, 1]})
    pd.testing.assert_frame_equal(table, before)
    out = release.table
    assert out is not table
    pd.testing.assert_index_equal(out.index, table.index)
    pd.testing.assert_index_equal(out.columns, table.columns)
    pd.testing.assert_series_equal(out.dtypes, table.dtypes)
    assert out["Male"].dtype == np.int8
    assert out["Hair"].dtype == table["Hair"].dtype  # same categories, same order, ordered
    assert list(out["Hair"].cat.categories) == ["gray", "black", "blond", "brown"]
    pd.testing.assert_series_equal(out["identity"], table["identity"])
    # the observed domain of a category column is its values present, in category order
    assert release.domains["Hair"] == ["black", "blond", "brown"]
    # modifying the release does not touch the input
    out.iloc[0, 0] = 99
    pd.testing.assert_frame_equal(table, before)


values_st = {
    "int8": (st.sampled_from([-1, 1]), [-1, 1], "int8"),
    "bool": (st.booleans(), [False, True], "bool"),
    "cat": (st.sampled_from(["a", "b", "c"]), ["a", "b", "c"],
            pd.CategoricalDtype(["c", "b", "a", "unused"])),
    "str": (st.sampled_from(["x", "y", "z", "w"]), ["x", "y", "z", "w"], "object"),
    "int": (st.integers(0, 4), [0, 1, 2, 3, 4], "int64"),
}


@st.composite
def random_tables(draw):
    n = draw(st.integers(1, 25))
    kinds = draw(st.lists(st.sampled_from(sorted(values_st)), min_size=1, max_size=5))
    data, domains = {}, {}
    for j, kind in enumerate(kinds):
        element, domain, dtype = values_st[kind]
        data[f"c{j}"] = pd.Series(draw(st.lists(element, min_size=n, max_size=n)), dtype=dtype)
        domains[f"c{j}"] = domain
    index = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    table = pd.DataFrame(data)
    table.index = pd.Index(index)
    listed = draw(st.lists(st.sampled_from(list(data)), min_size=1, unique=True))
    return table, listed, {c: domains[c] for c in listed}


@given(case=random_tables(), eps=st.floats(0.01, 20.0), seed=st.integers(0, 2**32),
       even=st.booleans())
def test_release_properties_on_random_tables(case, eps, seed, even):
    table, listed, domains = case
    before = table.copy(deep=True)
    split = "even" if even else {c: eps / (i + 1) for i, c in enumerate(listed)}
    release = randomized_response(table, listed, eps if even else None, split=split,
                                  domains=domains, seed=seed)
    assert isinstance(release, DPRelease)
    pd.testing.assert_frame_equal(table, before)
    out = release.table
    pd.testing.assert_index_equal(out.index, table.index)
    pd.testing.assert_series_equal(out.dtypes, table.dtypes)
    for c in table.columns:
        if c not in listed:
            pd.testing.assert_series_equal(out[c], table[c])
        else:
            assert set(out[c].tolist()) <= set(domains[c])
            k = len(domains[c])
            eps_j = release.per_attribute[c]
            assert release.keep_probability[c] == pytest.approx(keep_probability(eps_j, k))
            assert release.domains[c] == domains[c]
            shares = estimate_frequencies(release, c)
            assert shares.sum() == pytest.approx(1.0)
            clipped = estimate_frequencies(release, c, clip=True)
            assert clipped.min() >= 0 and clipped.sum() == pytest.approx(1.0)
    expected = eps if even else math.fsum(split.values())
    assert release.epsilon == pytest.approx(expected, rel=1e-12)
    assert math.fsum(release.per_attribute.values()) == pytest.approx(release.epsilon)
    again = randomized_response(table, listed, eps if even else None, split=split,
                                domains=domains, seed=seed)
    pd.testing.assert_frame_equal(out, again.table)
    assert release.seed == seed and release.seeded


# --------------------------------------------------------------------------- (f) real CelebA

ATTRIBUTES = ["Male", "Young", "Eyeglasses", "Smiling", "Blond_Hair", "Wearing_Hat", "Bald",
              "Attractive", "Heavy_Makeup", "No_Beard"]


@pytest.mark.realdata
def test_celeba_frequencies_recovered(celeba_dir):
    table = read_celeba_attributes(celeba_dir / "list_attr_celeba_first20k.txt")
    before = table.copy(deep=True)
    release = randomized_response(table, ATTRIBUTES, 1.0, domains=[-1, 1], seed=2019)
    pd.testing.assert_frame_equal(table, before)
    assert release.epsilon == pytest.approx(1.0)
    assert all(e == pytest.approx(0.1) for e in release.per_attribute.values())
    out = release.table
    pd.testing.assert_series_equal(out.dtypes, table.dtypes)  # int8 throughout
    pd.testing.assert_index_equal(out.index, table.index)
    unlisted = [c for c in table.columns if c not in ATTRIBUTES]
    pd.testing.assert_frame_equal(out[unlisted], table[unlisted])
    n = len(table)
    p = keep_probability(0.1)
    # cells kept across the 10 attributes: one binomial with 200,000 trials
    kept = (out[ATTRIBUTES].to_numpy() == table[ATTRIBUTES].to_numpy()).mean()
    assert abs(kept - p) <= Z * math.sqrt(p * (1 - p) / (n * len(ATTRIBUTES)))
    for c in ATTRIBUTES:
        truth = table[c].value_counts(normalize=True).reindex([-1, 1], fill_value=0).to_numpy()
        est = estimate_frequencies(release, c).to_numpy()
        sd = np.sqrt(_grr_variance(truth, p, 2, n))  # about 0.07 at eps_j = 0.1, n = 20,000
        assert np.all(np.abs(est - truth) <= Z * sd), (c, est, truth, sd)


TEXT_DTYPES = [object, "string", pd.StringDtype("python", na_value=np.nan)]  # the last: pandas 3's


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=["object", "string", "str"])
def test_a_release_keeps_the_dtype_of_a_text_column(dtype):
    """pandas 3 infers `str` from an object array: the release must still keep the input's dtype
    (object stays object, `string` stays `string`), values drawn from the domain."""
    table = pd.DataFrame({"hair": pd.Series(["black", "blond", "brown", "black"] * 5,
                                            dtype=dtype), "Male": [1, -1] * 10})
    release = randomized_response(table, ["hair", "Male"], 1.0, seed=0)
    pd.testing.assert_series_equal(release.table.dtypes, table.dtypes)
    assert set(release.table["hair"]) <= {"black", "blond", "brown"}
