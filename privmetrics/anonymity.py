"""k-anonymity and re-identification risk under the prosecutor model.

Both depend only on the sizes of the equivalence classes: a record in a class of size ``|E|`` is
re-identified by an attacker who knows it is in the table with probability ``1/|E|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from privface.base.errors import InputError

from .compare import exceeds
from .contingency import ContingencyTable
from .engines import as_contingency
def k_anonymity(data: pd.DataFrame | ContingencyTable, qi: Sequence[str] | None = None) -> int:
    """The k of k-anonymity: the size of the smallest equivalence class.

    Parameters
    ----------
    data : DataFrame or ContingencyTable
    qi : sequence of str, optional
        Quasi-identifiers; needed when ``data`` is a DataFrame.

    Returns
    -------
    int

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1, -1], "Young": [1, 1, 1, 1, -1]})
    >>> k_anonymity(df, ["Male"]), k_anonymity(df, ["Male", "Young"])
    (2, 1)
    """
    ct = as_contingency(data, qi)
    return int(ct.class_sizes.min())


@dataclass(frozen=True)
class RiskSummary:
    """Re-identification risk under the prosecutor model.

    Attributes
    ----------
    highest : float
        The largest per-record risk, ``1 / k``.
    average : float
        Mean per-record risk, which equals ``classes / records``.
    threshold : float
        The risk above which a record counts as at risk.
    records_at_risk : float
        Share of records whose risk is above ``threshold``.
    uniques : int
        Sample uniques: records alone in their class.
    """

    highest: float
    average: float
    threshold: float
    records_at_risk: float
    uniques: int

    def to_dict(self) -> dict:
        """The summary as a plain dict."""
        return asdict(self)


def reidentification_risk(
    data: pd.DataFrame | ContingencyTable,
    qi: Sequence[str] | None = None,
    *,
    threshold: float = 0.2,
) -> RiskSummary:
    """Prosecutor re-identification risk: highest, average, share above a threshold, uniques.

    Parameters
    ----------
    data : DataFrame or ContingencyTable
    qi : sequence of str, optional
    threshold : float, default 0.2
        A record is at risk when ``1/|E| > threshold`` by more than :data:`~.compare.TOLERANCE`
        (0.2 is the risk of a 5-anonymous class).

    Returns
    -------
    RiskSummary

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1]})
    >>> r = reidentification_risk(df, ["Male"], threshold=0.6)
    >>> r.highest, round(r.average, 3), round(r.records_at_risk, 3), r.uniques
    (1.0, 0.667, 0.333, 1)
    """
    if not 0 <= threshold <= 1:
        raise InputError(f"the risk threshold must lie in [0, 1], got {threshold}")
    ct = as_contingency(data, qi)
    sizes = ct.class_sizes
    n = ct.n_records
    at_risk = sizes[exceeds(1.0 / sizes, threshold)].sum()
    return RiskSummary(
        highest=float(1.0 / sizes.min()),
        average=float(len(sizes) / n),
        threshold=float(threshold),
        records_at_risk=float(at_risk / n),
        uniques=int(np.count_nonzero(sizes == 1)),
    )


def record_risk(data: pd.DataFrame | ContingencyTable, qi: Sequence[str] | None = None
                ) -> np.ndarray:
    """Each record's prosecutor risk ``1/|E|``, in row order.

    Examples
    --------
    >>> import pandas as pd
    >>> record_risk(pd.DataFrame({"Male": [1, 1, -1]}), ["Male"]).tolist()
    [0.5, 0.5, 1.0]
    """
    ct = as_contingency(data, qi)
    return 1.0 / ct.class_sizes[ct.record_class]
