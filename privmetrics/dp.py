"""Local differential privacy for face attributes: randomised response and its estimators.

Randomised response (Warner 1965) is the classic epsilon-local-DP mechanism for categorical data:
every cell of a listed column keeps its value with probability ``p`` and otherwise takes one of the
column's other values, chosen uniformly (generalised randomised response, GRR, for ``k > 2``
values). With ``k`` values in a column's domain and budget ``eps_j``,

    ``p = e^eps_j / (e^eps_j + k - 1)``,   ``q = (1 - p) / (k - 1)``  (any one other value),

so the ratio of the probabilities of any output under any two inputs is at most ``p / q = e^eps_j``:
each released cell is ``eps_j``-locally differentially private. A row's randomised columns are
randomised independently, so by sequential composition the row as a whole is
``sum_j eps_j``-locally private (docs/making-it-private.md, "Randomised response and unbiased
estimates").

The release is post-processed into unbiased estimates of the true value shares
(:func:`estimate_frequencies`) and of the joint distribution of a few columns
(:func:`estimate_joint_frequencies`): a researcher learns the population, no one learns a face.

Randomness comes from :func:`numpy.random.default_rng` seeded from OS entropy. A seed makes a
release reproducible, for tests only: whoever knows the seed can undo the noise, and the release
records that a seed was used (:attr:`DPRelease.seeded`).

Examples
--------
>>> import pandas as pd
>>> from privface.privmetrics.dp import randomized_response, estimate_frequencies
>>> faces = pd.DataFrame({"Male": [1, -1] * 500, "Eyeglasses": [-1] * 900 + [1] * 100},
...                      dtype="int8")
>>> release = randomized_response(faces, ["Male", "Eyeglasses"], 2.0, seed=7)
>>> release.epsilon, release.per_attribute
(2.0, {'Male': 1.0, 'Eyeglasses': 1.0})
>>> release.table.dtypes.tolist() == faces.dtypes.tolist()
True
>>> shares = estimate_frequencies(release, "Eyeglasses")
>>> shares.index.tolist(), round(float(shares.sum()), 12)
([-1, 1], 1.0)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.jsonenc import json_value
from privface.base.validation import check_epsilon, check_seed, did_you_mean

__all__ = [
    "DPRelease",
    "MAX_JOINT_COLUMNS",
    "epsilon_for_flip_probability",
    "estimate_frequencies",
    "estimate_joint_frequencies",
    "flip_probability",
    "respond",
    "keep_probability",
    "randomized_response",
]

MECHANISM = "randomized_response"

#: The joint estimator refuses more columns than this: its cell count grows as ``prod k_j`` and
#: its variance as ``prod 1 / (p_j - q_j)^2``, so beyond a dozen columns the estimate is noise.
MAX_JOINT_COLUMNS = 12
_MAX_JOINT_CELLS = 1 << 20
# Integer columns whose values span at most this many are coded by offset (no hash table).
_DENSE_RANGE = 1 << 16


# --------------------------------------------------------------------------- probabilities


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or int(k) < 2:
        raise InputError(f"the number of values k must be an integer >= 2, got {k!r}")
    return int(k)


def keep_probability(epsilon: float, k: int = 2) -> float:
    """Probability that randomised response reports the true value: ``e^eps / (e^eps + k - 1)``.

    Parameters
    ----------
    epsilon : float
        The budget of one attribute, > 0 and finite.
    k : int, default 2
        Number of values in the attribute's domain.

    Returns
    -------
    float

    Examples
    --------
    >>> round(keep_probability(1.0), 6), round(keep_probability(1.0, k=4), 6)
    (0.731059, 0.475367)
    """
    eps = check_epsilon(epsilon)
    k = _check_k(k)
    # 1 / (1 + (k-1) e^-eps) does not overflow for large eps, unlike e^eps / (e^eps + k - 1).
    return float(1.0 / (1.0 + (k - 1) * math.exp(-eps)))


def flip_probability(epsilon: float, k: int = 2) -> float:
    """Probability that randomised response reports a value other than the true one.

    ``1 / (1 + e^eps)`` for a binary attribute; ``(k - 1) / (e^eps + k - 1)`` for ``k`` values
    (each of the ``k - 1`` other values then has probability ``1 / (e^eps + k - 1)``).

    Parameters
    ----------
    epsilon : float
        The budget of one attribute, > 0 and finite.
    k : int, default 2
        Number of values in the attribute's domain.

    Returns
    -------
    float

    Examples
    --------
    >>> round(flip_probability(1.0), 6)
    0.268941
    >>> round(flip_probability(math.log(3)), 6)  # e^eps = 3: one answer in four is a lie
    0.25
    """
    eps = check_epsilon(epsilon)
    k = _check_k(k)
    t = (k - 1) * math.exp(-eps)
    return float(t / (1.0 + t))


def epsilon_for_flip_probability(flip: float, k: int = 2) -> float:
    """The budget at which randomised response changes a value with probability ``flip``.

    The inverse of :func:`flip_probability`: ``eps = ln((k - 1) (1 - flip) / flip)``.

    Parameters
    ----------
    flip : float
        Wanted probability of reporting another value, in ``(0, (k - 1) / k)``. At
        ``(k - 1) / k`` the output is independent of the input (``eps = 0``); at 0 there is no
        privacy (``eps`` infinite).
    k : int, default 2
        Number of values in the attribute's domain.

    Returns
    -------
    float

    Examples
    --------
    >>> round(epsilon_for_flip_probability(0.25), 6), round(math.log(3), 6)
    (1.098612, 1.098612)
    >>> round(epsilon_for_flip_probability(flip_probability(0.3, k=5), k=5), 12)
    0.3
    """
    k = _check_k(k)
    if isinstance(flip, bool) or not isinstance(flip, numbers.Real) or not math.isfinite(flip):
        raise InputError(f"the flip probability must be a number, got {flip!r}")
    top = (k - 1) / k
    if not 0 < flip < top:
        raise InputError(f"the flip probability must lie strictly between 0 and {top:.6g} "
                         f"(= (k-1)/k for k={k}), got {flip!r}")
    return float(math.log((k - 1) * (1.0 - flip) / flip))


# --------------------------------------------------------------------------- the release


@dataclass(frozen=True, eq=False)
class DPRelease:
    """A table released under randomised response, with its privacy accounting.

    Attributes
    ----------
    table : pandas.DataFrame
        The released table: a new frame with the input's index, columns and dtypes; the listed
        columns are randomised, the others are copied unchanged.
    epsilon : float
        Total budget spent per row: ``sum(per_attribute.values())`` (sequential composition over
        the randomised columns).
    per_attribute : dict of str to float
        Budget ``eps_j`` of each randomised column, in the order they were listed.
    mechanism : str
        ``"randomized_response"``.
    keep_probability : dict of str to float
        Probability that a cell of the column keeps its value, ``e^eps_j / (e^eps_j + k_j - 1)``.
    domains : dict of str to list
        Each column's domain (its ``k_j`` possible values); a changed cell takes one of the other
        ``k_j - 1`` values uniformly.
    seed : int or None
        The seed given, or None when the generator was seeded from OS entropy.
    seeded : bool
        Whether a seed was used. A seeded release is reproducible by anyone who knows the seed, so
        its privacy holds only while the seed stays secret: use seeds for tests only.
    """

    table: pd.DataFrame = field(repr=False)
    epsilon: float
    per_attribute: dict[str, float]
    mechanism: str
    keep_probability: dict[str, float]
    domains: dict[str, list]
    seed: int | None
    seeded: bool

    @property
    def columns(self) -> list[str]:
        """The randomised columns, in the order they were listed."""
        return list(self.per_attribute)

    def to_dict(self) -> dict:
        """A JSON-ready summary of the release (without the table).

        Examples
        --------
        >>> import json, pandas as pd
        >>> r = randomized_response(pd.DataFrame({"Male": [1, -1, 1]}), ["Male"], 1.0, seed=3)
        >>> d = r.to_dict()
        >>> d["mechanism"], d["epsilon"], d["seeded"], d["seed"], d["domains"]
        ('randomized_response', 1.0, True, 3, {'Male': [-1, 1]})
        >>> _ = json.dumps(d)
        """
        return {
            "mechanism": self.mechanism,
            "privacy_model": "local differential privacy (per row)",
            "composition": "sequential over the randomised columns",
            "epsilon": float(self.epsilon),
            "per_attribute": {c: float(e) for c, e in self.per_attribute.items()},
            "keep_probability": {c: float(p) for c, p in self.keep_probability.items()},
            "domains": {c: [json_value(v) for v in d] for c, d in self.domains.items()},
            "rows": int(len(self.table)),
            "seeded": bool(self.seeded),
            "seed": self.seed,
            "randomness": ("seeded numpy.random.default_rng: reproducible, private only while the "
                           "seed is secret (tests and reproducibility only)" if self.seeded else
                           "numpy.random.default_rng seeded from OS entropy"),
        }


# --------------------------------------------------------------------------- input checks


def _check_table(table: Any) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(table).__name__}")
    return table


def _column_names(table: pd.DataFrame, columns: Any, what: str = "column") -> list[str]:
    """Validate ``columns`` against the table: strings, present, once each, not repeated there."""
    if isinstance(columns, str):
        columns = [columns]
    try:
        names = list(columns)
    except TypeError:
        raise InputError(f"columns must be a list of column names, got {columns!r}") from None
    if not names:
        raise InputError("at least one column to randomise is needed")
    seen: set[str] = set()
    existing = [str(c) for c in table.columns]
    for c in names:
        if not isinstance(c, str):
            raise InputError(f"columns must be column names (strings), got {c!r}")
        if c not in table.columns:
            hint = did_you_mean(c, existing)
            raise InputError(f"no such {what} in the table{hint} "
                             f"(columns: {', '.join(existing[:12])}"
                             f"{', ...' if len(existing) > 12 else ''})", column=c)
        if c in seen:
            raise InputError(f"{what} listed twice", column=c)
        if not isinstance(table.columns.get_loc(c), numbers.Integral):
            raise InputError("the table has repeated columns of this name", column=c)
        seen.add(c)
    return names


def _first_row(mask: np.ndarray, index: pd.Index) -> tuple[int, str]:
    """1-based position of the first true entry of ``mask`` and a description of its label."""
    pos = int(np.flatnonzero(mask)[0])
    label = index[pos]
    if isinstance(label, np.generic):
        label = label.item()
    return pos + 1, f"index label {label!r}"


def _check_no_missing(series: pd.Series, column: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        row, label = _first_row(missing, series.index)
        raise InputError(
            f"missing value ({label}): randomised response needs a known value in every cell "
            "of a randomised column; fill or drop missing values first", row=row, column=column)


def _declared_domain(values: Any, column: str) -> pd.Index:
    if isinstance(values, (str, bytes, Mapping)) or not pd.api.types.is_list_like(values):
        raise InputError(f"the declared domain must be a list of values, got {values!r}",
                         column=column)
    domain = pd.Index(list(values), dtype=object, tupleize_cols=False)
    if len(domain) < 2:
        raise InputError(f"the declared domain needs at least two values, got {list(values)!r}",
                         column=column)
    if domain.isna().any():
        raise InputError("the declared domain contains a missing value", column=column)
    if not domain.is_unique:
        dup = domain[domain.duplicated()][0]
        raise InputError(f"the declared domain lists {dup!r} twice", column=column)
    return domain


def _domains_argument(domains: Any, columns: list[str]) -> dict[str, Any]:
    """``domains`` as {column: values}: a mapping, or one list shared by every column."""
    if domains is None:
        return {}
    if isinstance(domains, Mapping):
        for c in domains:
            if c not in columns:
                raise InputError("a domain is declared for a column that is not randomised",
                                 column=str(c))
        return dict(domains)
    return {c: domains for c in columns}


def _budgets(epsilon: Any, split: Any, columns: list[str]) -> dict[str, float]:
    if isinstance(split, str):
        if split != "even":
            raise InputError(f"split must be 'even' or a dict {{column: epsilon}}, got {split!r}")
        if epsilon is None:
            raise InputError("epsilon is needed to split the budget evenly over the columns")
        total = check_epsilon(epsilon)
        each = total / len(columns)
        if each <= 0:
            raise InputError(f"epsilon {total!r} is too small to split over {len(columns)} "
                             "columns")
        return {c: each for c in columns}
    if not isinstance(split, Mapping):
        raise InputError(f"split must be 'even' or a dict {{column: epsilon}}, got {split!r}")
    for c in split:
        if c not in columns:
            raise InputError("a budget is given for a column that is not randomised",
                             column=str(c))
    budgets = {}
    for c in columns:
        if c not in split:
            raise InputError("no budget given for this column in split", column=c)
        budgets[c] = check_epsilon(split[c], "the column's epsilon", column=c)
    if epsilon is not None:
        total = check_epsilon(epsilon)
        spent = math.fsum(budgets.values())
        if not math.isclose(total, spent, rel_tol=1e-9, abs_tol=1e-12):
            raise InputError(f"epsilon ({total!r}) must equal the sum of the per-attribute "
                             f"budgets ({spent!r}); or pass epsilon=None")
    return budgets


def respond(codes: np.ndarray, k: int, keep: float, u: np.ndarray) -> np.ndarray:
    """Generalised randomised response of codes ``0 .. k-1``, given one uniform draw per cell.

    The one mechanism of privface's local differential privacy: the table release
    (:func:`randomized_response`) and PPAS's step 1 on face attributes both call it. A cell keeps
    its code when ``u < keep``; otherwise ``(u - keep) / (1 - keep)`` is uniform on [0, 1) and
    picks one of the ``k - 1`` other codes, each with probability ``(1 - keep) / (k - 1)``.

    Parameters
    ----------
    codes : ndarray of int
        The true codes, any shape.
    k : int
        Size of the domain.
    keep : float
        :func:`keep_probability` of the attribute's budget.
    u : ndarray of float
        Uniform draws on [0, 1), the shape of ``codes``.

    Returns
    -------
    ndarray of int
        The reported codes.

    Examples
    --------
    >>> respond(np.array([0, 1, 0, 1]), 2, 0.75, np.array([0.1, 0.5, 0.8, 0.99])).tolist()
    [0, 1, 1, 0]
    >>> respond(np.array([0, 0, 0]), 3, 0.5, np.array([0.2, 0.6, 0.9])).tolist()
    [0, 1, 2]
    """
    if k == 2:
        return codes ^ (u >= keep)  # flip with probability 1 - keep
    other = np.minimum(((u - keep) * ((k - 1) / (1.0 - keep))).astype(np.int64), k - 2)
    return np.where(u < keep, codes, (codes + 1 + np.maximum(other, 0)) % k)


def _factorize(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """int64 codes of a column without missing values, and its distinct values (object Index).

    Distinct values are sorted when they can be (category order for the category dtype). Bool and
    narrow-range integer columns (CelebA's 1/-1) are coded by offset, without a hash table.
    """
    values = None if isinstance(series.dtype, pd.CategoricalDtype) else series.to_numpy()
    if (values is not None and len(values) and values.dtype.kind in "biu"
            and not (values.dtype.kind == "u" and values.dtype.itemsize == 8)):
        v = values.view(np.uint8) if values.dtype.kind == "b" else values
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < _DENSE_RANGE:
            offset = v.astype(np.int64) - lo
            present = np.bincount(offset, minlength=hi - lo + 1) > 0
            codes = (np.cumsum(present) - 1)[offset]
            distinct = (np.flatnonzero(present) + lo).tolist()
            if values.dtype.kind == "b":
                distinct = [bool(x) for x in distinct]
            return codes, pd.Index(distinct, dtype=object)
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:  # values that cannot be ordered, e.g. str and int in one column
        codes, uniques = pd.factorize(series, sort=False)
    distinct = pd.Index(list(pd.Index(uniques).tolist()), dtype=object, tupleize_cols=False)
    return codes.astype(np.int64, copy=False), distinct


def _encode(series: pd.Series, column: str, declared: Any | None) -> tuple[np.ndarray, pd.Index]:
    """Codes of the column's values in its domain, and the domain (object Index)."""
    _check_no_missing(series, column)
    local, uniques = _factorize(series)
    if declared is None:
        codes, domain = local, uniques
        if len(domain) < 2:
            raise InputError(
                f"the column has {len(domain)} distinct value(s) here, so its domain is unknown: "
                "declare it, e.g. domains={" f"{column!r}: [-1, 1]" "} (randomised response needs "
                "at least two possible values)", column=column)
        return codes, domain
    domain = _declared_domain(declared, column)
    # Look up only the few distinct values in the domain, then map every row's code.
    lookup = domain.get_indexer(uniques)
    codes = lookup[local]
    outside = codes < 0
    if outside.any():
        row, label = _first_row(outside, series.index)
        value = uniques[local[row - 1]]
        raise InputError(f"value {value!r} ({label}) is outside the declared domain "
                         f"{domain.tolist()!r}", row=row, column=column)
    return codes.astype(np.int64, copy=False), domain


def _palette(series: pd.Series, domain: pd.Index, column: str) -> pd.Series:
    """The domain's values in the column's dtype (``palette.array.take(codes)`` decodes)."""
    try:
        palette = pd.Series(domain.tolist(), dtype=object).astype(series.dtype)
    except (TypeError, ValueError, OverflowError) as err:
        raise InputError(f"the domain {domain.tolist()!r} cannot be stored in the column's dtype "
                         f"{series.dtype}: {err}", column=column) from None
    back = palette.astype(object).tolist()
    for want, got in zip(domain.tolist(), back):
        try:
            same = bool(want == got) and not pd.isna(got)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise InputError(f"the domain value {want!r} cannot be stored in the column's dtype "
                             f"{series.dtype}", column=column)
    return palette


# --------------------------------------------------------------------------- the mechanism


def randomized_response(
    table: pd.DataFrame,
    columns: Sequence[str] | str,
    epsilon: float | None = None,
    *,
    split: str | Mapping[str, float] = "even",
    domains: Mapping[str, Sequence] | Sequence | None = None,
    seed: int | None = None,
) -> DPRelease:
    """Release the listed columns under epsilon-local-DP randomised response.

    Each cell of a listed column keeps its value with probability
    ``p_j = e^eps_j / (e^eps_j + k_j - 1)`` and otherwise takes one of the column's other
    ``k_j - 1`` values, uniformly. For a binary column (CelebA's 1/-1, bool) that is a flip with
    probability ``1 / (1 + e^eps_j)``. Every cell gets one independent uniform draw; there is no
    loop over rows.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per face. Not modified.
    columns : sequence of str
        The columns to randomise (a single name is accepted too).
    epsilon : float, optional
        Total budget per row, > 0 and finite. Required with ``split="even"``; with a dict split it
        may be None, and when given must equal the sum of the dict's budgets.
    split : "even" or dict of str to float, default "even"
        ``"even"`` gives each column ``epsilon / len(columns)``; a dict gives each column its own
        budget ``eps_j`` (every listed column, no other).
    domains : dict of str to list, or list, optional
        Declared domain of a column (its possible values); a single list applies to every column.
        Undeclared columns use their distinct values in the table, sorted when they can be.
        Declaring is recommended: a domain read off the data is itself data-dependent (a value
        held by one face reveals that someone holds it), and a column showing only one value
        here (e.g. a one-row table, as in PPAS) cannot be randomised without a declared domain.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`, for tests and reproducibility only. The default
        None seeds from OS entropy, which the privacy guarantee relies on; the release records
        whether a seed was used.

    Returns
    -------
    DPRelease
        The released table (same index, columns and dtypes; unlisted columns copied unchanged) and
        the accounting: ``epsilon = sum_j eps_j``, per-attribute budgets, keep probabilities,
        domains and the seed.

    Raises
    ------
    InputError
        Not a DataFrame; no, unknown or repeated columns; epsilon not > 0 and finite; a split that
        does not match the columns or epsilon; a missing value (names the column and first row);
        a value outside its declared domain (names the column and row); a domain of fewer than two
        values or one that the column's dtype cannot hold; a bad seed.

    Notes
    -----
    Privacy holds per row (local DP) for the listed columns; unlisted columns are released as
    they are, so a caller must not leave identifying columns unlisted. ``numpy``'s PCG64 is a
    statistical, not a cryptographic, generator; it is seeded from OS entropy (docs/design.md,
    "The privacy model").

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, -1, 1, -1], "Hair": ["black", "blond", "brown", "black"],
    ...                    "identity": [10, 11, 12, 13]})
    >>> release = randomized_response(df, ["Male", "Hair"], epsilon=None,
    ...                               split={"Male": 1.0, "Hair": 0.5}, seed=42)
    >>> release.epsilon, release.domains["Hair"]
    (1.5, ['black', 'blond', 'brown'])
    >>> {c: round(p, 4) for c, p in release.keep_probability.items()}
    {'Male': 0.7311, 'Hair': 0.4519}
    >>> release.table["identity"].tolist()  # unlisted columns are copied
    [10, 11, 12, 13]
    >>> release.seeded, randomized_response(df, ["Male"], 1.0).seeded
    (True, False)
    """
    table = _check_table(table)
    names = _column_names(table, columns)
    budgets = _budgets(epsilon, split, names)
    declared = _domains_argument(domains, names)
    seed = check_seed(seed)

    n = len(table)
    # Validate and encode every column before drawing anything, so bad input fails early.
    encoded = {}
    for c in names:
        series = table[c]
        codes, domain = _encode(series, c, declared.get(c))
        encoded[c] = (codes, domain, _palette(series, domain, c))

    rng = np.random.default_rng(seed)
    out = table.copy(deep=True)
    keep: dict[str, float] = {}
    for c in names:
        codes, domain, palette = encoded[c]
        k = len(domain)
        p = keep_probability(budgets[c], k)
        keep[c] = p
        new_codes = respond(codes, k, p, rng.random(n))
        # A Series of the palette's dtype: pandas 3 would infer `str` from a bare object array.
        out.isetitem(table.columns.get_loc(c), pd.Series(palette.array.take(new_codes),
                                                         index=out.index, dtype=palette.dtype))

    return DPRelease(
        table=out,
        epsilon=float(math.fsum(budgets.values())),
        per_attribute=dict(budgets),
        mechanism=MECHANISM,
        keep_probability=keep,
        domains={c: encoded[c][1].tolist() for c in names},
        seed=seed,
        seeded=seed is not None,
    )


# --------------------------------------------------------------------------- estimators


def _project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    j = np.arange(1, len(v) + 1)
    rho = np.flatnonzero(u - css / j > 0)[-1]
    theta = css[rho] / (rho + 1)
    return np.maximum(v - theta, 0.0)


def _unbiased_shares(codes: list[np.ndarray], ks: list[int], ps: list[float]) -> np.ndarray:
    """Invert the product of GRR channels on the observed joint shares, axis by axis.

    Returns the flattened estimate over the C-ordered product of the domains.
    """
    n = len(codes[0])
    key = np.zeros(n, dtype=np.int64)
    for c, k in zip(codes, ks):
        key = key * k + c
    cells = int(np.prod(ks))
    observed = np.bincount(key, minlength=cells).astype(np.float64) / n
    est = observed.reshape(ks)
    # The channel of one column is M = (p - q) I + q 1 1^T, whose inverse is
    # (I - q 1 1^T) / (p - q) since p + (k - 1) q = 1. Apply it along each axis: that is the
    # inverse of the Kronecker product of the channels, without forming it.
    for axis, (k, p) in enumerate(zip(ks, ps)):
        q = (1.0 - p) / (k - 1)
        est = (est - q * est.sum(axis=axis, keepdims=True)) / (p - q)
    return est.reshape(-1)


def _release_column(release: DPRelease, column: Any) -> str:
    if not isinstance(column, str) or column not in release.per_attribute:
        raise InputError(f"not a randomised column of this release (randomised: "
                         f"{', '.join(release.per_attribute)})", column=str(column))
    return column


def _observed_codes(series: pd.Series, column: str, domain: pd.Index) -> np.ndarray:
    codes, _ = _encode(series, column, domain)
    return codes


def estimate_frequencies(
    data: DPRelease | pd.DataFrame,
    column: str,
    *,
    epsilon: float | None = None,
    domain: Sequence | None = None,
    clip: bool = False,
) -> pd.Series:
    """Unbiased estimate of a column's true value shares from its randomised release.

    With keep probability ``p``, ``q = (1 - p) / (k - 1)`` and observed share ``o_v`` of value
    ``v``, the estimate is ``(o_v - q) / (p - q)``. Its expectation is the true share ``f_v`` and,
    for ``n`` rows, its variance is ``(f_v p (1 - p) + (1 - f_v) q (1 - q)) / (n (p - q)^2)``.

    Parameters
    ----------
    data : DPRelease or pandas.DataFrame
        A release (its budget and domain are used), or a randomised table; a table needs
        ``epsilon`` and ``domain``.
    column : str
        The randomised column.
    epsilon : float, optional
        The column's own budget ``eps_j`` (not the total); only with a DataFrame.
    domain : list, optional
        The column's domain, as randomised; only with a DataFrame.
    clip : bool, default False
        Project the estimate onto the probability simplex (non-negative, sums to 1). Clipping
        introduces bias (it pulls small shares up and large ones down); the default keeps the
        estimate unbiased, so it may contain negative shares or shares above 1. Either way the
        shares sum to 1.

    Returns
    -------
    pandas.Series
        Estimated share of each domain value, indexed by the domain (index name ``column``).

    Examples
    --------
    >>> import pandas as pd
    >>> noisy = pd.DataFrame({"Male": [1] * 60 + [-1] * 40})
    >>> est = estimate_frequencies(noisy, "Male", epsilon=math.log(3), domain=[-1, 1])
    >>> [round(v, 6) for v in est.tolist()]  # p = 3/4: (0.4 - 0.25) / 0.5 = 0.3
    [0.3, 0.7]
    >>> est.index.tolist(), est.index.name
    ([-1, 1], 'Male')
    """
    if isinstance(data, DPRelease):
        if epsilon is not None or domain is not None:
            raise InputError("epsilon and domain come from the release; pass them only with a "
                             "DataFrame")
        name = _release_column(data, column)
        eps, dom = data.per_attribute[name], data.domains[name]
        table = data.table
    else:
        table = _check_table(data)
        name = _column_names(table, [column])[0]
        if epsilon is None or domain is None:
            raise InputError("estimating from a DataFrame needs the column's epsilon and domain "
                             "(or pass the DPRelease)", column=name)
        eps = check_epsilon(epsilon, "the column's epsilon", column=name)
        dom = domain
    if len(table) == 0:
        raise InputError("the table has no rows")
    index = _declared_domain(dom, name)
    codes = _observed_codes(table[name], name, index)
    k = len(index)
    est = _unbiased_shares([codes], [k], [keep_probability(eps, k)])
    if clip:
        est = _project_to_simplex(est)
    return pd.Series(est, index=pd.Index(index.tolist(), name=name, tupleize_cols=False),
                     name="estimated_share")


def estimate_joint_frequencies(
    release: DPRelease,
    columns: Sequence[str],
    *,
    clip: bool = False,
) -> pd.Series:
    """Unbiased estimate of the joint distribution of a few randomised columns.

    Each column was randomised independently through its channel matrix
    ``M_j = (p_j - q_j) I + q_j 1 1^T``, so the observed joint shares have expectation
    ``(M_1 kron M_2 kron ...) f``; the estimate applies the inverse of that Kronecker product to
    the observed joint shares (axis by axis, without forming it). Works for binary and k-ary
    columns.

    Parameters
    ----------
    release : DPRelease
    columns : sequence of str
        Randomised columns of the release, at most :data:`MAX_JOINT_COLUMNS` (12): the variance
        grows as ``prod_j 1 / (p_j - q_j)^2``, so more columns give noise, not estimates.
    clip : bool, default False
        Project onto the probability simplex; biased (see :func:`estimate_frequencies`).

    Returns
    -------
    pandas.Series
        Estimated share of every combination of values, indexed by a MultiIndex over the product
        of the columns' domains (names = ``columns``); the shares sum to 1.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, -1] * 2000, "Young": [1, 1, -1, -1] * 1000})
    >>> release = randomized_response(df, ["Male", "Young"], 8.0, seed=1)
    >>> joint = estimate_joint_frequencies(release, ["Male", "Young"])
    >>> joint.index.names, len(joint)
    (FrozenList(['Male', 'Young']), 4)
    >>> bool(abs(joint.loc[(1, -1)] - 0.25) < 0.05), round(float(joint.sum()), 12)
    (True, 1.0)
    """
    if not isinstance(release, DPRelease):
        raise InputError(f"expected a DPRelease (from randomized_response), got "
                         f"{type(release).__name__}")
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise InputError("at least one column is needed")
    if len(names) > MAX_JOINT_COLUMNS:
        raise InputError(f"the joint estimate of {len(names)} columns is refused: at most "
                         f"{MAX_JOINT_COLUMNS} columns (the cell count and the variance grow "
                         "exponentially with the number of columns)")
    seen: set[str] = set()
    for c in names:
        _release_column(release, c)
        if c in seen:
            raise InputError("column listed twice", column=c)
        seen.add(c)
    if len(release.table) == 0:
        raise InputError("the table has no rows")
    indexes = [_declared_domain(release.domains[c], c) for c in names]
    ks = [len(ix) for ix in indexes]
    if math.prod(ks) > _MAX_JOINT_CELLS:
        raise InputError(f"the joint domain has {math.prod(ks)} cells, more than "
                         f"{_MAX_JOINT_CELLS}; estimate fewer columns")
    codes = [_observed_codes(release.table[c], c, ix) for c, ix in zip(names, indexes)]
    ps = [release.keep_probability[c] for c in names]
    est = _unbiased_shares(codes, ks, ps)
    if clip:
        est = _project_to_simplex(est)
    index = pd.MultiIndex.from_product([ix.tolist() for ix in indexes], names=names)
    return pd.Series(est, index=index, name="estimated_share")
