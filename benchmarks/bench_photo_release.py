#!/usr/bin/env python
"""What a photo release looks like under the photo model v2 (issue: faces that still look like
the population).

Runs the photo pipeline (:func:`privface.pipeline.anonymize_photos`, the same call as
``privface anonymize PHOTOS_DIR``) on a set of the shared 200-identity CelebA photos, reads the
released photos again with the attribute model (as ``privface predict OUT`` does), and reports:
the share of photos with a face released, overall and per predicted group (sex, age); the
attributes changed per face; the classes released; each controlled attribute's share among the
released faces (read again) against the input's; SFace's quick leakage check.

    .venv/bin/python benchmarks/bench_photo_release.py --t 0.2 --out /tmp/release-t02.json
    .venv/bin/python benchmarks/bench_photo_release.py --k 5 --persons 60 --women 6 \\
        --out /tmp/release-k5-minority.json

``--persons N`` takes N identities (``--women W``: W of them women, the rest men, by the
identity's majority reading), linking their photos into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import default_data_dir, find_celeba, log, machine_info, write_json

QIS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def subset(source: Path, identities, n_persons: int | None, women: int | None,
           labels) -> Path:
    """A folder of links to the photos of ``n_persons`` identities (``women`` of them women)."""
    names = sorted(p.name for p in source.iterdir())
    ids = identities.reindex(names).dropna()
    persons = sorted(ids.unique())
    if women is not None:
        sex = labels.reindex(ids.index)["Male"].groupby(ids).mean()
        female = [p for p in persons if sex.get(p, 1) < 0]
        male = [p for p in persons if sex.get(p, -1) > 0]
        persons = female[:women] + male[:n_persons - women]
    elif n_persons is not None:
        persons = persons[:n_persons]
    folder = Path(tempfile.mkdtemp(prefix="release-photos-"))
    keep = set(persons)
    for name, person in ids.items():
        if person in keep:
            os.symlink(source / name, folder / name)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--k", type=int)
    parser.add_argument("--l", type=int)
    parser.add_argument("--t", type=float)
    parser.add_argument("--epsilon", type=float)
    parser.add_argument("--persons", type=int)
    parser.add_argument("--women", type=int)
    parser.add_argument("--no-identities", action="store_true",
                        help="find persons with SFace instead of the identity file")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", type=Path, help="keep the run folder here")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    from privface.attributes import analyze_photos
    from privface.pipeline import anonymize_photos
    from privface.privmetrics.readers import read_celeba_identities

    celeba = find_celeba(args.data, "identity_CelebA.txt", "img_align_celeba_200ids")
    identities = read_celeba_identities(celeba / "identity_CelebA.txt")
    source = celeba / "img_align_celeba_200ids"
    photos = source
    if args.persons is not None or args.women is not None:
        labels = None
        if args.women is not None:
            # The identity's sex by the model's reading of three of its photos.
            log("reading three photos per person to pick men and women")
            ids = identities.reindex(sorted(p.name for p in source.iterdir())).dropna()
            sample = ids.groupby(ids).head(3).index
            analysis = analyze_photos([source / name for name in sample], largest_only=True,
                                      workers=args.workers)
            labels = analysis.faces.set_index("file")[["Male"]]
        photos = subset(source, identities, args.persons, args.women, labels)
    out = args.keep or Path(tempfile.mkdtemp(prefix="release-out-")) / "out"
    log(f"anonymizing {sum(1 for _ in photos.iterdir())} photos into {out}")
    started = time.perf_counter()
    report = anonymize_photos(photos, out, k=args.k, l=args.l, t=args.t, epsilon=args.epsilon,
                              identities=None if args.no_identities else identities,
                              workers=args.workers, resume=False)
    seconds = time.perf_counter() - started
    run = report.summary.to_dict()
    plan = pd.read_csv(out / ".privface-run" / "faces.csv")
    largest = plan[plan["face"] == 0]
    inputs = largest[[f"model:{q}" if f"model:{q}" in largest else q for q in QIS]]
    inputs.columns = QIS
    log("reading the released photos again")
    again = analyze_photos(out, largest_only=True, workers=args.workers).faces
    released = again[QIS]
    shares_in = (inputs > 0).mean()
    shares_out = (released > 0).mean()
    gap = (shares_out - shares_in).abs()
    classes = released.drop_duplicates().shape[0]
    doc = {"machine": machine_info(), "settings": {key: getattr(args, key) for key in
                                                   ("k", "l", "t", "epsilon", "persons",
                                                    "women", "no_identities")},
           "photos": run["photos"], "seconds": round(seconds, 1),
           "mean_changed": (run.get("ppas") or {}).get("mean_changed"),
           "faces_changed": (run.get("ppas") or {}).get("faces_changed"),
           "generalised": (run.get("ppas") or {}).get("generalised"),
           "planned_classes": ((run.get("ppas") or {}).get("planned") or {}).get("n_classes"),
           "released_classes_read_again": int(classes),
           "release": run.get("release"), "verdict": run.get("verdict"),
           "shares_input": shares_in.round(4).to_dict(),
           "shares_released_read_again": shares_out.round(4).to_dict(),
           "largest_share_gap": round(float(gap.max()), 4),
           "outputs": run.get("outputs"), "leakage": run.get("leakage"),
           "readings": (run.get("ppas") or {}).get("readings"),
           "solver": (run.get("ppas") or {}).get("solver")}
    write_json(args.out, doc)
    log(json.dumps({key: doc[key] for key in ("photos", "mean_changed", "planned_classes",
                                               "released_classes_read_again",
                                               "largest_share_gap", "seconds")}))
    log(f"release: {json.dumps(doc['release'])}")
    log(f"verdict: {json.dumps(doc['verdict'])}")
    if args.keep is None:
        shutil.rmtree(out.parent, ignore_errors=True)
    if photos != source:
        shutil.rmtree(photos, ignore_errors=True)
    return 0 if np.isfinite(gap.max()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
