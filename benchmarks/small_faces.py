#!/usr/bin/env python
"""How small a face must be before SFace and dlib stop recognising it (issue 17, item 4).

Gallery: the first ``--gallery`` photos of each of ``--persons`` identities of the shared
200-identity CelebA set, at full size. Probes: their next ``--probes`` photos, shrunk (INTER_AREA)
so that the eye-to-chin distance is D pixels, and embedded at that size with the landmarks of
the full-size photo scaled down (no detector runs on a tiny face; an attacker with landmarks is
the strongest case). Top-1 identification against the gallery is printed per D and recognizer,
with chance (1 / persons) and the 95% binomial upper bound of chance::

    .venv/bin/python benchmarks/small_faces.py --persons 40 --gallery 3 --probes 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import default_data_dir, find_celeba, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--persons", type=int, default=40)
    parser.add_argument("--gallery", type=int, default=3)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--sizes", default="4,6,8,10,12,16,24,32,72")
    args = parser.parse_args()

    import cv2
    from scipy.stats import binom

    from privface.attributes.detection import DetectedFace, FaceDetector
    from privface.attributes.images import load_image
    from privface.attributes.landmarks import LandmarkPredictor, eye_centres
    from privface.attributes.recognizers import DlibRecognizer, SFaceRecognizer
    from privface.privmetrics.readers import read_celeba_identities

    celeba = find_celeba(args.data, "img_align_celeba_200ids", "identity_CelebA.txt")
    source = celeba / "img_align_celeba_200ids"
    names = sorted(p.name for p in source.iterdir())
    ids = read_celeba_identities(celeba / "identity_CelebA.txt").reindex(names)
    detector, predictor = FaceDetector(), LandmarkPredictor()
    recognizers = [SFaceRecognizer(), DlibRecognizer()]
    gallery, probes = [], []  # (person, photo, face, landmarks68)
    for person in sorted(ids.unique())[:args.persons]:
        taken = 0
        for name in sorted(ids.index[ids == person]):
            photo = load_image(source / name)
            faces = detector.detect(photo)
            if not faces:
                continue
            entry = (person, photo, faces[0], predictor.predict(photo, faces[0]))
            (gallery if taken < args.gallery else probes).append(entry)
            taken += 1
            if taken == args.gallery + args.probes:
                break
    log(f"{len(gallery)} gallery and {len(probes)} probe photos of {args.persons} persons")
    people = np.array([g[0] for g in gallery])
    truth = np.array([p[0] for p in probes])
    chance = 1.0 / args.persons
    bound = binom.ppf(0.95, len(probes), chance) / len(probes)
    galleries = [rec.embed_chips([rec.chip(photo, face, points)
                                  for _, photo, face, points in gallery]) for rec in recognizers]
    print(f"chance {chance:.3f}, 95% upper bound of chance {bound:.3f} ({len(probes)} probes)")
    print("| eye-to-chin px | " + " | ".join(f"{r.name} top-1" for r in recognizers) + " |")
    print("|---|" + "---|" * len(recognizers))
    for size in [float(s) for s in args.sizes.split(",")]:
        row = []
        for rec, gallery_embeddings in zip(recognizers, galleries):
            chips = []
            for _, photo, face, points in probes:
                left, right = eye_centres(points)
                distance = float(np.hypot(*((left + right) / 2 - points[8])))
                scale = size / distance
                small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                x, y, w, h = face.box
                shrunk = DetectedFace(box=(x * scale, y * scale, w * scale, h * scale),
                                      score=face.score, landmarks5=face.landmarks5 * scale)
                chips.append(rec.chip(small, shrunk, points * scale))
            found = rec.distances(rec.embed_chips(chips), gallery_embeddings).argmin(axis=1)
            row.append(float((people[found] == truth).mean()))
        print(f"| {size:g} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


if __name__ == "__main__":
    main()
