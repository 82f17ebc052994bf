"""Running an evaluation: photos in, :class:`~privface.evaluation.report.EvaluationReport` out."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.privmetrics.readers import read_celeba_identities
from privface.quality import QualityScores

from .chunks import (Chunk, chunk_size, default_attribute_model, evaluate_chunk, Parts,
                     portable, recognizer_objects, run_in_workers)
from .leakage import DEFAULT_RECOGNIZERS, IdentityLeakage, far_key, identity_leakage
from .pairing import pair_photos
from .report import AttributeAgreement, EvaluationReport
from .reuse import RunAnalysis, read_run_analysis


def _identity_series(identities) -> pd.Series | None:
    if identities is None or isinstance(identities, pd.Series):
        return identities

    return read_celeba_identities(identities)


def evaluate_anonymization(
    originals: str | os.PathLike,
    anonymized: str | os.PathLike,
    *,
    identities: pd.Series | str | os.PathLike | None = None,
    recognizers: Sequence = DEFAULT_RECOGNIZERS,
    attribute_model=None,
    fars: Sequence[float] = (1e-3, 1e-2),
    analyzer=None,
    on_pair: Callable[[str, int, int], None] | None = None,
    attributes: bool = True,
    batch_size: int = 64,
    max_pixels: int | None = None,
    workers: int = 1,
    reuse_run: bool = True,
) -> EvaluationReport:
    """Measure identity leakage, image quality and attribute utility of an anonymized folder.

    Parameters
    ----------
    originals, anonymized : path-like
        Folders of photos; files pair by name (``a.jpg`` with ``a.jpg``, else with ``a.png``).
    identities : Series or path, optional
        Person per original file name (as
        :func:`~privface.privmetrics.readers.read_celeba_identities` returns, or the path of a
        CelebA identity file). Impostor pairs are then pairs of different persons, top-1
        counts a nearest original of the same person as re-identified, and the person-level
        rate (``top1_reid_person``) is reported too. Originals without an identity are skipped.
    recognizers : sequence of str or FaceRecognizer
        Face recognizers to attack with, by name (``sface``, ``dlib``) or as objects.
    attribute_model : optional
        An object with ``attributes`` (names) and ``predict(crops, batch_size)`` returning 1 / -1
        per attribute for CelebA-aligned crops. Default: the analyzer's (the shipped model).
    fars : sequence of float
        False-accept rates at which match rates are reported.
    analyzer : FaceAnalyzer, optional
        Detector, landmarks and alignment geometry; default: YuNet and dlib's 68 landmarks.
    on_pair : callable, optional
        Called as ``on_pair(file_name, done, total)`` for each pair once it is done (for
        progress bars); with several workers, for the pairs of each chunk as the chunk finishes
        (``done`` still counts up to ``total`` one by one).
    attributes : bool
        Evaluate attribute preservation (needs an attribute model).
    batch_size : int
        Faces per call of the recognizers and the attribute model, and pairs per chunk of work
        (at most; smaller folders are cut into about 16 chunks so that every worker gets some).
    max_pixels : int, optional
        Refuse photos larger than this (decompression bombs); default that of
        :func:`~privface.attributes.images.load_image`.
    workers : int
        Processes that evaluate chunks of pairs in parallel (``spawn`` start method; each loads
        the models once and runs them on one thread, so one per core is the right number). The
        chunks are the same whatever the number of workers, so the report is too. With one
        worker (or a single chunk) everything runs in this process.
    reuse_run : bool
        When ``anonymized`` is the output folder of ``privface anonymize``, take the originals'
        detection, landmarks, SFace embeddings and attribute readings from the run's saved
        analysis (``.privface-run``) instead of computing them again, for every original whose
        bytes are those the run read (SHA-256) and when the run's models are the installed ones
        (:mod:`~.reuse`). The numbers are the same; the report's notes say what was reused.
        Not with a custom ``analyzer``.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    InputError
        A folder that is missing or holds no photos, no file names in common, a bad identity
        file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> a, b = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> Image.new("RGB", (64, 64)).save(a / "x.png"); Image.new("RGB", (64, 64)).save(b / "x.png")
    >>> report = evaluate_anonymization(a, b, recognizers=["sface"], attributes=False)
    >>> report.pairs, report.skipped["reason"].tolist()
    (0, ['no face found in the original'])
    """
    # imported on use: it loads Pillow
    from privface.attributes.images import MAX_PIXELS, list_images

    fars = tuple(float(f) for f in fars)
    if not fars or not all(0 < f < 1 for f in fars):
        raise ValueError(f"every FAR must lie in (0, 1), got {list(fars)}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    workers = int(workers)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    originals, anonymized = Path(originals), Path(anonymized)
    original_files, anonymized_files = list_images(originals), list_images(anonymized)
    for folder, files in ((originals, original_files), (anonymized, anonymized_files)):
        if not files:
            raise InputError("the folder holds no photos (JPEG, PNG, BMP, WebP or TIFF)",
                             file=str(folder))
    pairs, skipped = pair_photos(original_files, anonymized_files)
    if not pairs:
        raise InputError(f"no photo of {originals} has a namesake in {anonymized}: the "
                         "anonymized photos must keep the original file names",
                         file=str(anonymized))
    id_series = _identity_series(identities)
    recs = recognizer_objects(recognizers)
    model = None
    if attributes:
        # Loaded before the long loop, so that a missing model fails in the first second.
        model = attribute_model if attribute_model is not None else \
            analyzer.attribute_model if analyzer is not None else default_attribute_model()
    # A custom analyzer may detect or crop otherwise than the run did.
    run = read_run_analysis(anonymized, [o.name for o, _ in pairs], recs, model) \
        if reuse_run and analyzer is None else None
    known = run.faces if run is not None else {}
    items = [(o, a, id_series is None or o.name in id_series.index, known.get(o.name))
             for o, a in pairs]
    size = chunk_size(len(items), batch_size)
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    processes = min(workers, len(chunks))

    # imported on use: it loads Pillow
    from privface.attributes.analysis import FaceAnalyzer

    if processes > 1:
        # The workers build their own parts; here only what fails fast (a missing model).
        setup = Parts(analyzer=analyzer, recognizers=[portable(r) for r in recs], model=model,
                       batch_size=batch_size, max_pixels=max_pixels)
        parts = run_in_workers(setup, chunks, processes, on_pair)
    else:
        analyzer = analyzer if analyzer is not None else FaceAnalyzer(attribute_model=model)
        local = Parts(analyzer, recs, model, batch_size, max_pixels)
        parts = []
        done = 0
        for chunk in chunks:
            def advance(name: str) -> None:
                nonlocal done
                done += 1
                if on_pair is not None:
                    on_pair(name, done, len(items))

            parts.append(evaluate_chunk(local, chunk, advance))
    report = _assemble(originals, anonymized, parts, skipped, id_series, recs, model, fars)
    if run is not None:
        report.notes.extend(_reuse_notes(run, parts))
    return report


def _reuse_notes(run: RunAnalysis, parts: list[Chunk]) -> list[str]:
    """What the report took from the anonymize run, and which originals it could not.

    Examples
    --------
    >>> _reuse_notes(RunAnalysis({}, False, False, "not reused (other models)"), [])
    ['not reused (other models)']
    """
    if run.note is not None:
        return [run.note]
    reused = sum(part.reused for part in parts)
    changed = [name for part in parts for name in part.changed]
    taken = ["detection", "68 landmarks"] + ["SFace embeddings"] * run.sface + \
        ["attribute readings"] * run.attributes
    what = ", ".join(taken[:-1]) + " and " + taken[-1]
    notes = [f"{reused:,} originals' {what} were taken from the anonymize run's analysis "
             "(same photo bytes, same models), not computed again"]
    if changed:
        more = f" and {len(changed) - 5:,} more" if len(changed) > 5 else ""
        notes.append(f"{len(changed):,} originals differ from the photos the anonymize run read "
                     f"(SHA-256) and were analysed again: {', '.join(changed[:5])}{more}")
    if run.written:
        written = sum(part.reused_written for part in parts)
        notes.append(f"{written:,} anonymized faces' SFace embeddings and attribute readings were "
                     "taken from the anonymize run's checks of the files it wrote (same file "
                     "bytes, same models), not computed again")
        differ = [name for part in parts for name in part.changed_written]
        if differ:
            more = f" and {len(differ) - 5:,} more" if len(differ) > 5 else ""
            notes.append(f"{len(differ):,} anonymized photos differ from the files the anonymize "
                         f"run wrote (SHA-256) and were analysed again: "
                         f"{', '.join(differ[:5])}{more}")
    return notes


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    found = [a for a in arrays if len(a)]
    return np.concatenate(found) if found else np.zeros((0, 1), np.float32)


def _assemble(originals: Path, anonymized: Path, parts: list[Chunk], skipped: list[dict],
              id_series: pd.Series | None, recs: list, model, fars: tuple[float, ...]
              ) -> EvaluationReport:
    """The report from the chunks' rows, embeddings, predictions and scores (in pair order)."""
    skipped = skipped + [item for part in parts for item in part.skipped]
    rows = [row for part in parts for row in part.rows]
    table = pd.DataFrame(rows) if rows else \
        pd.DataFrame(columns=["original", "anonymized", "face_detected", "landmarks"])
    n = len(rows)
    names = [r["original"] for r in rows]
    ids = id_series.reindex(names).to_numpy() if id_series is not None else None
    if id_series is not None:
        table.insert(2, "identity", ids)
    notes: list[str] = []

    identity: dict[str, IdentityLeakage] = {}
    for rec in recs:
        gallery = _stack([part.embeddings[rec.name][0] for part in parts])
        probes = _stack([part.embeddings[rec.name][1] for part in parts])
        has = np.concatenate([part.embeddings[rec.name][2] for part in parts]) if parts else \
            np.zeros(0, bool)
        leak = identity_leakage(gallery, probes, has, metric=rec.metric, fars=fars,
                                identities=ids, recognizer=rec.name)
        identity[rec.name] = leak
        if n:
            table[f"{rec.name}_distance"] = np.where(np.isfinite(leak.distances),
                                                     leak.distances, np.nan)
            table[f"{rec.name}_top1"] = leak.top1_hits
        low = [far_key(f) for f in fars if 0 < leak.impostor_pairs < 1 / f]
        if low:
            notes.append(f"{rec.name}: {leak.impostor_pairs:,} impostor pairs are fewer than "
                         f"1/FAR for FAR {', '.join(low)}: the threshold there lies just below "
                         "the closest impostor pair (stricter than the FAR asked)")
    if n == 1:
        notes.append("one usable pair: no impostor pairs, so no thresholds or match rates")

    scored = np.concatenate([part.scored for part in parts]) if parts else np.zeros(0, bool)
    scores = QualityScores(
        psnr=np.concatenate([np.zeros(0)] + [p.quality.psnr for p in parts]),
        ssim=np.concatenate([np.zeros(0)] + [p.quality.ssim for p in parts]),
        ms_ssim=np.concatenate([np.zeros(0)] + [p.quality.ms_ssim for p in parts]),
        ms_ssim_scales=np.concatenate([np.zeros(0, np.int64)]
                                      + [p.quality.ms_ssim_scales for p in parts]))
    quality_skipped = int(n - scored.sum())
    for column in ("psnr", "ssim", "ms_ssim"):
        values = np.full(n, np.nan)
        values[scored] = getattr(scores, column)
        if n:
            table[column] = values
    if quality_skipped:
        notes.append(f"{quality_skipped:,} pairs differ in size: no quality scores for them, and "
                     "their anonymized faces were located by the anonymized photo's own detection")

    agreement = None
    if model is not None:
        labels = np.asarray(model.attributes, dtype=object)
        has = np.concatenate([part.predictions[2] for part in parts]) if parts else \
            np.zeros(0, bool)
        if has.any():
            predicted_orig = _stack([part.predictions[0] for part in parts])
            predicted_anon = _stack([part.predictions[1] for part in parts])
            same = predicted_orig[has] == predicted_anon
            per_attribute = same.mean(axis=0)
            per_pair = np.full(n, np.nan)
            per_pair[has] = same.mean(axis=1)
        else:
            per_attribute = np.full(len(labels), np.nan)
            per_pair = np.full(n, np.nan)
        if n:
            table["attributes_preserved"] = per_pair
        agreement = AttributeAgreement(model=str(getattr(model, "name", type(model).__name__)),
                                       attributes=tuple(str(a) for a in labels),
                                       per_attribute=per_attribute, pairs=int(has.sum()))

    own = sum(1 for r in rows if r["landmarks"] == "anonymized")
    landmarks = None if not n else "original" if own == 0 else "anonymized" if own == n else \
        "mixed"
    return EvaluationReport(
        originals=str(originals), anonymized=str(anonymized), pairs=n,
        faces_detected=sum(1 for r in rows if r["face_detected"]), landmarks=landmarks,
        pairs_own_detection=own, identity=identity, fars=fars, quality=scores,
        quality_skipped=quality_skipped, attributes=agreement,
        skipped=pd.DataFrame(skipped, columns=["file", "folder", "reason"]),
        per_pair=table, notes=notes)
