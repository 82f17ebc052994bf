"""Calibrate the shipped attribute model's scores into probabilities (Platt scaling).

The photo pipeline treats a reading whose probability is under a threshold as uncertain and never
changes an attribute on such a reading alone (docs/photo-pipeline.md). The model's ridge heads
give signed scores; this script fits, per attribute, ``P(present) = 1 / (1 + exp(-(a s + b)))``
on faces the model never saw in training (CelebA 008001-020000: the 200-identity set's full-size
photos in that range and the half-size photos 008001-010000, both read through the whole
pipeline: detection, landmarks, alignment), and writes
``attributes/models/celeba_attributes_v1.calibration.json``.

    python benchmarks/calibrate_attributes.py            # about 3 minutes on one core
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from common import REPO, default_data_dir, find_celeba, log

OUT = REPO / "attributes" / "models" / "celeba_attributes_v1.calibration.json"


def held_out_photos(celeba: Path) -> list[Path]:
    """Full-size photos 008001-020000 of the 200-identity set, then half-size 008001-010000."""
    full = [p for p in sorted((celeba / "img_align_celeba_200ids").glob("*.jpg"))
            if 8000 < int(p.stem) <= 20000]
    half = [p for p in sorted((celeba / "img_align_celeba_89x109").glob("*.jpg"))
            if 8000 < int(p.stem) <= 10000]
    return full + half


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from privface.attributes import analyze_photos
    from privface.attributes.model import load_default_model
    from privface.privmetrics.readers import read_celeba_attributes

    celeba = find_celeba(args.data, "list_attr_celeba_first20k.txt")
    labels = read_celeba_attributes(celeba / "list_attr_celeba_first20k.txt")
    photos = held_out_photos(celeba)
    log(f"reading {len(photos)} held-out photos")
    analysis = analyze_photos(photos, largest_only=True, workers=args.workers)
    model = load_default_model()
    files = analysis.faces["file"].to_numpy()
    truth = labels.reindex(files)[list(model.attributes)].to_numpy()
    scores = analysis.scores
    calibration, report = {}, {}
    for column, name in enumerate(model.attributes):
        y = truth[:, column] > 0
        fit = LogisticRegression(C=1e6).fit(scores[:, [column]], y)
        a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        calibration[name] = [round(a, 6), round(b, 6)]
        p = 1.0 / (1.0 + np.exp(-(a * scores[:, column] + b)))
        confident = np.maximum(p, 1 - p) >= 0.8
        report[name] = {"accuracy": round(float(((scores[:, column] > 0) == y).mean()), 4),
                        "confident_share": round(float(confident.mean()), 4),
                        "accuracy_when_confident": round(float(
                            ((scores[confident, column] > 0) == y[confident]).mean()), 4)
                        if confident.any() else None}
    doc = {"model": "celeba_attributes_v1.npz",
           "method": "Platt scaling per attribute: P = 1 / (1 + exp(-(a * score + b)))",
           "faces": int(len(files)),
           "photos": "CelebA 008001-020000 of img_align_celeba_200ids (full size) and "
                     "008001-010000 of img_align_celeba_89x109, never seen in training",
           "calibration": calibration, "at_probability_0.8": report}
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for name in ("Male", "Young", "Black_Hair", "Blond_Hair", "Brown_Hair"):
        log(f"{name}: {report[name]}")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
