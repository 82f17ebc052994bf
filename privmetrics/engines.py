"""Every metric's way in: a contingency table from a ready one, a pandas or a Dask DataFrame.

It sits above both engines (:mod:`~privface.privmetrics.contingency` in memory,
:mod:`~privface.privmetrics.dask_engine` on Dask) so that neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from privface.base.errors import InputError

from .contingency import ContingencyTable, Ordered, contingency_table
from .dask_engine import dask_contingency, is_dask_frame


def as_contingency(
    data: pd.DataFrame | ContingencyTable,
    qi: Sequence[str] | None = None,
    sensitive: Sequence[str] | str | None = None,
    *,
    ordered: Ordered = (),
) -> ContingencyTable:
    """Accept either a ready :class:`ContingencyTable` or a DataFrame with its column roles.

    Every metric calls this first, so ``k_anonymity(df, qi=[...])`` and ``k_anonymity(ct)`` both
    work, and a table reused across metrics is grouped once. A Dask DataFrame is counted on Dask
    (:func:`~privface.privmetrics.dask_engine.dask_contingency`), with the same result.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, -1]})
    >>> ct = as_contingency(df, ["Male"])
    >>> as_contingency(ct) is ct
    True
    """
    if isinstance(data, ContingencyTable):
        if qi is not None and list(qi) != data.qi:
            raise InputError(f"the contingency table was built for quasi-identifiers {data.qi}, "
                             f"not {list(qi)}: build a new one")
        return data
    if qi is None:
        raise InputError("quasi-identifiers (qi=) are needed when passing a DataFrame")
    if is_dask_frame(data):
        return dask_contingency(data, qi, sensitive, ordered=ordered)
    return contingency_table(data, qi, sensitive, ordered=ordered)
