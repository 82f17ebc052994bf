#!/usr/bin/env python
"""Benchmark stage I (faces in) on real CelebA photos: detection, verification, template, speed.

Sections
    (a) detection rate: YuNet (:class:`privface.attributes.detection.FaceDetector`, defaults) on
        every photo of ``img_align_celeba_89x109/`` (10,000 CelebA images at 89 x 109) and of
        ``img_align_celeba_200ids/`` (6,000 images at 178 x 218); a photo counts as detected when
        at least one face is found;
    (b) verification on the 200-identity set (200 people x 30 photos) for each recognizer (SFace,
        cosine; dlib ResNet, Euclidean), on the largest face of every detected photo and *all*
        pairs of those photos: ROC AUC, EER, and TAR at FAR 1e-3 and 1e-2, the thresholds set with
        :func:`~privface.attributes.recognizers.calibrate_threshold` on the impostor pairs;
    (c) the mean eye centres of the 200-identity photos (already CelebA-aligned), measured with
        the detector and dlib's 68 landmarks: the constants behind
        :data:`privface.attributes.alignment.CELEBA`;
    (d) throughput: photo decoding, detection, 68 landmarks, CelebA alignment and one SFace
        embedding per face (and the attribute model's ``predict`` on the aligned crops, in
        batches of 64, when :func:`privface.attributes.model.load_default_model` loads), timed
        over ~500 photos of the 200-identity set after a short warm-up; faces/s and ms per stage.

Run from the repository root (the data is read in place, never copied)::

    .venv/bin/python benchmarks/bench_faces.py --out /tmp/bench_faces.json
    .venv/bin/python benchmarks/bench_faces.py --limit 300 --sections a,d   # quick look

Embeddings and landmarks of the 200-identity pass can be kept with ``--cache FILE.npz`` so that
the verification numbers are recomputed without the models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import (default_data_dir, find_celeba, git_state, log, machine_info, versions,
                    write_json)

REPO = Path(__file__).resolve().parents[1]
SMALL = "img_align_celeba_89x109"
IDS = "img_align_celeba_200ids"
ID_FILE = "identity_CelebA.txt"
FARS = (1e-3, 1e-2)
RECOGNIZERS = ("sface", "dlib")


def celeba_dir(data_dir: Path) -> Path:
    return find_celeba(data_dir, IDS, ID_FILE)



def faces_machine() -> dict:
    import cv2

    return machine_info(opencv_threads=cv2.getNumThreads(),
                        load_average_at_start=os.getloadavg() if hasattr(os, "getloadavg")
                        else None, **versions("numpy", "cv2", "dlib", "PIL", "sklearn"))

# --------------------------------------------------------------------------------------------
# (a) detection rate
# --------------------------------------------------------------------------------------------

def detection_rate(folder: Path, detector, limit: int | None) -> dict:
    from privface.attributes.images import ImageError, list_images, load_image

    paths = list_images(folder)[:limit]
    counts = np.zeros(len(paths), np.int64)
    scores = np.full(len(paths), np.nan)
    unreadable = []
    start = time.perf_counter()
    for i, path in enumerate(paths):
        try:
            image = load_image(path)
        except ImageError as error:
            unreadable.append(f"{path.name}: {error.message}")
            continue
        faces = detector.detect(image)
        counts[i] = len(faces)
        if faces:
            scores[i] = faces[0].score
        if (i + 1) % 2000 == 0:
            log(f"  {folder.name}: {i + 1:,}/{len(paths):,}, {(counts[:i + 1] > 0).mean():.2%}")
    seconds = time.perf_counter() - start
    missed = [p.name for p, c in zip(paths, counts) if c == 0]
    return {"folder": folder.name, "photos": len(paths), "detected": int((counts > 0).sum()),
            "rate": float((counts > 0).mean()) if len(paths) else None,
            "more_than_one_face": int((counts > 1).sum()), "unreadable": unreadable,
            "missed": missed[:50], "missed_total": len(missed),
            "median_score_of_largest": float(np.nanmedian(scores)) if len(paths) else None,
            "seconds": seconds, "photos_per_s": len(paths) / seconds if seconds else None}


# --------------------------------------------------------------------------------------------
# (b, c) the 200-identity pass: landmarks and embeddings of every photo
# --------------------------------------------------------------------------------------------

def identity_pass(folder: Path, identities, detector, predictor, recognizers: dict,
                  limit: int | None) -> dict:
    """Largest face of each photo: identity, eye centres, one embedding per recognizer."""
    from privface.attributes.images import list_images, load_image
    from privface.attributes.landmarks import eye_centres

    paths = list_images(folder)[:limit]
    names, labels, eyes, missed = [], [], [], []
    embeddings: dict[str, list[np.ndarray]] = {name: [] for name in recognizers}
    seconds = {name: 0.0 for name in recognizers}
    start = time.perf_counter()
    for i, path in enumerate(paths):
        image = load_image(path)
        faces = detector.detect(image)
        if not faces:
            missed.append(path.name)
            continue
        points = predictor.predict(image, faces[0])
        names.append(path.name)
        labels.append(int(identities[path.name]))
        eyes.append(np.stack(eye_centres(points)))
        for name, rec in recognizers.items():
            t = time.perf_counter()
            embeddings[name].append(rec.embed(image, faces[:1], [points])[0])
            seconds[name] += time.perf_counter() - t
        if (i + 1) % 500 == 0:
            rate = (i + 1) / (time.perf_counter() - start)
            log(f"  {folder.name}: {i + 1:,}/{len(paths):,} photos ({rate:.1f}/s; "
                + ", ".join(f"{k} {v / len(names) * 1000:.0f} ms/face" for k, v in
                            seconds.items()) + ")")
    return {"names": np.array(names), "labels": np.array(labels, np.int64),
            "eyes": np.array(eyes).reshape(-1, 2, 2), "missed": missed,
            "embeddings": {k: np.array(v, np.float32).reshape(-1, 128)
                           for k, v in embeddings.items()},
            "embed_ms_per_face": {k: v / max(1, len(names)) * 1000 for k, v in seconds.items()}}


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Where the false-accept and false-reject rates meet, interpolated on the ROC curve."""
    fnr = 1.0 - tpr
    k = int(np.argmax(fnr <= fpr))  # fpr rises and fnr falls along the curve
    if k == 0:
        return float(fpr[0])
    above, below = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
    share = above / (above - below) if above != below else 0.0
    return float(fpr[k - 1] + share * (fpr[k] - fpr[k - 1]))


