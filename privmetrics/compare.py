"""The one comparison every verdict against a requirement uses.

Metric values are computed in floating point from integer counts, so a table that meets a
requirement exactly can come out a hair off: entropy l-diversity of a class with 7 equally frequent
values is ``6.999999999999998``, and ``1.1 * 10`` is ``11.000000000000002``. A verdict must not
turn on that last bit. Two numbers count as equal when they differ by at most
:data:`TOLERANCE` times the larger of 1 and their magnitudes (the test of
``math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)``); infinities are equal only to
themselves. A requirement "at least" or "at most" a bound holds when the value is on the right side
of the bound or equal to it in this sense; a strict inequality holds only when the two differ by
more than the tolerance.

Examples
--------
>>> at_least(6.999999999999998, 7), at_most(0.30000000000000004, 0.3)
(True, True)
>>> exceeds(11, 1.1 * 10), at_least(6.99, 7)
(False, False)
"""

from __future__ import annotations

import numpy as np

#: Relative tolerance (absolute below 1) within which a metric value equals its bound.
TOLERANCE = 1e-9


def close(a, b) -> np.ndarray | bool:
    """Whether ``a`` and ``b`` are equal up to :data:`TOLERANCE` (elementwise).

    Examples
    --------
    >>> close(3.0, 2.9999999999999996), close(np.inf, np.inf), close(np.inf, 1e300)
    (True, True, False)
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
        out = (a == b) | (np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= TOLERANCE * scale))
    return out if out.ndim else bool(out)


def at_least(value, bound) -> np.ndarray | bool:
    """``value >= bound``, with values equal to the bound up to :data:`TOLERANCE` counting.

    Examples
    --------
    >>> at_least(np.array([2.9999999999999996, 2.5]), 3).tolist()
    [True, False]
    """
    out = (np.asarray(value, dtype=np.float64) >= bound) | close(value, bound)
    return out if np.ndim(out) else bool(out)


def at_most(value, bound) -> np.ndarray | bool:
    """``value <= bound``, with values equal to the bound up to :data:`TOLERANCE` counting.

    Examples
    --------
    >>> at_most(np.array([0.1 + 0.2, 0.31, np.inf]), 0.3).tolist()
    [True, False, False]
    """
    out = (np.asarray(value, dtype=np.float64) <= bound) | close(value, bound)
    return out if np.ndim(out) else bool(out)


def exceeds(value, bound) -> np.ndarray | bool:
    """``value > bound`` by more than :data:`TOLERANCE`: the negation of :func:`at_most`.

    Examples
    --------
    >>> exceeds(1 / 3, 0.333333333), exceeds(0.5, 0.2)
    (False, True)
    """
    out = ~np.asarray(at_most(value, bound))
    return out if out.ndim else bool(out)


def falls_short(value, bound) -> np.ndarray | bool:
    """``value < bound`` by more than :data:`TOLERANCE`: the negation of :func:`at_least`.

    Examples
    --------
    >>> falls_short(6.999999999999998, 7), falls_short(2, 3)
    (False, True)
    """
    out = ~np.asarray(at_least(value, bound))
    return out if out.ndim else bool(out)
