"""Checking a run's promise on what it released: the attributes an attacker reads off the outputs.

PPAS chooses each face's *target* class. An attacker, though, sees the output photo: what counts
is the attributes a model predicts from it. A generator that does not realise its targets (k-Same's
averages are a blend of several faces) can release faces whose predicted attributes form other
classes, with other k, l and t. This module predicts the controlled attributes of every released
face (aligned from the written photo, as an attacker would) and audits that released table under
the photo model v2 (docs/photo-pipeline.md): persons per class, each attribute's share against the
reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from privface.attributes.alignment import CELEBA, align_face
from privface.privmetrics import audit
from privface.privmetrics.compare import at_least, at_most


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
                  controlled: Sequence[str], *, k=None, l=None, t=None,
                  reference_shares: Mapping[str, float] | None = None) -> dict:
    """Audit the released faces' predicted attributes over the controlled QIs (model v2).

    The released table has one row per face: the attributes a model reads off it, and the
    person. k and l are the fewest distinct persons in a class; t is the largest difference,
    over the controlled attributes, between an attribute's share among the released faces and
    its share in the reference (docs/photo-pipeline.md). The first version's t (EMD of the
    persons' distribution within a class against all faces) is reported as ``identity_t``, for
    information.

    Parameters
    ----------
    observed, targets : DataFrame
        One row per released face: the attributes predicted from the output, and PPAS's targets.
    persons : sequence
        Person label of each face.
    controlled : sequence of str
        The QIs the certificates make claims about.
    k, l, t : optional
        The requirements asked.
    reference_shares : mapping, optional
        Share of the reference showing each controlled attribute (needed for t).

    Returns
    -------
    dict
        ``realised`` (share of faces whose predicted controlled attributes equal their target),
        ``reached`` (k, l, t under model v2), ``shares``, ``identity_t``, ``definition`` and
        ``requirements_met`` (None without requirements).

    Examples
    --------
    >>> observed = pd.DataFrame({"Young": [1, 1, 1, -1]})
    >>> out = audit_outputs(observed, observed, ["a", "b", "c", "d"], ["Young"], k=2, t=0.1,
    ...                     reference_shares={"Young": 0.7})
    >>> out["realised"], out["reached"], out["requirements_met"]
    (1.0, {'k': 1, 'l': 1, 't': 0.05}, False)
    """

    controlled = list(controlled)
    n = len(observed)
    if n == 0:
        return {"faces": 0, "realised": None, "reached": {}, "requirements_met": None}
    same = (observed[controlled].to_numpy() == targets[controlled].to_numpy()).all(axis=1) \
        if controlled else np.ones(n, bool)
    people = np.asarray(persons, dtype=object)
    if controlled:
        classes = observed[controlled].reset_index(drop=True)
        codes = classes.groupby(controlled, sort=False).ngroup().to_numpy()
    else:
        codes = np.zeros(n, np.int64)
    person_codes = pd.factorize(pd.Series(people))[0]
    distinct = pd.DataFrame({"c": codes, "p": person_codes}).drop_duplicates()["c"]
    k_reached = int(distinct.value_counts().min())
    shares = {q: round(float((observed[q].to_numpy() > 0).mean()), 6) for q in controlled}
    t_reached = None
    if reference_shares is not None and controlled:
        t_reached = round(max(abs(shares[q] - float(reference_shares[q]))
                              for q in controlled), 6)
    table = observed[controlled].reset_index(drop=True).assign(_person=people, _all=0)
    identity_t = float(audit(table, qi=controlled or ["_all"], sensitive="_person"
                             ).metrics["t_closeness"])
    met = None
    if any(v is not None for v in (k, l, t)):
        met = bool((k is None or at_least(k_reached, k)) and (l is None or at_least(k_reached, l))
                   and (t is None or (t_reached is not None and at_most(t_reached, t))))
    return {"faces": n, "qi": controlled, "realised": float(same.mean()),
            "definition": "v2: k and l are the fewest persons in a class of the released "
                          "faces' predicted attributes; t is the largest |share among the "
                          "released faces - reference share| over the controlled attributes",
            "reached": {"k": k_reached, "l": k_reached, "t": t_reached},
            "shares": shares,
            "reference_shares": None if reference_shares is None else
            {q: float(reference_shares[q]) for q in controlled},
            "identity_t": round(identity_t, 6),
            "requirements_met": met}
