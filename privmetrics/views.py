"""Per-class and per-record views: which classes and which records break which requirement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .audit import Requirements, class_fails, class_metrics
from .closeness import GroundDistance, without_matrices
from .contingency import ContingencyTable, Ordered
from .engines import as_contingency
def class_view(
    data: pd.DataFrame | ContingencyTable,
    qi: Sequence[str] | None = None,
    sensitive: Sequence[str] | str | None = None,
    *,
    requirements: Requirements | None = None,
    ordered: Ordered = (),
    ground_distance: Mapping[str, GroundDistance] | None = None,
) -> pd.DataFrame:
    """One row per equivalence class: QI values, size, risk, every SA metric, broken requirements.

    Columns of SA metrics are named ``<sa>.<metric>``; ``breaks_<req>`` columns are booleans, one
    per requirement asked.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1], "id": [1, 2, 3]})
    >>> v = class_view(df, ["Male"], "id", requirements=Requirements(k=2))
    >>> v[["Male", "size", "id.l_diversity", "breaks_k"]].to_dict("list")
    {'Male': [-1, 1], 'size': [1, 2], 'id.l_diversity': [1, 2], 'breaks_k': [True, False]}
    """
    ct = as_contingency(data, qi, sensitive, ordered=without_matrices(ordered, ground_distance))
    requirements = requirements or Requirements()
    c = requirements.c if requirements.c is not None else 2.0
    ground_distance = dict(ground_distance or {})
    per_sa = {sc.name: class_metrics(sc, c=c, ground_distance=ground_distance.get(sc.name))
              for sc in (ct.select(sensitive) if ct.sensitive else [])}
    out = ct.class_values()
    out["size"] = ct.class_sizes
    out["risk"] = 1.0 / ct.class_sizes
    for name, values in per_sa.items():
        for metric, arr in values.items():
            out[f"{name}.{metric}"] = arr
    for key, fails in class_fails(requirements, ct, per_sa).items():
        out[f"breaks_{key}"] = fails
    return out


def record_view(
    data: pd.DataFrame | ContingencyTable,
    qi: Sequence[str] | None = None,
    sensitive: Sequence[str] | str | None = None,
    *,
    requirements: Requirements | None = None,
    ordered: Ordered = (),
    ground_distance: Mapping[str, GroundDistance] | None = None,
) -> pd.DataFrame:
    """One row per record, indexed like the input: its class, risk and broken requirements.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, -1]}, index=["a.jpg", "b.jpg", "c.jpg"])
    >>> record_view(df, ["Male"], requirements=Requirements(k=2))["breaks_k"].to_dict()
    {'a.jpg': False, 'b.jpg': False, 'c.jpg': True}
    """
    ct = as_contingency(data, qi, sensitive, ordered=without_matrices(ordered, ground_distance))
    classes = class_view(ct, sensitive=sensitive, requirements=requirements,
                         ground_distance=ground_distance)
    record_class = ct.record_class
    out = pd.DataFrame({"class": record_class}, index=ct.frame.index)
    out["size"] = ct.class_sizes[record_class]
    out["risk"] = 1.0 / out["size"].to_numpy()
    for column in classes.columns:
        if column.startswith("breaks_"):
            out[column] = classes[column].to_numpy()[record_class]
    if any(col.startswith("breaks_") for col in out.columns):
        out["breaks_any"] = np.logical_or.reduce(
            [out[c].to_numpy() for c in out.columns if c.startswith("breaks_")])
    return out
