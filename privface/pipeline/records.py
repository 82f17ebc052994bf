"""What a photo run records: a certificate per photo and the run's report.

:func:`~.run.anonymize_photos` decides; this module writes it down. A certificate
(``OUT/certificates/NAME.json``, :data:`CERTIFICATE_SCHEMA`) says, for every face of one photo,
which target PPAS chose and what it reached in the reference, what the generator did, what a
model reads off the released face, how close SFace still finds it to its source and, with stage
IV, which perturbation was added. The run's report (``OUT/run.json``, :data:`REPORT_SCHEMA`)
sums them up. docs/photo-pipeline.md lists every key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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


def photo_certificate(name: str, rows: pd.DataFrame, plan: Plan, generator,
                      generator_params: dict, qis: Sequence[str], extra: pd.DataFrame | None,
                      seed: int | None, observed: dict[int, dict], leaked: dict[int, dict],
                      before: dict[int, dict], perturbation: dict | None,
                      sha256: str | None = None) -> dict:
    """The certificate of one written photo (``rows``: its faces in the plan; ``sha256``: of
    the photo's file, so that anyone can check that the certificate describes it)."""
    faces = []
    for position, row in rows.iterrows():  # the faces of one photo: a handful
        ppas = plan.info["certificates"][position] if plan.info["certificates"] else None
        ppas = ppas if ppas is not None and ppas.get("reached") is not None else None
        face = {"face": int(row["face"]),
                "box": [int(row["x"]), int(row["y"]), int(row["width"]), int(row["height"])],
                "target": {q: json_value(row[f"target:{q}"]) for q in qis}}
        if ppas is not None:
            face.update({key: ppas.get(key) for key in ("requirements", "reached", "epsilon",
                                                        "dp", "guarantee", "changed",
                                                        "generalised")})
            face["target"] = {q: value for q, value in face["target"].items()
                              if q not in (ppas.get("generalised") or ())}
        if position in observed:
            face["output_attributes"] = observed[position]
        if position in before:
            face["output_attributes_before_perturbation"] = before[position]
        if position in leaked:
            face["leakage"] = leaked[position]
        if extra is not None and position in extra.index:
            face[generator.name] = {key: json_value(value)
                                    for key, value in extra.loc[position].items()}
        faces.append(face)
    certificate = {"schema": CERTIFICATE_SCHEMA, "file": name,
                   **({} if sha256 is None else {"sha256": sha256}),
                   "generator": {"name": generator.name, "params": generator_params}}
    if perturbation is not None:
        certificate["perturbation"] = perturbation
    return {**certificate,
            "persons": plan.info["persons"]["case"], "seeded": seed is not None,
            "faces": faces,
            "note": "for the data holder: 'changed' and 'target' tell which attributes of the "
                    "original were changed; do not publish certificates with the photos"}


def run_summary(plan: Plan, gen, generator_params: dict, settings: dict, written: list[str],
                done: list[str], skipped: pd.DataFrame, extras: list[pd.DataFrame],
                resumed: bool, seconds: float, n_photos: int) -> dict:
    """``run.json`` before the verification's additions (``outputs``, ``leakage``)."""
    faces = plan.faces
    released = faces[faces["file"].isin(set(written) | set(done))]
    reached: dict = {}
    certificates = plan.info.get("certificates") or []
    if any(c is not None for c in certificates) and len(released):
        chosen = [certificates[i]["reached"] for i in released.index]

        def worst(key, pick):
            values = [c[key] for c in chosen if c.get(key) is not None]
            values = [float("inf") if v == "inf" else v for v in values]
            return json_value(pick(values)) if values else None

        reached = {"k": worst("k", min), "l": worst("l", min), "t": worst("t", max)}
    summary = {
        "schema": REPORT_SCHEMA,
        "photos": {"input": n_photos, "written": len(written), "already_done": len(done),
                   "skipped": len(skipped)},
        "faces": int(len(faces)),
        "generator": {"name": gen.name, "params": generator_params},
        "requirements": {key: settings[key] for key in ("k", "l", "t", "epsilon")
                         if settings[key] is not None},
        "qi": settings["qi"],
        "persons": plan.info["persons"],
        "ppas": plan.info.get("ppas"),
        "reached": reached,
        "seeded": settings["seed"] is not None,
        "resumed": resumed,
        "seconds": round(seconds, 3),
        "photos_per_second": round(len(written) / seconds, 3) if seconds > 0 else None,
        "skipped": skipped.to_dict("records"),
    }
    if extras:
        frame = pd.concat(extras)
        frame = frame[frame.index.isin(released.index)]
        if len(frame):
            summary[gen.name] = {
                "k_min": int(frame["k"].min()), "k_mean": round(float(frame["k"].mean()), 3),
                "groups": int(frame["group"].nunique()),
                "faces_in_merged_classes": int(frame["class_merged"].sum())}
            if "own_group" in frame:
                # Faces whose average is made of other persons' faces only (their own group
                # showed another class): their identity is not in their output at all.
                summary[gen.name]["faces_given_another_group"] = int(
                    (~frame["own_group"].to_numpy(bool)).sum())
    return summary
