"""What a photo run records: a certificate per photo and the run's report.

:class:`~.run.PhotoRun` decides; this module's records write it down (their ``to_dict`` and
``to_json``, the one place the JSON is made). A certificate
(``OUT/certificates/NAME.json``, :data:`CERTIFICATE_SCHEMA`) says, for every face of one photo,
which target PPAS chose and what the plan reached (the photo model v2), what the generator did,
what a model reads off the released face, how close SFace still finds it to its source and, with
stage IV, which perturbation was added. The run's report (``OUT/run.json``,
:data:`REPORT_SCHEMA`) sums them up, with the release rate per predicted group and the verdict.
docs/photo-pipeline.md lists every key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base.jsonenc import json_value

from .state import Plan

REPORT_SCHEMA = "privface.anonymize-photos/1"
CERTIFICATE_SCHEMA = "privface.photo-certificate/1"
CERTIFICATES = "certificates"
REPORT = "run.json"


def read_finished(out: Path, faces: pd.DataFrame, done: Sequence[str]
                  ) -> tuple[dict[int, dict], dict[int, dict], dict[int, dict], dict[str, int]]:
    """What a previous run measured on the photos it finished, read from their certificates.

    Output attributes, leakage and attributes before the perturbation per face; the
    perturbation's largest change per photo.
    """
    observed: dict[int, dict] = {}
    leaked: dict[int, dict] = {}
    before: dict[int, dict] = {}
    levels: dict[str, int] = {}
    for name in done:
        certificate = json.loads((out / CERTIFICATES / f"{name}.json").read_text())
        if (certificate.get("perturbation") or {}).get("max_change_levels") is not None:
            levels[name] = certificate["perturbation"]["max_change_levels"]
        rows = faces.index[faces["file"] == name]
        for position, face in zip(rows, certificate.get("faces", [])):
            for key, into in (("output_attributes", observed), ("leakage", leaked),
                              ("output_attributes_before_perturbation", before)):
                if key in face:
                    into[position] = face[key]
    return observed, leaked, before, levels


def photo_perturbation(record: dict | None, levels: int | None) -> dict | None:
    """The certificate's record of stage IV's perturbation (``record``) of one photo."""
    if record is None:
        return None
    return {**record, "max_change_levels": levels}


def perturbation_summary(record: dict, released: pd.DataFrame, levels: Mapping[str, int],
                          observed: Mapping[int, dict], before: Mapping[int, dict]) -> dict:
    """run.json's record of the perturbation: what it was and what it changed."""
    names = released["file"].unique()
    changes = [levels[n] for n in names if n in levels]
    read = [i for i in released.index if i in observed and i in before]
    return {**record, "photos": int(len(names)),
            "max_change_levels": int(max(changes)) if changes else None,
            # The attribute model's reading of the controlled attributes, flipped by the
            # perturbation: how well it fools the model the certificates are checked with.
            "faces_read_differently": round(float(np.mean([observed[i] != before[i]
                                                           for i in read])), 4)
            if read else None}


def _json_text(record: dict) -> str:
    """The one JSON form of the records a photo run writes (certificates and run.json)."""
    return json.dumps(record, indent=1) + "\n"


#: The keys of PPAS's claim about a face's target that its certificate repeats.
PPAS_KEYS = ("model", "requirements", "reached", "epsilon", "dp", "guarantee", "changed",
             "uncertain", "retargeted", "generalised")


