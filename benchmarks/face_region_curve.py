#!/usr/bin/env python
"""k-Same's face region against privacy and quality: the curve behind the region's default.

Reuses a finished photo run of bench_generators.py (its originals and the saved analysis in
``RUN/.privface-run``), so no face is detected twice. For each setting (``grow``: the region
scaled about the nose tip; ``forehead``; ``fit``: the average warped onto each face's own
landmarks; ``colour``: colour matching) it runs k-Same-Select on the largest face of every photo
(one class, persons from the identities), pastes the faces back as the pipeline does and
measures PSNR / SSIM / MS-SSIM against the originals and person-level top-1 re-identification
for SFace and dlib against a gallery of all the originals (their own photo included: the
strongest attacker), each recognizer cutting the face at the original's landmarks::

    .venv/bin/python benchmarks/bench_generators.py --configs ksame5 --persons 20 --photos 10
    .venv/bin/python benchmarks/face_region_curve.py --run /tmp/bench_generators/ksame5 \\
        --originals /tmp/bench_generators/originals --png docs/face-region-curve.png

``--ring`` draws the other curve, at the default region: the blur of the face's own ring around
the averaged face (``ring_blur``), with :class:`KSameSelectGenerator` as the pipeline runs it
(averages of 2k persons, alike faces by the run's readings)::

    .venv/bin/python benchmarks/face_region_curve.py --ring --run /tmp/bench_generators/ksame5 \\
        --originals /tmp/bench_generators/originals --png docs/ring-curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from common import default_data_dir, find_celeba, log

from privface.attributes.model import CELEBA_ATTRIBUTES

SETTINGS = [  # (grow, forehead, fit, colour); the default is (0.4, 0.6, False, True)
    (0.0, 0.3, True, True), (0.0, 0.3, False, True), (0.2, 0.5, False, True),
    (0.4, 0.6, True, True), (0.4, 0.6, False, True), (0.6, 0.7, False, True)]
RINGS = [8.0, 6.0, 5.0, 4.0, 2.0, 0.0]  # ring_blur sigmas (crop pixels); the default is 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--run", type=Path, help="OUT of a k-Same photo run")
    parser.add_argument("--originals", type=Path)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--png", type=Path, help="plot of top-1 and SSIM against the region")
    parser.add_argument("--out", type=Path, default=Path("/tmp/face_region_curve.json"))
    parser.add_argument("--replot", action="store_true", help="plot an earlier --out only")
    parser.add_argument("--ring", action="store_true",
                        help="the ring's blur curve at the default region (KSameSelectGenerator)")
    args = parser.parse_args()
    if args.replot:
        report(json.loads(args.out.read_text()), args)
        return

    from privface.attributes.alignment import align_face
    from privface.attributes.detection import DetectedFace
    from privface.attributes import face_region
    from privface.attributes.face_region import paste_face
    from privface.attributes.images import load_image
    from privface.attributes.recognizers import DlibRecognizer, SFaceRecognizer
    from privface.generators.ksame import KSameSelectGenerator, k_same_select
    from privface.privmetrics.readers import read_celeba_identities
    from privface.quality import image_quality

    celeba = find_celeba(args.data, "identity_CelebA.txt")
    faces = pd.read_csv(args.run / ".privface-run" / "faces.csv")
    saved = np.load(args.run / ".privface-run" / "landmarks.npz")
    largest = (faces["face"] == 0).to_numpy()
    faces = faces[largest].reset_index(drop=True)
    landmarks, landmarks5 = saved["landmarks"][largest], saved["landmarks5"][largest]
    persons = read_celeba_identities(celeba / "identity_CelebA.txt").loc[faces["file"]].to_numpy()
    photos = [load_image(args.originals / name) for name in faces["file"]]
    boxes = faces[["x", "y", "width", "height"]].to_numpy(float)
    detected = [DetectedFace(box=tuple(b), score=1.0, landmarks5=p) for b, p in
                zip(boxes, landmarks5)]
    recognizers = [SFaceRecognizer(), DlibRecognizer()]
    galleries = [r.embed_chips([r.chip(p, d, q) for p, d, q in zip(photos, detected, landmarks)])
                 for r in recognizers]
    aligned = [align_face(p, q) for p, q in zip(photos, landmarks)]
    crops = np.stack([a.image for a in aligned])
    in_crop = np.stack([q @ a.matrix[:, :2].T + a.matrix[:, 2] for q, a in zip(landmarks, aligned)])
    log(f"{len(photos)} photos of {len(set(persons))} persons; k = {args.k}")
    readings = faces[[c for c in faces.columns if c in CELEBA_ATTRIBUTES]]
    rows = []
    settings = [(0.4, 0.6, False, True, ring) for ring in RINGS] if args.ring else \
        [setting + (None,) for setting in SETTINGS]
    for grow, forehead, fit, colour, ring in settings:
        # The region's defaults, read by every caller (k-Same's region and the paste).
        face_region.GROW, face_region.FOREHEAD = grow, forehead
        if ring is None:
            made = k_same_select(crops, k=args.k, persons=persons, landmarks=in_crop,
                                 fit=fit).faces
        else:  # as the pipeline runs it, in one class
            made = KSameSelectGenerator(k=args.k, ring_blur=ring).generate(
                crops, persons=persons, landmarks=in_crop, readings=readings).faces
        outputs = [paste_face(p, f, a.matrix, q, colour=colour, feather=0.06 * 178)
                   for p, f, a, q in
                   zip(photos, made, aligned, landmarks)]
        scores = image_quality(photos, outputs)
        row = {"grow": grow, "forehead": forehead, "fit": fit, "colour": colour,
               "ring_blur": ring,
               "psnr": float(scores.psnr.mean()), "ssim": float(scores.ssim.mean()),
               "ms_ssim": float(scores.ms_ssim.mean())}
        for recognizer, gallery in zip(recognizers, galleries):
            probes = recognizer.embed_chips([recognizer.chip(o, d, q) for o, d, q in
                                             zip(outputs, detected, landmarks)])
            distances = recognizer.distances(probes, gallery)
            nearest = distances.argmin(axis=1)
            row[f"{recognizer.name}_own_photo"] = float((nearest == np.arange(len(photos))).mean())
            hits = pd.Series(persons[nearest] == persons)
            # Person level, as privface evaluate: each person's share, averaged over persons.
            row[f"{recognizer.name}_top1_person"] = float(hits.groupby(persons).mean().mean())
            # The attacker who holds other photos of the person, not this one.
            np.fill_diagonal(distances, np.inf)
            others = pd.Series(persons[distances.argmin(axis=1)] == persons)
            row[f"{recognizer.name}_top1_others"] = float(others.groupby(persons).mean().mean())
        rows.append(row)
        log(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    args.out.write_text(json.dumps(rows, indent=1))
    report(rows, args)


def report(rows: list[dict], args) -> None:
    """The table (printed) and, with ``--png``, the plot."""
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ring = "ring_blur" in table and table["ring_blur"].notna().any()
        shown = table if ring else table[~table["fit"] & table["colour"]]
        x = "ring_blur" if ring else "grow"
        figure, axis = plt.subplots(figsize=(5.5, 3.4), dpi=100)
        for name, style in (("sface_top1_person", "o-"), ("dlib_top1_person", "s-")):
            axis.plot(shown[x], shown[name], style, label=name.split("_")[0] + " top-1")
        axis.plot(shown[x], shown["ssim"], "^--", label="SSIM")
        axis.plot(shown[x], shown["ms_ssim"], "v--", label="MS-SSIM")
        axis.axhline(1 / args.k, color="grey", lw=0.8, ls=":", label=f"1/k = {1 / args.k:g}")
        axis.set_xlabel("blur of the face's own ring (sigma, crop pixels)" if ring else
                        "region growth (outline scaled by 1 + grow about the nose)")
        axis.set_ylim(0, 1)
        axis.legend(fontsize=7)
        axis.set_title(f"k-Same k={args.k}: {'ring blur' if ring else 'face region'} against "
                       "privacy and quality", fontsize=9)
        figure.tight_layout()
        figure.savefig(args.png)
        log(f"wrote {args.png}")


if __name__ == "__main__":
    main()
