"""Checking a run's promise on what it released: the attributes an attacker reads off the outputs.

PPAS certifies each face's *target* class in the reference. An attacker, though, sees the output
photo: what counts is the attributes a model predicts from it. A generator that does not realise
its targets (k-Same's averages are a blend of several faces) can release faces whose predicted
attributes form other classes, with other k, l and t. This module predicts the controlled
attributes of every released face (aligned from the written photo, as an attacker would) and
audits them with the persons as the sensitive attribute.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from privface.attributes.alignment import CELEBA, align_face
from privface.privmetrics import audit


def predict_outputs(photo: np.ndarray, landmarks: np.ndarray, model) -> np.ndarray:
    """The attribute model's 1 / -1 predictions for the faces of a written photo.

    ``landmarks`` are the original faces' 68 points: the pasted face sits where the original was.

    Examples
    --------
    >>> class Model:
    ...     attributes = ("Smiling",)
    ...     def predict(self, crops, batch_size=64):
    ...         return np.ones((len(crops), 1), np.int8)
    >>> points = np.zeros((1, 68, 2)); points[0, 36:42] = (30, 40); points[0, 42:48] = (60, 40)
    >>> predict_outputs(np.zeros((100, 90, 3), np.uint8), points, Model()).tolist()
    [[1]]
    """

    crops = [align_face(photo, points, CELEBA).image for points in landmarks]
    if not crops:
        return np.zeros((0, len(model.attributes)), np.int8)
    return np.asarray(model.predict(crops), np.int8)


def audit_outputs(observed: pd.DataFrame, targets: pd.DataFrame, persons: Sequence,
                  controlled: Sequence[str], *, k=None, l=None, t=None) -> dict:
    """Audit the released faces' predicted attributes over the controlled QIs.

    Parameters
    ----------
    observed, targets : DataFrame
        One row per released face: the attributes predicted from the output, and PPAS's targets.
    persons : sequence
        Person label of each face (the sensitive attribute).
    controlled : sequence of str
        The QIs the certificates make claims about.
    k, l, t : optional
        The requirements asked.

    Returns
    -------
    dict
        ``realised`` (share of faces whose predicted controlled attributes equal their target),
        ``reached`` (k, l, t of the outputs' classes), ``requirements_met`` (None without
        requirements).

    Examples
    --------
    >>> observed = pd.DataFrame({"Young": [1, 1, 1, -1]})
    >>> out = audit_outputs(observed, observed, ["a", "b", "c", "d"], ["Young"], k=2)
    >>> out["realised"], out["reached"]["k"], out["requirements_met"]
    (1.0, 1, False)
    """

    controlled = list(controlled)
    n = len(observed)
    if n == 0:
        return {"faces": 0, "realised": None, "reached": {}, "requirements_met": None}
    same = (observed[controlled].to_numpy() == targets[controlled].to_numpy()).all(axis=1) \
        if controlled else np.ones(n, bool)
    table = observed[controlled].reset_index(drop=True).assign(
        _person=np.asarray(persons, dtype=object), _all=0)
    report = audit(table, qi=controlled or ["_all"], sensitive="_person", k=k, l=l, t=t)
    metrics = report.metrics
    asked = any(v is not None for v in (k, l, t))
    return {"faces": n, "qi": controlled, "realised": float(same.mean()),
            "reached": {"k": int(metrics["k_anonymity"]),
                        "l": int(metrics["l_diversity"]),
                        "t": float(metrics["t_closeness"])},
            "requirements_met": bool(report.passed) if asked else None}
