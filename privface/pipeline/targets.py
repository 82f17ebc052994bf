"""Stage II for photos: who is who, and which attributes each face should get (PPAS).

The privacy requirements are checked against a reference population R: by default the input
photos themselves (their predicted attributes), or a table the user gives (CelebA's labels, say).
The sensitive attribute is the person: the identities the user gives, or clusters of a face
recognizer when none are given (:func:`~privface.attributes.persons.group_persons`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from privface.attributes.persons import CALIBRATED_THRESHOLDS, group_persons
from privface.base.errors import InputError
from privface.privmetrics.audit import audit
from privface.privmetrics.ppas import select_attributes

# Attributes that define the classes by default: those StarGAN's released models edit, which a
# viewer reads off a face at a glance (hair colour, sex, age). Forty attributes would make almost
# every face its own class (privface audit on CelebA: 5,840 classes in 10,000 photos).
DEFAULT_QIS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
PERSON = "person"


@dataclass
class Persons:
    """Person label per face and how they were found.

    Attributes
    ----------
    labels : ndarray
        One label per face (strings of identities, or ``"cluster-N"``).
    case : str
        ``"identities"`` (given by the user) or ``"recognizer"`` (clusters of SFace embeddings).
    detail : str
        A sentence for the report.
    """

    labels: np.ndarray
    case: str
    detail: str


def find_persons(faces: pd.DataFrame, embeddings: np.ndarray | None) -> Persons:
    """Persons from the ``identity`` column when there is one, else from the embeddings.

    Faces of a photo other than its largest have no identity label (an identity file names one
    person per photo); each counts as a person of its own.

    Examples
    --------
    >>> faces = pd.DataFrame({"file": ["a.jpg", "a.jpg", "b.jpg"], "face": [0, 1, 0],
    ...                       "identity": [7, 7, 9]})
    >>> find_persons(faces, None).labels.tolist()
    ['7', 'a.jpg#1', '9']
    """
    if "identity" in faces.columns:
        labels = faces["identity"].astype(str).to_numpy(dtype=object)
        others = (faces["face"] != 0).to_numpy()
        labels[others] = (faces["file"] + "#" + faces["face"].astype(str)).to_numpy()[others]
        return Persons(labels, "identities",
                       "persons from the identity file: every group holds k different people")

    if embeddings is None:
        raise ValueError("persons need identities or SFace embeddings")
    clusters = group_persons(embeddings, recognizer="sface", far=1e-2)
    threshold = CALIBRATED_THRESHOLDS["sface"][1e-2]
    labels = np.array([f"cluster-{c}" for c in clusters], dtype=object)
    return Persons(labels, "recognizer",
                   f"no identities given: persons are average-linkage clusters of SFace "
                   f"embeddings cut at cosine distance {threshold} (FAR 1e-2); "
                   f"{len(np.unique(clusters)):,} persons found. The 1/k guarantee holds for "
                   "these clusters; a person whose photos the recognizer splits is protected "
                   "only as far as the recognizer cannot link them")


@dataclass
class Targets:
    """Target attributes per face, with the PPAS certificate of each."""

    table: pd.DataFrame  # all attributes, QIs replaced by their targets (rows: faces)
    feasible: np.ndarray  # bool per face
    reasons: list[str | None]
    certificates: list[dict | None]
    summary: dict


def choose_targets(faces: pd.DataFrame, attributes: Sequence[str], persons: Persons, *,
                   qi: Sequence[str], editable: Sequence[str], reference: pd.DataFrame | None,
                   k: int | None, l: int | None, t: float | None, epsilon: float | None,
                   seed: int | None) -> Targets:
    """Run PPAS for every face (or keep the face's attributes when nothing is required).

    Examples
    --------
    >>> faces = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, -1, 1, -1]})
    >>> persons = Persons(np.array(["a", "b", "c", "d"], dtype=object), "identities", "")
    >>> out = choose_targets(faces, ["Male", "Young"], persons, qi=["Male", "Young"],
    ...                      editable=["Young"], reference=None, k=2, l=None, t=None,
    ...                      epsilon=None, seed=None)
    >>> out.feasible.tolist(), out.table["Male"].tolist()
    ([True, True, True, True], [1, 1, -1, -1])
    """
    table = faces[list(attributes)].reset_index(drop=True).copy()
    n = len(table)
    if k is None and l is None and t is None and epsilon is None:
        return Targets(table, np.ones(n, bool), [None] * n, [None] * n,
                       {"ppas": False, "note": "no requirement asked: attributes unchanged"})

    missing = [q for q in qi if q not in table.columns]
    if missing:
        raise InputError(f"unknown quasi-identifier(s) {missing}; the attribute model predicts "
                         f"{', '.join(attributes)}", column=missing[0])
    if reference is None:
        reference = table[list(qi)].assign(**{PERSON: persons.labels})
        sensitive = PERSON
    else:
        sensitive = "identity" if "identity" in reference.columns else None
        if sensitive is None:
            raise InputError("the reference table needs an identity column (give its identity "
                             "file) to measure l-diversity and t-closeness over persons")
        absent = [q for q in qi if q not in reference.columns]
        if absent:
            raise InputError(f"the reference table lacks the quasi-identifier(s) {absent}",
                             column=absent[0])
    controlled, generalised = _controlled_qis(reference, table, list(qi), list(editable),
                                              sensitive, k=k, l=l, t=t)
    out = table.copy()
    if not controlled:
        return _all_generalised(out, reference, sensitive, list(qi), k=k, l=l, t=t)
    result = select_attributes(reference, table[controlled], qi=controlled,
                               editable=[e for e in editable if e in controlled],
                               sensitive=sensitive, k=k, l=l, t=t, epsilon=epsilon, seed=seed,
                               on_infeasible="skip")
    feasible = result.targets.notna().all(axis=1).to_numpy()
    chosen = result.targets.loc[feasible, controlled].astype(table[controlled].dtypes.iloc[0])
    out.loc[feasible, controlled] = chosen.to_numpy()
    certificates = [{**c.to_dict(), "generalised": generalised} for c in result.certificates]
    reasons = [None if ok else (c.get("reason") or "no feasible target")
               for ok, c in zip(feasible, certificates)]
    summary = {"ppas": True, "qi": list(qi), "controlled": controlled,
               "generalised": generalised, "editable": list(editable),
               "sensitive": "person" if sensitive == PERSON else sensitive,
               "reference": "the input photos" if sensitive == PERSON else "the given table",
               **{key: value for key, value in result.summary.items()
                  if isinstance(value, (int, float, str, bool, type(None)))
                  and key not in ("qi", "editable")}}
    return Targets(out, feasible, reasons, certificates, summary)


def _controlled_qis(reference: pd.DataFrame, faces: pd.DataFrame, qi: list[str],
                    editable: list[str], sensitive: str, *, k, l, t
                    ) -> tuple[list[str], list[str]]:
    """Generalise QIs, most helpful first, until every face has a feasible target.

    Whether a face is feasible depends only on its non-editable QIs, never on PPAS's noise, so
    the search runs without noise and spends no privacy budget. A generalised QI is not
    controlled: no target is chosen for it and its certificate makes no claim about it, as a
    "*" in a generalised table.
    """

    def n_feasible(columns: list[str]) -> int:
        if not columns:
            return len(faces)
        result = select_attributes(reference, faces[columns], qi=columns,
                                   editable=[e for e in editable if e in columns],
                                   sensitive=sensitive, k=k, l=l, t=t, epsilon=None, seed=0,
                                   on_infeasible="skip")
        return int(result.targets.notna().all(axis=1).sum())

    controlled = list(qi)
    best = n_feasible(controlled)
    while controlled and best < len(faces):
        # One PPAS call per candidate QI (at most |QI| per step); each takes milliseconds.
        scores = [n_feasible([q for q in controlled if q != drop]) for drop in controlled]
        drop = controlled[int(np.argmax(scores))]
        controlled.remove(drop)
        best = max(scores)
    return controlled, [q for q in qi if q not in controlled]


def _all_generalised(out: pd.DataFrame, reference: pd.DataFrame, sensitive: str,
                     qi: list[str], *, k, l, t) -> Targets:
    """Every QI generalised: the whole reference is the one class."""

    report = audit(reference[[sensitive]].assign(_all=0), qi=["_all"], sensitive=sensitive,
                   k=k, l=l, t=t)
    reached = {"k": report.metrics.get("k_anonymity"), "l": report.metrics.get("l_diversity"),
               "t": report.metrics.get("t_closeness")}
    ok = bool(report.passed)
    reason = None if ok else f"even the whole reference misses the requirements ({reached})"
    requirements = {key: value for key, value in (("k", k), ("l", l), ("t", t))
                    if value is not None}
    certificate = {"feasible": ok, "requirements": requirements, "reached": reached,
                   "epsilon": 0.0, "dp": False, "changed": [], "seeded": False,
                   "generalised": list(qi),
                   "guarantee": "every quasi-identifier is generalised: the face's attributes "
                                "are not controlled and the released photos form one class"}
    n = len(out)
    summary = {"ppas": True, "qi": list(qi), "controlled": [], "generalised": list(qi),
               "sensitive": "person" if sensitive == PERSON else sensitive, "faces": n,
               "targeted": n if ok else 0, "skipped": 0 if ok else n, "dp": False}
    return Targets(out, np.full(n, ok), [reason] * n, [certificate] * n, summary)
