"""One JSON encoding for every privface output: numpy to Python, infinities as strings.

JSON has no infinity and no NaN (``json.dumps`` writes ``Infinity`` and ``NaN``, which strict
parsers refuse), yet privacy metrics are often infinite (t-closeness of an empty requirement, the
re-identification odds of a unique face). Every output writes them the same way: ``"inf"`` and
``"-inf"``; a value that is missing or undefined (NaN, ``None``, pandas' NA) is ``null``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: the one converter every JSON output of privface uses.

    numpy scalars become Python scalars (ints stay ints), infinities become ``"inf"`` /
    ``"-inf"``, NaN and missing values become ``None``, lists and tuples become lists of
    converted values, mappings dicts with string keys; any other object becomes its ``str``.

    Parameters
    ----------
    value : object
        A scalar, or a list, tuple or mapping of them.

    Returns
    -------
    object
        ``None``, a bool, int, float, str, list or dict.

    Examples
    --------
    >>> json_value(float("inf")), json_value(np.int64(3)), json_value(0.5), json_value(np.nan)
    ('inf', 3, 0.5, None)
    >>> json_value((np.float32(0.5), -np.inf)), json_value({1: np.bool_(True)})
    ([0.5, '-inf'], {'1': True})
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return None if math.isnan(number) else number
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if _missing(value):
        return None
    return str(value)


def _missing(value: Any) -> bool:
    """Whether ``value`` is pandas' NA or NaT, or numpy's NaT."""
    if isinstance(value, np.generic):
        return bool(np.isnat(value)) if value.dtype.kind in "mM" else False
    if type(value).__module__.startswith("pandas"):
        # Only asked of pandas' own objects, so the base layer never imports pandas itself.
        import pandas as pd

        missing = pd.isna(value)
        return isinstance(missing, (bool, np.bool_)) and bool(missing)
    return False