def verification(embeddings: np.ndarray, labels: np.ndarray, metric: str) -> dict:
    """All-pairs verification metrics, vectorised over the upper triangle of the distances."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from privface.attributes.recognizers import calibrate_threshold, pairwise_distances

    n = len(labels)
    upper = np.triu(np.ones((n, n), bool), k=1)
    distances = pairwise_distances(embeddings, embeddings, metric)[upper]
    same = (labels[:, None] == labels[None, :])[upper]
    genuine, impostor = distances[same], distances[~same]
    scores = -distances  # larger = more alike
    fpr, tpr, _ = roc_curve(same, scores)
    out = {"metric": metric, "photos": n, "genuine_pairs": int(same.sum()),
           "impostor_pairs": int((~same).sum()), "roc_auc": float(roc_auc_score(same, scores)),
           "eer": equal_error_rate(fpr, tpr),
           "genuine_distance_median": float(np.median(genuine)),
           "impostor_distance_median": float(np.median(impostor)), "at_far": {}}
    for far in FARS:
        threshold = calibrate_threshold(impostor, far)
        out["at_far"][str(far)] = {"threshold": threshold,
                                   "tar": float((genuine <= threshold).mean()),
                                   "far_measured": float((impostor <= threshold).mean())}
    return out


def eye_template(eyes: np.ndarray) -> dict:
    from privface.attributes.alignment import CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE

    mean, std, median = eyes.mean(0), eyes.std(0), np.median(eyes, 0)
    constants = np.array([CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE])
    return {"photos": len(eyes), "left_mean": mean[0].round(2).tolist(),
            "right_mean": mean[1].round(2).tolist(), "left_std": std[0].round(2).tolist(),
            "right_std": std[1].round(2).tolist(), "left_median": median[0].round(2).tolist(),
            "right_median": median[1].round(2).tolist(),
            "constants": constants.tolist(),
            "max_abs_difference_to_constants": float(np.abs(mean - constants).max())}


# --------------------------------------------------------------------------------------------
# (d) throughput
# --------------------------------------------------------------------------------------------

def throughput(folder: Path, n_photos: int, detector, predictor, sface, model,
               batch_size: int = 64) -> dict:
    from privface.attributes.alignment import CELEBA, align_face
    from privface.attributes.images import list_images, load_image

    paths = list_images(folder)
    step = max(1, len(paths) // n_photos)
    timed = paths[::step][:n_photos]
    stages = ["load", "detect", "landmarks", "align", "sface"] + (["attributes"] if model else [])
    spent = dict.fromkeys(stages, 0.0)
    crops: list[np.ndarray] = []

    def run(photos, record: bool) -> int:
        faces_done = 0
        clock = time.perf_counter

        def add(stage, since):
            now = clock()
            if record:
                spent[stage] += now - since
            return now

        for path in photos:
            t = clock()
            image = load_image(path)
            t = add("load", t)
            faces = detector.detect(image)
            t = add("detect", t)
            for face in faces:
                points = predictor.predict(image, face)
                t = add("landmarks", t)
                aligned = align_face(image, points, CELEBA)
                t = add("align", t)
                sface.embed(image, [face], [points])
                t = add("sface", t)
                crops.append(aligned.image)
                faces_done += 1
            if model is not None and len(crops) >= batch_size:
                model.predict(crops, batch_size=batch_size)
                crops.clear()
                add("attributes", t)
        if model is not None and crops:
            t = clock()
            model.predict(crops, batch_size=batch_size)
            crops.clear()
            add("attributes", t)
        return faces_done

    run(paths[1::step][:8], record=False)  # warm-up: first calls allocate and load kernels
    start = time.perf_counter()
    n_faces = run(timed, record=True)
    seconds = time.perf_counter() - start
    return {"photos": len(timed), "faces": n_faces, "seconds": seconds,
            "faces_per_s": n_faces / seconds, "photos_per_s": len(timed) / seconds,
            "ms_per_face": {k: v / max(1, n_faces) * 1000 for k, v in spent.items()},
            "with_attribute_model": model is not None}


def load_attribute_model():
    """The shipped attribute model, or ``(None, reason)`` while it does not exist yet."""
    try:
        from privface.attributes.model import load_default_model
    except ImportError as error:
        return None, f"privface.attributes.model does not import ({error})"
    try:
        return load_default_model(), None
    except Exception as error:  # noqa: BLE001 - any failure means: report without it
        return None, f"load_default_model() failed: {error}"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir(),
                   help="data folder holding celeba/ (default: $PRIVFACE_DATA or ../shared/data "
                        "relative to the repository)")
    p.add_argument("--sections", default="a,b,c,d", help="which of a,b,c,d to run")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N photos of each folder (quick runs)")
    p.add_argument("--throughput-photos", type=int, default=500,
                   help="photos timed in section d (default 500)")
    p.add_argument("--no-attributes", action="store_true",
                   help="leave the attribute model out of section d")
    p.add_argument("--sface-bgr", action="store_true",
                   help="also score SFace fed BGR instead of RGB (the channel order before the "
                        "fix), to show what the fix is worth")
    p.add_argument("--cache", type=Path, default=None,
                   help="npz file for the 200-identity pass: read when it exists, else written")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    return p.parse_args(argv)


class _BGRSFace:
    """SFace fed the chip with its channels swapped (what privface did before the fix)."""

    name, metric = "sface_bgr", "cosine"

    def __init__(self, sface) -> None:
        self._sface = sface

    def embed(self, image, faces, landmarks):
        chips = [self._sface.chip(image, f, p)[..., ::-1] for f, p in zip(faces, landmarks)]
        return self._sface.embed_chips(chips)


def print_tables(doc: dict) -> None:
    print()
    if "detection" in doc:
        print("(a) Detection (YuNet, score >= 0.6)")
        print("| folder | photos | detected | rate | >1 face | photos/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in doc["detection"]:
            print(f"| {r['folder']} | {r['photos']:,} | {r['detected']:,} | {r['rate']:.2%} | "
                  f"{r['more_than_one_face']} | {r['photos_per_s']:.0f} |")
        print()
    if "verification" in doc:
        print("(b) Verification, all pairs of the 200-identity set")
        print("| recognizer | photos | genuine | impostor | ROC AUC | EER | TAR@FAR1e-3 | "
              "TAR@FAR1e-2 | ms/face |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in doc["verification"].items():
            print(f"| {name} ({r['metric']}) | {r['photos']:,} | {r['genuine_pairs']:,} | "
                  f"{r['impostor_pairs']:,} | {r['roc_auc']:.4f} | {r['eer']:.2%} | "
                  f"{r['at_far']['0.001']['tar']:.2%} | {r['at_far']['0.01']['tar']:.2%} | "
                  f"{r.get('embed_ms_per_face', float('nan')):.0f} |")
        print()
    if "eyes" in doc:
        e = doc["eyes"]
        print(f"(c) Eye centres over {e['photos']:,} photos (x, y in the 178 x 218 image): "
              f"left {e['left_mean']} (sd {e['left_std']}), right {e['right_mean']} "
              f"(sd {e['right_std']}); CELEBA constants {e['constants']}")
        print()
    if "throughput" in doc:
        t = doc["throughput"]
        print(f"(d) Throughput over {t['photos']} photos / {t['faces']} faces: "
              f"{t['faces_per_s']:.1f} faces/s ({t['seconds']:.1f} s); attribute model "
              f"{'included' if t['with_attribute_model'] else 'NOT included: ' + t['note']}")
        print("| stage | ms per face |")
        print("|---|---:|")
        for k, v in t["ms_per_face"].items():
            print(f"| {k} | {v:.1f} |")
        print(f"| total | {1000 / t['faces_per_s']:.1f} |")


def main(argv=None) -> int:
    args = parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if not sections <= set("abcd"):
        raise SystemExit(f"unknown sections {sorted(sections - set('abcd'))} (use a,b,c,d)")
    data = celeba_dir(args.data)

    from privface.attributes.detection import FaceDetector
    from privface.attributes.landmarks import LandmarkPredictor
    from privface.attributes.recognizers import load_recognizer

    doc: dict = {"machine": faces_machine(), "git": git_state(), "limit": args.limit,
                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    log(f"machine: {doc['machine']}")
    detector, predictor = FaceDetector(), LandmarkPredictor()

    if "a" in sections:
        doc["detection"] = []
        for folder in (SMALL, IDS):
            log(f"(a) detecting faces in {folder}")
            r = detection_rate(data / folder, detector, args.limit)
            log(f"  {r['detected']:,}/{r['photos']:,} = {r['rate']:.2%} in {r['seconds']:.0f} s; "
                f"missed: {r['missed'][:10]}")
            doc["detection"].append(r)
            write_json(args.out, doc)

    if sections & {"b", "c"}:
        recognizers = {name: load_recognizer(name) for name in RECOGNIZERS}
        if args.sface_bgr:
            recognizers["sface_bgr"] = _BGRSFace(recognizers["sface"])
        if args.cache is not None and args.cache.is_file():
            log(f"(b, c) reading the 200-identity pass from {args.cache}")
            with np.load(args.cache, allow_pickle=False) as cached:
                result = {"labels": cached["labels"], "eyes": cached["eyes"],
                          "embeddings": {k[4:]: cached[k] for k in cached.files
                                         if k.startswith("emb_")},
                          "embed_ms_per_face": json.loads(str(cached["embed_ms"]))}
        else:
            from privface.privmetrics.readers import read_celeba_identities

            log("(b, c) detection, landmarks and embeddings of the 200-identity set")
            identities = read_celeba_identities(data / ID_FILE)
            start = time.perf_counter()
            result = identity_pass(data / IDS, identities, detector, predictor, recognizers,
                                   args.limit)
            doc["identity_pass_seconds"] = time.perf_counter() - start
            doc["identity_pass_missed"] = result["missed"]
            if args.cache is not None:
                np.savez_compressed(args.cache, labels=result["labels"], eyes=result["eyes"],
                                    names=result["names"],
                                    embed_ms=np.array(json.dumps(result["embed_ms_per_face"])),
                                    **{f"emb_{k}": v for k, v in result["embeddings"].items()})
        if "b" in sections:
            doc["verification"] = {}
            for name, embeddings in result["embeddings"].items():
                log(f"(b) verification with {name}: all pairs of {len(embeddings):,} photos")
                metric = "cosine" if name.startswith("sface") else "euclidean"
                r = verification(embeddings, result["labels"], metric)
                r["embed_ms_per_face"] = result["embed_ms_per_face"].get(name)
                doc["verification"][name] = r
                log(f"  AUC {r['roc_auc']:.4f}, EER {r['eer']:.2%}, TAR@1e-3 "
                    f"{r['at_far']['0.001']['tar']:.2%}, TAR@1e-2 {r['at_far']['0.01']['tar']:.2%}")
                write_json(args.out, doc)
        if "c" in sections:
            doc["eyes"] = eye_template(result["eyes"])
            log(f"(c) eye centres: {doc['eyes']}")
            write_json(args.out, doc)

    if "d" in sections:
        model, reason = (None, "--no-attributes") if args.no_attributes else \
            load_attribute_model()
        log("(d) throughput " + ("with the attribute model" if model is not None else
                                 f"WITHOUT the attribute model: {reason}"))
        sface = load_recognizer("sface")
        r = throughput(data / IDS, args.throughput_photos, detector, predictor, sface, model)
        r["note"] = reason
        doc["throughput"] = r
        log(f"  {r['faces_per_s']:.1f} faces/s; ms per face {r['ms_per_face']}")
        write_json(args.out, doc)

    doc["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(args.out, doc)
    print_tables(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
