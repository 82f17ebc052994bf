"""HTML report of ``privface evaluate``: identity leakage per recognizer, image quality, face
detection and attribute preservation, with a before/after grid of sampled pairs.

It renders an :class:`~privface.evaluation.EvaluationReport`; the grid reads the photos from the
two folders the report names. Like the photo run's report, it shows original faces: it is for
whoever holds the originals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from privface.evaluation import far_key

from .html import Page, definitions, figure, fmt, join, note, table, tag
from .plots import distance_histograms, leakage_chart, quality_histograms, share_bars
from .thumbnails import Pair, evenly, pair_grid

if TYPE_CHECKING:
    from privface.evaluation import EvaluationReport, IdentityLeakage


def _interval(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"{fmt(interval[0], '.3f')} - {fmt(interval[1], '.3f')}"


def _leakage(page: Page, report: EvaluationReport) -> None:
    if not report.identity:
        page.section("leakage", "Identity leakage", note("No recognizer was run."))
        return

    names = list(report.identity)
    leaks: list[IdentityLeakage] = [report.identity[n] for n in names]
    by_person = any(x.top1_reid_person is not None for x in leaks)
    by = "same person" if any(x.by_identity for x in leaks) else "own photo"
    rows: list[list[Any]] = [
        [f"top-1 re-identification ({by})", *(fmt(x.top1_reid, ".3f") for x in leaks)],
        ["95% interval (Wilson, faces)", *(_interval(x.top1_reid_ci95) for x in leaks)],
        ["chance level", *(fmt(x.top1_chance, ".3f") for x in leaks)],
    ]
    if by_person:
        rows += [["top-1 per person (mean over persons)",
                  *(fmt(x.top1_reid_person, ".3f") for x in leaks)],
                 ["95% interval (normal, persons)",
                  *(_interval(x.top1_reid_person_ci95) for x in leaks)],
                 ["chance level (1 / persons)", *(fmt(x.top1_chance_person, ".3f")
                                                  for x in leaks)],
                 ["top-1 per person, own photo left out of the gallery",
                  *(fmt(x.top1_other_photos_person, ".3f") for x in leaks)]]
    for far in report.fars:
        rows.append([f"match rate at FAR {far_key(far)}",
                     *(fmt(x.match_rates.get(far), ".3f") for x in leaks)])
    for far in report.fars:
        rows.append([f"threshold at FAR {far_key(far)}",
                     *(fmt(x.thresholds.get(far)) for x in leaks)])
    rows += [["distance", *(x.metric for x in leaks)],
             ["faces embedded / gallery", *(f"{x.probes:,} / {x.gallery:,}" for x in leaks)],
             ["impostor pairs", *(x.impostor_pairs for x in leaks)]]
    chart_rates: dict[str, dict[str, tuple]] = {}
    for name, x in zip(names, leaks):
        rates: dict[str, tuple] = {"top-1 re-id": (x.top1_reid, x.top1_reid_ci95,
                                                   x.top1_chance)}
        if by_person:
            rates["top-1 per person"] = (x.top1_reid_person, x.top1_reid_person_ci95,
                                         x.top1_chance_person)
        for far in report.fars:
            rates[f"match at FAR {far_key(far)}"] = (x.match_rates.get(far), None, None)
        chart_rates[name] = rates
    content: list[Any] = [
        table(["", *names], rows, numeric=range(1, len(names) + 1), id="leakage-table"),
        figure(leakage_chart(chart_rates), "identity leakage chart",
               "How often each recognizer still links an anonymized face to its original."),
    ]
    distances = {n: report.per_pair[f"{n}_distance"].to_numpy(dtype=float)
                 for n in names if f"{n}_distance" in report.per_pair}
    if distances:
        thresholds = {n: {far_key(f): report.identity[n].thresholds.get(f) for f in report.fars}
                      for n in distances}
        content.append(figure(distance_histograms(distances, thresholds),
                              "distance histograms",
                              "Distance of each anonymized face to its own original; left of "
                              "a threshold, the face is still matched at that false-accept "
                              "rate."))
    page.section("leakage", "Identity leakage", *content)


def _quality(page: Page, report: EvaluationReport) -> None:
    q = report.quality.summary()
    facts = {"pairs scored (equal size)": q["pairs"], "PSNR (dB)": q["psnr"], "SSIM": q["ssim"],
             "MS-SSIM": q["ms_ssim"], "pairs at the PSNR cap (identical)": q["pairs_at_psnr_cap"]}
    if report.quality_skipped:
        facts["pairs of different sizes (not scored)"] = report.quality_skipped
    content: list[Any] = [definitions(facts)]
    if q["pairs"]:
        content.append(figure(quality_histograms(
            {"PSNR (dB)": report.quality.psnr, "SSIM": report.quality.ssim,
             "MS-SSIM": report.quality.ms_ssim}), "image quality histograms"))
    page.section("quality", "Image quality", *content)


def _utility(page: Page, report: EvaluationReport) -> None:
    facts = {"face detected in the anonymized photo": fmt(report.detection_rate, ".1%"),
             "faces detected / pairs": f"{report.faces_detected:,} / {report.pairs:,}",
             "faces located with": report.landmarks or "-"}
    page.section("detection", "Face detection", definitions(facts))
    att = report.attributes
    if att is None:
        page.section("attributes", "Attributes preserved", note("Not measured "
                                                                "(--no-attributes)."))
        return
    content: list[Any] = [definitions({"model": att.model, "pairs compared": att.pairs,
                                       "mean share preserved": att.preserved_mean})]
    if att.pairs:
        values = {a: float(v) for a, v in zip(att.attributes, att.per_attribute)}
        content.append(figure(share_bars(values, xlabel="pairs where it agrees",
                                               higher_is_worse=False),
                              "attributes preserved per attribute",
                              "Share of pairs where the attribute model predicts the same value "
                              "for the original and the anonymized face (least preserved at "
                              "the top)."))
    page.section("attributes", "Attributes preserved", *content)


def _pairs(report: EvaluationReport, n: int) -> list[Pair]:
    frame = report.per_pair
    if not len(frame) or n <= 0:
        return []
    rows = evenly(list(range(len(frame))), n)
    originals, anonymized = Path(report.originals), Path(report.anonymized)
    pairs = []
    for i in rows:
        row = frame.iloc[i]
        caption, leaked = [], False
        for name in report.identity:
            hit = bool(row.get(f"{name}_top1"))
            leaked |= hit
            caption.append(f"{name}: {'re-identified' if hit else 'not re-identified'} "
                           f"(d={fmt(row.get(f'{name}_distance'), '.3f')})")
        if "psnr" in row and np.isfinite(row["psnr"]):
            caption.append(f"PSNR {row['psnr']:.1f} dB, SSIM {row['ssim']:.3f}")
        if not bool(row.get("face_detected", True)):
            caption.append("no face detected in the anonymized photo")
        original, anon = str(row["original"]), str(row["anonymized"])
        before = originals / original if Path(original).name == original else None
        after = anonymized / anon if Path(anon).name == anon else None
        label = original if original == anon else f"{original} / {anon}"
        pairs.append(Pair(label, before, after, caption, alert=leaked))
    return pairs


def render_evaluation(report: EvaluationReport, *, thumbnails: int = 12) -> str:
    """An evaluation as one self-contained HTML page.

    Parameters
    ----------
    report : EvaluationReport
        What :func:`~privface.evaluation.evaluate_anonymization` returned.
    thumbnails : int
        Pairs shown before/after (spread evenly over the pairs; 0: no grid).

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> from privface.evaluation import EvaluationReport
    >>> from privface.quality import QualityScores
    >>> empty = EvaluationReport("a/", "<b>/", 0, 0, None, 0, {}, (1e-3,), QualityScores(), 0,
    ...                          None, pd.DataFrame(columns=["file", "folder", "reason"]),
    ...                          pd.DataFrame())
    >>> html = render_evaluation(empty)
    >>> "&lt;b&gt;/" in html and 'id="leakage"' in html
    True
    """
    meta = [f"originals: {report.originals}", f"anonymized: {report.anonymized}",
            f"{report.pairs:,} usable pairs"]
    page = Page("privface evaluate", meta=meta)
    top = [(n, x.top1_reid, x.top1_chance) for n, x in report.identity.items()
           if x.top1_reid is not None]
    summary = "; ".join(f"{n}: top-1 re-identification {fmt(v, '.3f')} (chance {fmt(c, '.3f')})"
                        for n, v, c in top) or "no identity leakage measured"
    page.verdict(None, summary, label="MEASURED")
    _leakage(page, report)
    _quality(page, report)
    _utility(page, report)
    pairs = _pairs(report, thumbnails)
    if pairs:
        page.section("thumbnails", f"Before and after ({len(pairs)} of {report.pairs:,} pairs)",
                     note("Original faces next to their anonymized versions: keep this report "
                          "with whoever holds the originals. Outlined in red: re-identified by "
                          "a recognizer (its nearest original is the same person or photo).",
                          "warn"), pair_grid(pairs))
    if len(report.skipped):
        rows = [[r.folder, r.file, r.reason] for r in report.skipped.head(200)
                .itertuples(index=False)]
        page.section("skipped", f"Skipped photos ({len(report.skipped):,})",
                     table(["folder", "file", "reason"], rows))
    if report.notes:
        page.section("notes", "Notes", tag("ul", join(tag("li", n) for n in report.notes),
                                           class_="compact"))
    return page.render()
