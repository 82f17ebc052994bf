"""Checks of the parameters every part shares: privacy budgets, seeds, names the user typed."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any

from .errors import InputError


def check_epsilon(epsilon: Any, what: str = "epsilon", column: str | None = None, *,
                  none_skips: bool = False) -> float:
    """``epsilon`` as a float, or an :class:`InputError` unless it is a finite number > 0.

    Parameters
    ----------
    epsilon : float
        A differential-privacy budget.
    what : str
        How the message names the value.
    column : str, optional
        The column the budget is for, named in the error.
    none_skips : bool
        The caller accepts ``None`` for "no DP step": the message says so.

    Examples
    --------
    >>> check_epsilon(1)
    1.0
    >>> check_epsilon(0)
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: epsilon must be a positive finite number (> 0), got 0.0
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        alternative = (" (or None for no DP step, which gives no privacy guarantee)"
                       if none_skips else "")
        raise InputError(f"{what} must be a positive finite number{alternative}, got {epsilon!r}",
                         column=column)
    value = float(epsilon)
    if not math.isfinite(value) or value <= 0:
        skip = (f"; pass {what}=None to skip the DP step (no privacy guarantee)" if none_skips
                else "")
        raise InputError(f"{what} must be a positive finite number (> 0), got {value!r}{skip}",
                         column=column)
    return value


def check_seed(seed: Any) -> int | None:
    """``seed`` as an int, ``None`` (OS entropy), or an :class:`InputError`.

    Examples
    --------
    >>> check_seed(3), check_seed(None)
    (3, None)
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise InputError(f"seed must be None (OS entropy) or a non-negative integer, got {seed!r}")
    return int(seed)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A hint naming the choices closest to a misspelt ``name``: ``"; did you mean ...?"``.

    Empty when nothing is close, so that it can end any message.

    Examples
    --------
    >>> did_you_mean("Mle", ["Male", "Young"])
    '; did you mean Male?'
    >>> did_you_mean("Age", ["Male"])
    ''
    """
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""
