"""The evaluation report: attribute agreement, and every number in one JSON-ready object."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from privface.base.jsonenc import json_value
from privface.quality import PSNR_CAP, QualityScores

from .leakage import IdentityLeakage, far_key

#: Version of the layout :meth:`EvaluationReport.to_dict` returns.
SCHEMA = "privface.evaluate/1"


@dataclass
class AttributeAgreement:
    """How often the attribute model predicts the same attribute for both faces of a pair.

    Attributes
    ----------
    model : str
        The attribute model's name.
    attributes : tuple of str
        The attribute names (CelebA's 40 for the default model).
    per_attribute : ndarray of float
        Share of compared pairs where the attribute agrees (NaN when no pair was compared).
    pairs : int
        Pairs compared (those with an anonymized face to predict from).
    """

    model: str
    attributes: tuple[str, ...]
    per_attribute: np.ndarray
    pairs: int

    @property
    def preserved_mean(self) -> float | None:
        """Mean agreement over the attributes."""
        return float(np.mean(self.per_attribute)) if self.pairs else None

    def to_dict(self) -> dict:
        """JSON-ready: ``model``, ``pairs``, ``preserved_mean``, ``per_attribute`` (name: rate)."""
        return {"model": self.model, "pairs": self.pairs,
                "preserved_mean": json_value(self.preserved_mean),
                "per_attribute": {name: json_value(v)
                                  for name, v in zip(self.attributes, self.per_attribute)}}


@dataclass
class EvaluationReport:
    """Everything :func:`evaluate_anonymization` measured.

    Attributes
    ----------
    originals, anonymized : str
        The two folders.
    pairs : int
        Usable pairs: both photos readable and a face found in the original.
    faces_detected : int
        Usable pairs with a face detected in the anonymized photo.
    landmarks : str or None
        Whose detection and landmarks cropped the anonymized faces: ``original`` (every pair had
        the same size), ``anonymized`` (none did), ``mixed``, or None without pairs.
    pairs_own_detection : int
        Pairs that used the anonymized photo's own detection (their sizes differ).
    identity : dict
        Recognizer name -> :class:`IdentityLeakage`.
    fars : tuple of float
    quality : QualityScores
        Per-pair scores of the pairs of equal size.
    quality_skipped : int
        Pairs left out of the quality scores because the photos differ in size.
    attributes : AttributeAgreement or None
        None when attributes were not evaluated.
    skipped : DataFrame
        ``file``, ``folder``, ``reason`` of every photo left out.
    per_pair : DataFrame
        One row per usable pair: file names, identity, detection, quality, per-recognizer
        distance and top-1 hit, share of attributes preserved.
    notes : list of str
        Caveats worth reading with the numbers.
    """

    originals: str
    anonymized: str
    pairs: int
    faces_detected: int
    landmarks: str | None
    pairs_own_detection: int
    identity: dict[str, IdentityLeakage]
    fars: tuple[float, ...]
    quality: QualityScores
    quality_skipped: int
    attributes: AttributeAgreement | None
    skipped: pd.DataFrame
    per_pair: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def detection_rate(self) -> float | None:
        """Share of usable pairs with a face detected in the anonymized photo."""
        return self.faces_detected / self.pairs if self.pairs else None

    def to_dict(self, *, per_pair: bool = False) -> dict:
        """The report as a JSON-ready dict (schema ``privface.evaluate/1``).

        ``identity.<recognizer>`` holds ``top1_reid``, ``match_rate_far_<far>`` and the rest of
        :meth:`IdentityLeakage.to_dict`; ``quality`` the mean ``psnr``, ``ssim``, ``ms_ssim``;
        ``attributes`` ``preserved_mean`` and ``per_attribute`` (None when not evaluated).
        ``per_pair=True`` adds one record per pair.

        Keys added since the schema was first published, without a version bump (a reader of
        ``privface.evaluate/1`` may ignore keys it does not know): in ``identity.<recognizer>``,
        ``top1_reid_ci95`` (Wilson's 95% interval of the face-level ``top1_reid``, as
        ``[low, high]``), ``top1_reid_person`` (with identities: the mean over persons of each
        person's top-1 rate), ``top1_reid_person_ci95`` (normal approximation over persons),
        ``persons`` and ``top1_chance_person`` (``1 / persons``), ``top1_other_photos_person``
        and its ``_ci95`` (the attacker who holds the person's other photos, not the one
        released); all None without identities except ``top1_reid_ci95``. See
        :mod:`privface.evaluation.leakage`.
        """
        quality = self.quality.summary()
        quality["skipped_size_mismatch"] = self.quality_skipped
        out = {
            "schema": SCHEMA,
            "originals": self.originals,
            "anonymized": self.anonymized,
            "pairs": self.pairs,
            "landmarks": self.landmarks,
            "pairs_own_detection": self.pairs_own_detection,
            "detection_rate": json_value(self.detection_rate),
            "faces_detected": self.faces_detected,
            "fars": [float(f) for f in self.fars],
            "identity": {name: leak.to_dict() for name, leak in self.identity.items()},
            "quality": quality,
            "attributes": self.attributes.to_dict() if self.attributes is not None else None,
            "skipped": [{k: json_value(v) for k, v in row.items()}
                        for row in self.skipped.to_dict(orient="records")],
            "notes": list(self.notes),
        }
        if per_pair:
            out["per_pair"] = [{k: json_value(v) for k, v in row.items()}
                               for row in self.per_pair.to_dict(orient="records")]
        return out

    def to_json(self, *, indent: int | None = 2, per_pair: bool = False) -> str:
        """:meth:`to_dict` as JSON text (no NaN or infinity: those become null)."""
        return json.dumps(self.to_dict(per_pair=per_pair), indent=indent, allow_nan=False)

    def to_text(self, *, max_skipped: int = 10) -> str:
        """A plain-text summary for terminals (stable layout, no colours)."""
        return _report_to_text(self, max_skipped=max_skipped)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _interval(interval: tuple[float, float] | None) -> str:
    """``0.120-0.340``, or ``-`` when there is none."""
    return "-" if interval is None else f"{_fmt(interval[0])}-{_fmt(interval[1])}"


def _report_to_text(report: EvaluationReport, *, max_skipped: int) -> str:
    lines = [f"privface evaluate: {report.pairs:,} usable pairs",
             f"originals:  {report.originals}", f"anonymized: {report.anonymized}"]
    if report.landmarks == "original":
        lines.append("faces located with the original's detection and landmarks (same-size "
                     "pairs: the attacker knows where the face is)")
    elif report.landmarks is not None:
        lines.append(f"faces located with the original's landmarks in "
                     f"{report.pairs - report.pairs_own_detection:,} pairs, with the anonymized "
                     f"photo's own detection in {report.pairs_own_detection:,} (sizes differ)")
    if report.pairs:
        lines.append(f"face detected in anonymized photos: {_fmt(report.detection_rate, '.1%')} "
                     f"({report.faces_detected:,} of {report.pairs:,})")
    if report.identity:
        names = list(report.identity)
        width = 40
        lines += ["", f"{'Identity leakage':<{width}}" + "".join(f"{n[:12]:>13}" for n in names)]

        def row(label: str, values: list[str]) -> None:
            lines.append(f"  {label:<{width - 2}}" + "".join(f"{v:>13}" for v in values))

        leaks = [report.identity[n] for n in names]
        by = "same person" if any(leak.by_identity for leak in leaks) else "own photo"
        row(f"top-1 re-identification ({by})", [_fmt(x.top1_reid) for x in leaks])
        row("  95% interval (Wilson, faces)", [_interval(x.top1_reid_ci95) for x in leaks])
        row("  chance level", [_fmt(x.top1_chance) for x in leaks])
        if any(x.top1_reid_person is not None for x in leaks):
            persons = max(x.persons or 0 for x in leaks)
            row(f"top-1 per person (mean of {persons:,})",
                [_fmt(x.top1_reid_person) for x in leaks])
            row("  95% interval (normal, persons)",
                [_interval(x.top1_reid_person_ci95) for x in leaks])
            row("  chance level (1 / persons)", [_fmt(x.top1_chance_person) for x in leaks])
            row("top-1 per person, own photo left out",
                [_fmt(x.top1_other_photos_person) for x in leaks])
        for far in report.fars:
            row(f"match rate at FAR {far_key(far)}", [_fmt(x.match_rates.get(far)) for x in leaks])
        for far in report.fars:
            row(f"  threshold at FAR {far_key(far)}",
                [_fmt(x.thresholds.get(far), ".4g") for x in leaks])
        row("metric", [x.metric for x in leaks])
        row("impostor pairs", [f"{x.impostor_pairs:,}" for x in leaks])
    q = report.quality.summary()
    lines += ["", f"Image quality ({q['pairs']:,} pairs of equal size"
              + (f"; {report.quality_skipped:,} of different sizes left out" if
                 report.quality_skipped else "") + ")"]
    scales = ", ".join(f"{c:,} at {s}" for s, c in q["ms_ssim_scales"].items() if s != "0")
    lines += [f"  PSNR     {_fmt(q['psnr'], '.3f')} dB  (identical photos count "
              f"{PSNR_CAP:g} dB; {q['pairs_at_psnr_cap']:,} pairs at the cap)",
              f"  SSIM     {_fmt(q['ssim'], '.4f')}",
              f"  MS-SSIM  {_fmt(q['ms_ssim'], '.4f')}" + (f"  (scales: {scales})" if scales
                                                            else "")]
    att = report.attributes
    if att is not None:
        lines += ["", f"Attributes preserved ({att.pairs:,} pairs, model {att.model})",
                  f"  mean over {len(att.attributes)} attributes: {_fmt(att.preserved_mean)}"]
        if att.pairs:
            order = np.argsort(att.per_attribute, kind="stable")[:5]
            lines.append("  least preserved: " + ", ".join(
                f"{att.attributes[i]} {att.per_attribute[i]:.3f}" for i in order))
    if len(report.skipped):
        lines += ["", f"Skipped ({len(report.skipped):,} photos)"]
        for row_ in report.skipped.head(max_skipped).itertuples(index=False):
            lines.append(f"  {row_.folder}/{row_.file}: {row_.reason}")
        if len(report.skipped) > max_skipped:
            lines.append(f"  ... and {len(report.skipped) - max_skipped:,} more (see the JSON "
                         "report)")
    if report.notes:
        lines += ["", "Notes"] + [f"  - {note}" for note in report.notes]
    return "\n".join(lines)
