"""beta-likeness (basic and enhanced) and delta-disclosure privacy.

Both bound how much a class raises (beta) or moves (delta) the probability of a sensitive value
compared with the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .compare import exceeds
from .contingency import ContingencyTable, SensitiveCounts
from .engines import as_contingency
Data = pd.DataFrame | ContingencyTable


def _class_max(sc: SensitiveCounts, cell_values: np.ndarray, floor: float) -> np.ndarray:
    out = np.full(len(sc.class_start) - 1, floor, dtype=np.float64)
    np.maximum.at(out, sc.cell_class, cell_values)
    return out


def basic_beta_per_class(sc: SensitiveCounts) -> np.ndarray:
    """``max_s (P_E(s) - P(s)) / P(s)`` over values with ``P_E(s) > P(s)`` (0 if none), by class."""
    gain = (sc.cell_q - sc.cell_p) / sc.cell_p
    return _class_max(sc, gain, 0.0)


def enhanced_beta_per_class(sc: SensitiveCounts) -> np.ndarray:
    """Smallest beta for which each class satisfies enhanced beta-likeness (Cao & Karras, 2012).

    A class satisfies enhanced beta-likeness when every value it over-represents,
    ``P_E(s) > P(s)``, has ``(P_E(s) - P(s)) / P(s) <= min(beta, -ln P(s))``. The cap
    ``-ln P(s)`` belongs to each value. When a class raises some value past its own cap no beta
    suffices, and the class gets ``inf``; otherwise the smallest beta is the basic one.
    (pycanon instead caps the basic beta once with ``-ln`` of the rarest value's share.)
    """
    q, p = sc.cell_q, sc.cell_p
    gain = (q - p) / p
    over_cap = (q > p) & exceeds(gain, -sc.cell_log_p)
    out = basic_beta_per_class(sc)
    broken = np.zeros(len(out), dtype=bool)
    broken[sc.cell_class[over_cap]] = True
    out[broken] = np.inf
    return out


def delta_disclosure_per_class(sc: SensitiveCounts) -> np.ndarray:
    """``max_s |ln(P_E(s) / P(s))|`` per class; infinite when a table value is absent from it.

    delta-disclosure (Brickell & Shmatikov, 2008) bounds the ratio for every value of the table;
    a value missing from a class has ratio 0 and so an infinite log ratio. (pycanon skips absent
    values and reports a finite delta.)
    """
    ratio = np.abs(sc.cell_log_q - sc.cell_log_p)
    out = _class_max(sc, ratio, 0.0)
    out[sc.distinct < sc.m] = np.inf
    return out


def basic_beta_likeness(data: Data, qi: Sequence[str] | None = None,
                        sensitive: Sequence[str] | str | None = None) -> float:
    """Basic beta-likeness: the largest relative gain ``(P_E(s) - P(s)) / P(s)`` of any value.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "smile": [1, 1, 1, -1]})
    >>> round(basic_beta_likeness(df, ["Male"], "smile"), 4)
    1.0
    """
    ct = as_contingency(data, qi, sensitive)
    return float(max(basic_beta_per_class(sc).max() for sc in ct.select(sensitive)))


def enhanced_beta_likeness(data: Data, qi: Sequence[str] | None = None,
                           sensitive: Sequence[str] | str | None = None) -> float:
    """Enhanced beta-likeness: the smallest beta that every class satisfies (inf if none).

    See :func:`enhanced_beta_per_class` for the definition.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, 1, -1, -1, -1], "smile": [1, 1, -1, 1, -1, -1]})
    >>> round(enhanced_beta_likeness(df, ["Male"], "smile"), 4)
    0.3333
    >>> enhanced_beta_likeness(df.assign(smile=[1, 1, 1, -1, -1, -1]), ["Male"], "smile")
    inf
    """
    ct = as_contingency(data, qi, sensitive)
    return float(max(enhanced_beta_per_class(sc).max() for sc in ct.select(sensitive)))


def delta_disclosure(data: Data, qi: Sequence[str] | None = None,
                     sensitive: Sequence[str] | str | None = None) -> float:
    """delta-disclosure privacy: the largest ``|ln(P_E(s) / P(s))|`` over classes and values.

    Infinite as soon as a class lacks a value that the table has.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "smile": [1, -1, 1, -1]})
    >>> delta_disclosure(df, ["Male"], "smile")
    0.0
    >>> delta_disclosure(df.assign(smile=[1, 1, 1, -1]), ["Male"], "smile")
    inf
    """
    ct = as_contingency(data, qi, sensitive)
    return float(max(delta_disclosure_per_class(sc).max() for sc in ct.select(sensitive)))
