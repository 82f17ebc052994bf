"""l-diversity: distinct, entropy and recursive (c, l).

Each function works per sensitive attribute on its class-by-value counts and, at table level,
reports the worst class and the worst sensitive attribute (the smallest l).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .compare import falls_short
from .contingency import ContingencyTable, SensitiveCounts
from .engines import as_contingency
Data = pd.DataFrame | ContingencyTable


def distinct_l_per_class(sc: SensitiveCounts) -> np.ndarray:
    """Number of distinct sensitive values in each class."""
    return sc.distinct


def entropy_l_per_class(sc: SensitiveCounts) -> np.ndarray:
    """``exp(H(P_E))`` (natural log) of each class."""
    plogp = sc.cell_q * sc.cell_log_q
    entropy = -np.bincount(sc.cell_class, weights=plogp, minlength=len(sc.class_start) - 1)
    return np.exp(np.maximum(entropy, 0.0))


def recursive_l_per_class(sc: SensitiveCounts, c: float) -> np.ndarray:
    """Largest l such that each class satisfies recursive (c, l)-diversity (0 when none does).

    With counts ``r_1 >= r_2 >= ... >= r_m`` in a class, (c, l) holds when
    ``r_1 < c * (r_l + ... + r_m)``. The right side shrinks as l grows, so the l that hold form a
    prefix ``1..L`` and ``L`` is the number of ranks where the inequality holds. The inequality is
    strict up to :data:`~.compare.TOLERANCE`: ``c = 1.1`` with ``r_1 = 11`` and a tail of 10 does
    not hold, although ``1.1 * 10`` is ``11.000000000000002`` in floating point.
    """
    _check_c(c)
    n_classes = len(sc.class_start) - 1
    distinct = sc.distinct
    # A class with one value has r_1 = total: (c, 1) holds iff c > 1; nothing else can hold.
    out = np.full(n_classes, 1 if falls_short(1, c) else 0, dtype=np.int64)
    multi = distinct[sc.cell_class] > 1
    if not multi.any():
        return out
    cls = sc.cell_class[multi]
    cnt = sc.cell_count[multi]
    order = np.lexsort((-cnt, cls))  # within each class, counts in descending order
    cls, cnt = cls[order], cnt[order]
    sizes = sc.class_sizes[cls]
    csum = np.cumsum(cnt)
    first = np.empty(len(cls), dtype=bool)
    first[:1] = True
    np.not_equal(cls[1:], cls[:-1], out=first[1:])
    start_of = np.flatnonzero(first)
    seg = np.cumsum(first) - 1
    before = csum - cnt - (csum - cnt)[start_of][seg]  # counts ranked above this one
    r1 = cnt[start_of][seg]
    tail = sizes - before  # r_l + ... + r_m for l = this rank
    holds = falls_short(r1, c * tail)
    out[cls[start_of]] = np.bincount(seg, weights=holds).astype(np.int64)
    return out


def recursive_c_per_class(sc: SensitiveCounts, l: int) -> np.ndarray:
    """Smallest integer c for which each class satisfies recursive (c, l)-diversity.

    ``floor(r_1 / (r_l + ... + r_m)) + 1``; infinite when the class has fewer than l values.
    """
    if l < 1:
        raise InputError(f"l must be at least 1, got {l}")
    cls, cnt = sc.cell_class, sc.cell_count
    order = np.lexsort((-cnt, cls))
    cls, cnt = cls[order], cnt[order]
    rank = np.arange(len(cls)) - sc.class_start[cls]
    n_classes = len(sc.class_start) - 1
    r1 = cnt[sc.class_start[:-1]]
    tail = np.bincount(cls, weights=np.where(rank >= l - 1, cnt, 0), minlength=n_classes)
    with np.errstate(divide="ignore"):
        return np.where(tail > 0, np.floor(r1 / np.where(tail > 0, tail, 1)) + 1, np.inf)


def l_diversity(data: Data, qi: Sequence[str] | None = None,
                sensitive: Sequence[str] | str | None = None) -> int:
    """Distinct l-diversity: the fewest distinct sensitive values in any class.

    Several sensitive attributes: each is measured on its own and the smallest l is returned.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "id": [1, 2, 3, 3]})
    >>> l_diversity(df, ["Male"], "id")
    1
    """
    ct = as_contingency(data, qi, sensitive)
    return int(min(sc.distinct.min() for sc in ct.select(sensitive)))


def entropy_l_diversity(data: Data, qi: Sequence[str] | None = None,
                        sensitive: Sequence[str] | str | None = None) -> float:
    """Entropy l-diversity: ``min_E exp(H(P_E))`` with the natural log.

    The table satisfies entropy l-diversity for every l up to this value. Unlike pycanon, the
    value is not floored to an integer: two equiprobable values give 2.0, not 1.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "id": [1, 2, 3, 4]})
    >>> round(entropy_l_diversity(df, ["Male"], "id"), 6)
    2.0
    """
    ct = as_contingency(data, qi, sensitive)
    return float(min(entropy_l_per_class(sc).min() for sc in ct.select(sensitive)))


def recursive_c_l_diversity(data: Data, c: float = 2.0, qi: Sequence[str] | None = None,
                            sensitive: Sequence[str] | str | None = None) -> int:
    """Recursive (c, l)-diversity: the largest l that holds for the given c.

    With counts ``r_1 >= r_2 >= ...`` in a class, (c, l) holds when
    ``r_1 < c (r_l + ... + r_m)`` for every class. Returns 0 when not even l = 1 holds (c <= 1
    and a class with a single value).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1] * 4, "id": [1, 1, 2, 3]})
    >>> recursive_c_l_diversity(df, c=2, qi=["Male"], sensitive="id")
    2
    """
    ct = as_contingency(data, qi, sensitive)
    return int(min(recursive_l_per_class(sc, c).min() for sc in ct.select(sensitive)))


def recursive_c(data: Data, l: int, qi: Sequence[str] | None = None,
                sensitive: Sequence[str] | str | None = None) -> float:
    """The smallest integer c for which recursive (c, l)-diversity holds (inf if none does).

    This is the quantity pycanon's ``recursive_c_l_diversity`` returns for ``l`` equal to the
    distinct l-diversity, computed with counts in descending order as the definition requires.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1] * 4, "id": [1, 1, 2, 3]})
    >>> recursive_c(df, l=2, qi=["Male"], sensitive="id")
    2.0
    """
    ct = as_contingency(data, qi, sensitive)
    return float(max(recursive_c_per_class(sc, l).max() for sc in ct.select(sensitive)))


def _check_c(c: float) -> None:
    if not np.isfinite(c) or c <= 0:
        raise InputError(f"c of recursive (c, l)-diversity must be a positive number, got {c}")
