"""Stage II for photos: who is who, and which attributes each face should get (PPAS, v2).

The photo model (docs/photo-pipeline.md, "What k, l and t mean for photos"): the released faces
form a table, one row per face, whose quasi-identifiers are the controlled attributes a face shows
and whose secret is the person (the identities the user gives, or clusters of a face recognizer,
:func:`~privface.attributes.persons.group_persons`). k and l count the persons of every released
class; t bounds, per attribute, the difference between its share among the released faces and
its share in a reference population (the input photos by default, or a table the user gives).
:func:`choose_targets` reads each face's attributes with their confidence, then lets
:func:`~privface.privmetrics.ppas.release.assign_targets` choose every target for the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from privface.attributes.persons import CALIBRATED_THRESHOLDS, group_persons
from privface.base.errors import InputError
from privface.generators.grouping import groupable_classes
from privface.privmetrics.ppas.release import (Assignment, assign_targets, binary_matrix,
                                                randomised_response)

# Attributes that define the classes by default: those StarGAN's released models edit, which a
# viewer reads off a face at a glance (hair colour, sex, age). Forty attributes would make almost
# every face its own class (privface audit on CelebA: 5,840 classes in 10,000 photos).
DEFAULT_QIS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
PERSON = "person"
#: Attributes a person keeps in every photo: a face's reading is the person's pooled one (the
#: mean probability over their photos) when that is confident, so that one misread photo of a
#: woman does not make her a man.
PERSON_ATTRIBUTES = ("Male",)
#: Readings less probable than this (of the value read) are uncertain: never changed.
CONFIDENCE = 0.8
#: An assignment that changes more than this share of the controlled attributes per face, on
#: average, is a collapse (refused without ``allow_collapse``).
MAX_CHANGED_SHARE = 0.5

GUARANTEE_V2 = (
    "photo model v2: every released class (the controlled attributes the faces are meant to "
    "show) holds faces of at least k different persons (distinct l likewise); for every "
    "controlled attribute, its share among the released faces is within t of its share in the "
    "reference population (the paper's Eq. 5 per attribute). Nothing is said about what lies "
    "outside the face: hair style, clothing, background, captions")


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
class Readings:
    """The controlled attributes as read off the faces, with how sure the reading is.

    Attributes
    ----------
    values : DataFrame
        1 / -1 per face and attribute (after pooling :data:`PERSON_ATTRIBUTES` per person).
    uncertain : DataFrame of bool
        Readings under the confidence threshold: PPAS never changes them.
    summary : dict
        Counts for the report: uncertain readings per attribute, readings the person's other
        photos corrected.
    """

    values: pd.DataFrame
    uncertain: pd.DataFrame
    summary: dict


def read_attributes(faces: pd.DataFrame, qi: Sequence[str], persons: Persons,
                    probabilities: pd.DataFrame | None, *, confidence: float = CONFIDENCE
                    ) -> Readings:
    """Each face's controlled attributes, pooled per person where that makes them surer.

    Parameters
    ----------
    faces : DataFrame
        The analysis' rows (1 / -1 columns per attribute).
    qi : sequence of str
    persons : Persons
    probabilities : DataFrame, optional
        P(attribute present) per face and QI (the attribute model's calibrated reading); None:
        every reading counts as certain.
    confidence : float
        A reading is uncertain when the probability of the value read is under this.

    Examples
    --------
    A person read as a man on one photo of three, unsurely, is a woman on all three:

    >>> faces = pd.DataFrame({"Male": [-1, -1, 1]})
    >>> p = pd.DataFrame({"Male": [0.01, 0.02, 0.52]})
    >>> people = Persons(np.array(["a", "a", "a"], dtype=object), "identities", "")
    >>> out = read_attributes(faces, ["Male"], people, p)
    >>> out.values["Male"].tolist(), out.summary["corrected_by_person"]
    ([-1, -1, -1], {'Male': 1})
    """
    qi = list(qi)
    values = faces[qi].astype(np.int8).reset_index(drop=True)
    n = len(values)
    if probabilities is None:
        uncertain = pd.DataFrame(False, index=values.index, columns=qi)
        return Readings(values, uncertain, {"confidence": None, "uncertain": {q: 0 for q in qi},
                                            "corrected_by_person": {}})
    if not 0.5 <= confidence < 1:
        raise InputError(f"confidence must be in [0.5, 1), got {confidence}")
    p = probabilities[qi].to_numpy(np.float64)
    sure = np.maximum(p, 1 - p) >= confidence
    corrected = {}
    codes = pd.factorize(pd.Series(persons.labels, dtype=object))[0]
    for q in PERSON_ATTRIBUTES:
        if q not in qi or not n:
            continue
        j = qi.index(q)
        pooled = (np.bincount(codes, weights=p[:, j]) / np.bincount(codes))[codes]
        pooled_sure = np.maximum(pooled, 1 - pooled) >= confidence
        reading = np.where(pooled > 0.5, 1, -1).astype(np.int8)
        change = pooled_sure & (reading != values[q].to_numpy())
        corrected[q] = int(change.sum())
        values[q] = np.where(pooled_sure, reading, values[q].to_numpy())
        sure[:, j] = pooled_sure
    uncertain = pd.DataFrame(~sure, index=values.index, columns=qi)
    return Readings(values, uncertain, {
        "confidence": confidence,
        "uncertain": {q: int(c) for q, c in zip(qi, (~sure).sum(axis=0))},
        "faces_with_an_uncertain_reading": int((~sure).any(axis=1).sum()),
        "corrected_by_person": corrected})


@dataclass
class Targets:
    """Target attributes per face, with the PPAS certificate of each."""

    table: pd.DataFrame  # all attributes, QIs replaced by their targets (rows: faces)
    feasible: np.ndarray  # bool per face
    reasons: list[str | None]
    certificates: list[dict | None]
    summary: dict
    readings: Readings | None = None


class CollapseError(InputError):
    """The requirements are met only by a release nobody can use (one class, or most
    attributes changed), or not at all; the message says what was reached and what to relax.
    The CLI exits 1 on it (not 2: the input is fine, the requirements are not reachable)."""

    exit_code = 1


def reference_shares(reference: pd.DataFrame | None, readings: pd.DataFrame,
                     qi: Sequence[str]) -> pd.Series:
    """Share of the reference population showing each QI (default: the faces' own readings).

    Examples
    --------
    >>> reference_shares(None, pd.DataFrame({"Male": [1, -1, -1, -1]}), ["Male"]).tolist()
    [0.25]
    """
    qi = list(qi)
    if reference is None:
        return (readings[qi] > 0).mean()
    absent = [q for q in qi if q not in reference.columns]
    if absent:
        raise InputError(f"the reference table lacks the quasi-identifier(s) {absent}",
                         column=absent[0])
    shows = binary_matrix(reference[qi], "the reference table")
    return pd.Series(shows.mean(axis=0), index=qi)


def choose_targets(faces: pd.DataFrame, attributes: Sequence[str], persons: Persons, *,
                   qi: Sequence[str], editable: Sequence[str], reference: pd.DataFrame | None,
                   k: int | None, l: int | None, t: float | None, epsilon: float | None,
                   seed: int | None, probabilities: pd.DataFrame | None = None,
                   confidence: float = CONFIDENCE, allow_collapse: bool = False,
                   max_changed_share: float = MAX_CHANGED_SHARE,
                   group_k: int | None = None) -> Targets:
    """Targets for every face of the run, under the photo model v2 (keep the attributes when
    nothing is required).

    QIs that no assignment can keep under the requirements (a rare class that the generator
    cannot move anywhere) are generalised, the least shared first: the certificates then make
    no claim about them. An assignment that is a collapse (one released class, or more than
    ``max_changed_share`` of the attributes changed per face) or that does not exist raises
    :class:`CollapseError` with the best reachable numbers, unless ``allow_collapse``. With a
    group generator's ``group_k`` (k-Same, which groups faces by their target class), every
    class must also split into groups of group_k different persons, one face each.

    Examples
    --------
    >>> faces = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, -1, 1, -1]})
    >>> persons = Persons(np.array(["a", "b", "c", "d"], dtype=object), "identities", "")
    >>> out = choose_targets(faces, ["Male", "Young"], persons, qi=["Male", "Young"],
    ...                      editable=["Young"], reference=None, k=2, l=None, t=0.3,
    ...                      epsilon=None, seed=None)
    >>> out.table["Male"].tolist(), out.summary["planned"]["k"], out.summary["mean_changed"]
    ([1, 1, -1, -1], 2, 0.5)

    Each sex keeps one age (two persons per class) and the share of young faces stays 0.5.
    """
    table = faces[list(attributes)].reset_index(drop=True).copy()
    n = len(table)
    if k is None and l is None and t is None and epsilon is None:
        return Targets(table, np.ones(n, bool), [None] * n, [None] * n,
                       {"ppas": False, "note": "no requirement asked: attributes unchanged"})
    qi = list(qi)
    missing = [q for q in qi if q not in table.columns]
    if missing:
        raise InputError(f"unknown quasi-identifier(s) {missing}; the attribute model predicts "
                         f"{', '.join(attributes)}", column=missing[0])
    readings = read_attributes(table, qi, persons, probabilities, confidence=confidence)
    shares = reference_shares(reference, readings.values, qi)
    editable = [e for e in editable if e in qi]
    noisy = None
    if epsilon is not None:
        # Drawn once: every assignment tried below post-processes the same noisy vectors.
        noisy = randomised_response(readings.values, editable, epsilon, seed)
    controlled, generalised = list(qi), []
    result = first = _assign(readings, noisy, persons, controlled, editable, shares, k, l, t,
                             max_changed_share, group_k)
    while not result.feasible and controlled:
        # Generalise the QI whose removal helps with the fewest changes, the one read least
        # surely first among equals; failing that, the least surely read one (its uncertain
        # readings are locked, which is what blocks).
        tries = {q: _assign(readings, noisy, persons, [c for c in controlled if c != q],
                            editable, shares, k, l, t, max_changed_share, group_k)
                 for q in controlled}
        unsure = readings.uncertain.sum()
        ok = [q for q, r in tries.items() if r.feasible]
        if ok:
            drop = min(ok, key=lambda q: (tries[q].changed.sum(), -unsure[q]))
        else:
            drop = max(controlled, key=lambda q: (unsure[q], q not in editable))
        controlled.remove(drop)
        generalised.append(drop)
        result = tries[drop]
        if not controlled:
            break
    if not result.feasible:
        raise CollapseError(_unreachable(first, k, l, t))
    if not controlled and len(readings.values.drop_duplicates()) > 1:
        # Every QI generalised: the release is one class, which is a collapse too.
        if not allow_collapse:
            raise CollapseError(_unreachable(first, k, l, t))
        result.collapsed.append("every quasi-identifier is generalised: one class")
    if result.collapsed and not allow_collapse:
        raise CollapseError(_collapse_message(result, generalised))
    out = table.copy()
    targets = result.targets
    for q in controlled:
        out[q] = targets[q].to_numpy().astype(table[q].dtype)
    certificates = _certificates(result, readings, controlled, generalised, k, l, t,
                                 epsilon, seed, out)
    summary = {"ppas": True, "model": "v2", "qi": qi, "controlled": controlled,
               "generalised": generalised, "editable": editable, "sensitive": "person",
               "reference": "the input photos" if reference is None else "the given table",
               "reference_shares": {q: round(float(shares[q]), 6) for q in qi},
               "faces": n, "targeted": n, "skipped": 0,
               "dp": epsilon is not None, "epsilon": epsilon, "seeded": seed is not None,
               "mean_changed": round(float(result.changed.mean()), 4) if n else 0.0,
               "faces_changed": int((result.changed > 0).sum()),
               "planned": {key: result.reached.get(key) for key in
                           ("k", "l", "t", "n_classes", "shares")},
               "classes": result.reached.get("classes"),
               "readings": readings.summary, "solver": result.solver,
               "collapse": result.collapsed or None, "guarantee": GUARANTEE_V2}
    return Targets(out, np.ones(n, bool), [None] * n, certificates, summary, readings)


def _assign(readings: Readings, noisy: pd.DataFrame | None, persons: Persons,
            controlled: list[str], editable: list[str], shares: pd.Series, k, l, t,
            max_changed_share: float, group_k: int | None) -> Assignment:
    faces = (noisy if noisy is not None else readings.values)[controlled]
    uncertain = readings.uncertain[controlled]
    # A group generator groups by the attributes it realises (those it edits).
    grouped = [c for c in controlled if c in editable]
    if group_k and grouped:
        allowed = groupable_classes(readings.values[grouped], persons.labels, group_k)
        # A face whose class, as read, does not hold enough persons for the generator's
        # groups on its own will likely have to move: its uncertain readings may move too (the
        # reading is not what decides).
        realisable = readings.values[grouped].merge(
            allowed.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").to_numpy()
        uncertain = uncertain & realisable[:, None]
    return assign_targets(faces, persons.labels, editable=[e for e in editable
                                                            if e in controlled],
                          reference_shares=shares[controlled] if controlled else None,
                          k=k, l=l, t=t if controlled else None, uncertain=uncertain,
                          original=readings.values[controlled] if noisy is not None else None,
                          max_changed_share=max_changed_share, group_k=group_k,
                          group_by=grouped)


def _unreachable(result: Assignment, k, l, t) -> str:
    best = result.best or {}
    asked = ", ".join(f"{key}={value}" for key, value in (("k", k), ("l", l), ("t", t))
                      if value is not None)
    parts = []
    if best.get("k") is not None:
        parts.append(f"with t={t} at most k={best['k']} persons per class" if t is not None
                     else f"at most k={best['k']}")
    if best.get("t") is not None:
        parts.append(f"with k={max(k or 1, l or 1)} at best t={best['t']:.4g}")
    reach = "; ".join(parts) or "nothing"
    return (f"no release of these photos meets {asked} under the photo model v2 but one class "
            f"with every quasi-identifier generalised (best reachable: {reach}). Relax the "
            "requirements "
            "(a smaller --k/--l, a larger --t), add photos of more persons, or pass "
            "--allow-collapse to accept one class")


def _collapse_message(result: Assignment, generalised: list[str]) -> str:
    reached = result.reached
    why = "; ".join(result.collapsed)
    extra = f"; generalised {generalised}" if generalised else ""
    return (f"refusing to collapse the release: {why} (k={reached.get('k')}, "
            f"t={reached.get('t')}, mean attributes changed per face "
            f"{reached.get('mean_changed')}{extra}). Relax the requirements (a smaller --k/--l, "
            "a larger --t, fewer --qi) or pass --allow-collapse to release it anyway")


def _certificates(result: Assignment, readings: Readings, controlled: list[str],
                  generalised: list[str], k, l, t, epsilon, seed, out: pd.DataFrame
                  ) -> list[dict]:
    """Each face's claim: its target class, the persons that class holds, the run's t."""
    n = len(out)
    if not controlled:
        persons_in_class = np.full(n, result.reached.get("k") or 0)
    else:
        vectors = out[controlled].to_numpy()
        _, codes = np.unique(vectors, axis=0, return_inverse=True)
        codes = codes.reshape(-1)
        sizes = {tuple(entry["class"][q] for q in controlled): entry["persons"]
                 for entry in result.reached.get("classes", [])}
        per_code = np.array([sizes.get(tuple(int(v) for v in vector), 0)
                             for vector in np.unique(vectors, axis=0)])  # one per class
        persons_in_class = per_code[codes]
    original = readings.values[controlled].to_numpy()
    changed_mask = out[controlled].to_numpy() != original
    uncertain = readings.uncertain[controlled].to_numpy()
    requirements = {key: value for key, value in (("k", k), ("l", l), ("t", t))
                    if value is not None}
    run_t = result.reached.get("t")
    certificates = []
    for i in range(n):  # one small dict per face for its JSON certificate
        certificates.append({
            "model": "v2", "feasible": True, "requirements": requirements,
            "reached": {"k": int(persons_in_class[i]), "l": int(persons_in_class[i]),
                        "t": run_t},
            "epsilon": float(epsilon or 0.0), "dp": epsilon is not None,
            "seeded": seed is not None,
            "changed": [q for q, c in zip(controlled, changed_mask[i]) if c],
            "uncertain": [q for q, u in zip(controlled, uncertain[i]) if u],
            "generalised": list(generalised), "guarantee": GUARANTEE_V2})
    return certificates