@dataclass
class FaceCertificate:
    """One face of a photo's certificate (docs/photo-pipeline.md lists the keys).

    Attributes
    ----------
    face : int
        Face index in its photo (0 is the largest).
    box : list of int
        ``[x, y, width, height]``.
    target : dict
        The controlled quasi-identifiers and the values PPAS chose.
    ppas : dict, optional
        PPAS's claim (:data:`PPAS_KEYS`); None when PPAS made none for this face.
    output_attributes, output_attributes_before_perturbation, leakage : dict, optional
        What the run measured on the written face.
    notes : dict, optional
        The generator's notes on the face (k-Same's group), written under its name.
    """

    face: int
    box: list[int]
    target: dict
    ppas: dict | None = None
    output_attributes: dict | None = None
    output_attributes_before_perturbation: dict | None = None
    leakage: dict | None = None
    notes: dict | None = None

    @classmethod
    def planned(cls, row: pd.Series, claim: dict | None, qis: Sequence[str]
                ) -> FaceCertificate:
        """What the plan says of a face: its box, target and PPAS's claim (``claim``: the
        face's PPAS certificate, or None)."""
        claim = claim if claim is not None and claim.get("reached") is not None else None
        target = {q: json_value(row[f"target:{q}"]) for q in qis}
        ppas = None
        if claim is not None:
            ppas = {key: claim.get(key) for key in PPAS_KEYS if key in claim}
            target = {q: value for q, value in target.items()
                      if q not in (claim.get("generalised") or ())}
        return cls(int(row["face"]),
                   [int(row["x"]), int(row["y"]), int(row["width"]), int(row["height"])],
                   target, ppas)

    def to_dict(self, generator: str) -> dict:
        """The JSON object of the face (``generator``: the key of its notes)."""
        record = {"face": self.face, "box": self.box, "target": self.target}
        record.update(self.ppas or {})
        for key in ("output_attributes", "output_attributes_before_perturbation", "leakage"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        if self.notes is not None:
            record[generator] = self.notes
        return record


@dataclass
class PhotoCertificate:
    """The certificate of one written photo, ``OUT/certificates/NAME.json``.

    Attributes
    ----------
    file : str
    sha256 : str or None
        Of the photo's file, so that anyone can check that the certificate describes it.
    generator : str
    generator_params : dict
    persons : str
        How the persons were found (``identities`` or ``recognizer``).
    seeded : bool
    faces : list of FaceCertificate
    perturbation : dict, optional
        Stage IV's record for this photo.

    Examples
    --------
    >>> face = FaceCertificate(0, [1, 2, 3, 4], {"Male": 1})
    >>> cert = PhotoCertificate("a.jpg", None, "blur", {}, "identities", True, [face])
    >>> list(cert.to_dict())
    ['schema', 'file', 'generator', 'persons', 'seeded', 'faces', 'note']
    """

    file: str
    sha256: str | None
    generator: str
    generator_params: dict
    persons: str
    seeded: bool
    faces: list[FaceCertificate]
    perturbation: dict | None = None

    def to_dict(self) -> dict:
        """The JSON object, keys in the documented order."""
        record: dict = {"schema": CERTIFICATE_SCHEMA, "file": self.file}
        if self.sha256 is not None:
            record["sha256"] = self.sha256
        record["generator"] = {"name": self.generator, "params": self.generator_params}
        if self.perturbation is not None:
            record["perturbation"] = self.perturbation
        return {**record, "persons": self.persons, "seeded": self.seeded,
                "faces": [face.to_dict(self.generator) for face in self.faces],
                "note": "for the data holder: 'changed' and 'target' tell which attributes of "
                        "the original were changed; do not publish certificates with the photos"}

    def to_json(self) -> str:
        """The file's text."""
        return _json_text(self.to_dict())


@dataclass
class PhotoCounts:
    """``run.json``'s ``photos``: how many came in, were written, were done before, skipped."""

    input: int
    written: int
    already_done: int
    skipped: int


@dataclass
class GroupSummary:
    """A group generator's record in ``run.json`` (under its name; k-Same's ``ksame``).

    Attributes
    ----------
    k_min, k_mean : the fewest and the mean number of different persons per released face's group
    groups : number of groups the released faces' averages come from
    faces_in_merged_classes : released faces whose class was merged into its nearest
    faces_given_another_group : released faces whose average holds none of their own pixels
        (None when the generator does not say)
    """

    k_min: int
    k_mean: float
    groups: int
    faces_in_merged_classes: int
    faces_given_another_group: int | None = None

    @classmethod
    def from_notes(cls, notes: pd.DataFrame) -> GroupSummary | None:
        """From the generator's notes on the released faces; None without groups.

        Examples
        --------
        >>> notes = pd.DataFrame({"group": [0, 0, 1], "k": [2, 2, 3],
        ...                       "class_merged": [False, True, False]})
        >>> GroupSummary.from_notes(notes)
        GroupSummary(k_min=2, k_mean=2.333, groups=2, faces_in_merged_classes=1, \
faces_given_another_group=None)
        """
        if not len(notes) or not {"k", "group", "class_merged"} <= set(notes.columns):
            return None
        # Faces whose average is made of other persons' faces only (their own group showed
        # another class): their identity is not in their output at all.
        another = int((~notes["own_group"].to_numpy(bool)).sum()) if "own_group" in notes \
            else None
        return cls(int(notes["k"].min()), round(float(notes["k"].mean()), 3),
                   int(notes["group"].nunique()), int(notes["class_merged"].sum()), another)

    def to_dict(self) -> dict:
        record = {"k_min": self.k_min, "k_mean": self.k_mean, "groups": self.groups,
                  "faces_in_merged_classes": self.faces_in_merged_classes}
        if self.faces_given_another_group is not None:
            record["faces_given_another_group"] = self.faces_given_another_group
        return record


@dataclass
class RunSummary:
    """What a photo run did: ``OUT/run.json`` (docs/photo-pipeline.md lists every key).

    ``outputs``, ``leakage`` and ``perturbation`` are the JSON records of
    :func:`~.verify.audit_outputs`, :func:`~privface.evaluation.leakage.summarise_leakage` and
    :func:`perturbation_summary`; ``ppas`` and ``persons`` those of the plan.
    """

    photos: PhotoCounts
    faces: int
    generator: str
    generator_params: dict
    requirements: dict
    qi: list[str]
    persons: dict
    ppas: dict | None
    reached: dict
    seeded: bool
    resumed: bool
    seconds: float
    photos_per_second: float | None
    skipped: list[dict]
    groups: GroupSummary | None = None
    outputs: dict | None = None
    leakage: dict | None = None
    perturbation: dict | None = None
    release: dict | None = None
    verdict: dict | None = None

    def to_dict(self) -> dict:
        """The JSON object, keys in the documented order."""
        record = {"schema": REPORT_SCHEMA, "photos": asdict(self.photos), "faces": self.faces,
                  "generator": {"name": self.generator, "params": self.generator_params},
                  "requirements": self.requirements, "qi": self.qi, "persons": self.persons,
                  "ppas": self.ppas, "reached": self.reached, "seeded": self.seeded,
                  "resumed": self.resumed, "seconds": self.seconds,
                  "photos_per_second": self.photos_per_second, "skipped": self.skipped}
        if self.groups is not None:
            record[self.generator] = self.groups.to_dict()
        for key in ("outputs", "leakage", "perturbation", "release", "verdict"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record

    def to_json(self) -> str:
        """The file's text."""
        return _json_text(self.to_dict())


def worst_reached(plan: Plan, released: pd.DataFrame) -> dict:
    """The worst k, l and t PPAS's targets reach over the released faces ({} without PPAS)."""
    certificates = plan.info.get("certificates") or []
    if not any(c is not None for c in certificates) or not len(released):
        return {}
    chosen = [certificates[i]["reached"] for i in released.index]

    def worst(key, pick):
        values = [c[key] for c in chosen if c.get(key) is not None]
        values = [float("inf") if v == "inf" else v for v in values]
        return json_value(pick(values)) if values else None

    return {"k": worst("k", min), "l": worst("l", min), "t": worst("t", max)}


#: Release rates of two groups differing by more than this (percentage points) are unfair: a
#: requirement met only by withholding one group's photos is not met.
MAX_RELEASE_GAP = 5.0
#: The groups whose release rates are compared (the attributes read off each photo's largest
#: face).
RELEASE_GROUPS = ("Male", "Young")


def release_rates(faces: pd.DataFrame, released: set[str]) -> dict:
    """The share of photos with a face that were released, overall and per predicted group.

    Examples
    --------
    >>> faces = pd.DataFrame({"file": ["a", "b", "c", "d"], "face": [0, 0, 0, 0],
    ...                       "Male": [1, 1, -1, -1], "Young": [1, 1, 1, 1]})
    >>> out = release_rates(faces, {"a", "b", "c"})
    >>> out["rate"], out["by_group"]["Male"], out["max_gap_points"], out["balanced"]
    (0.75, {'-1': 0.5, '1': 1.0}, 50.0, False)
    """
    largest = faces[faces["face"] == 0]
    if not len(largest):
        return {"photos_with_a_face": 0, "released": 0, "rate": None, "by_group": {},
                "max_gap_points": None, "balanced": None}
    out = largest["file"].isin(released)
    by_group, gaps = {}, []
    for column in RELEASE_GROUPS:
        if column not in largest.columns:
            continue
        rates = out.groupby(largest[column].astype(int).astype(str)).mean()
        by_group[column] = {key: round(float(value), 4) for key, value in rates.items()}
        if len(rates) > 1:
            gaps.append(100.0 * float(rates.max() - rates.min()))
    gap = round(max(gaps), 2) if gaps else 0.0
    return {"photos_with_a_face": int(len(largest)), "released": int(out.sum()),
            "rate": round(float(out.mean()), 4), "by_group": by_group,
            "max_gap_points": gap, "balanced": bool(gap <= MAX_RELEASE_GAP)}


def verdict(outputs: dict | None, planned: dict | None, release: dict,
            requirements: dict) -> dict:
    """Whether the release meets what was asked, under the photo model v2, and why not.

    Judged on what the attribute model reads off the released faces when they were read
    (``outputs``), else on the plan; a release whose groups' release rates differ by more than
    :data:`MAX_RELEASE_GAP` points does not meet it either.

    Examples
    --------
    >>> verdict({"requirements_met": True}, None, {"balanced": False, "max_gap_points": 9.0},
    ...         {"k": 5})["met"]
    False
    """
    asked = {key: value for key, value in requirements.items()
             if key in ("k", "l", "t") and value is not None}
    why: list[str] = []
    met = None
    if asked:
        source = outputs if outputs and outputs.get("faces") else None
        if source is not None:
            met = bool(source.get("requirements_met"))
            if not met:
                why.append(f"the released faces' predicted attributes reach "
                           f"{source.get('reached')}, not {asked}")
        else:
            met = True
        if release.get("balanced") is False:
            met = False
            why.append(f"release rates of the groups differ by {release['max_gap_points']} "
                       f"points (more than {MAX_RELEASE_GAP:g})")
    return {"met": met, "definition": "photo model v2 (docs/photo-pipeline.md)",
            "judged_on": "the released faces, read by the attribute model"
            if outputs and outputs.get("faces") else "the plan", "why": why,
            "planned": planned}

