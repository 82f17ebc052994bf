#!/usr/bin/env python
"""How often a StarGAN generator sets the attribute it is asked for, on held-out faces (issue 19).

For each of the 200 ``eval`` faces of ``benchmarks/stargan_heldout.txt`` (never in the training
pack) and each of the five attributes, the face's own attributes (read by privface's default
attribute model) become the target with that one attribute changed: a hair colour set (and the
other two cleared, as the release's demo does), Male and Young flipped. The 128 px translation is
scaled back to 178 x 178 and pasted into the face's 178 x 218 crop, which privface's attribute
model then reads through the photo pipeline's detect -> landmarks -> align path. A translation
succeeds when the model reads the target value of the changed attribute; ``success`` is the share
over all faces, ``success_changed`` over the faces whose own reading differed from the target.

It also draws a grid: 8 faces (rows) x the input and its 5 translations (columns).

Run from the repository root, on the CPU (about 10 minutes for 200 faces)::

    .venv/bin/python benchmarks/stargan_eval.py --out /tmp/stargan_eval.json \\
        --grid /tmp/stargan_grid.png                      # the shipped weights
    .venv/bin/python benchmarks/stargan_eval.py --checkpoint 200000-G.ckpt --limit 20

The Table 1 row (PSNR, SSIM, MS-SSIM, leakage) comes from ``bench_generators.py --checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, default_data_dir, find_celeba, log
from PIL import Image

FULL = "img_align_celeba_200ids"
HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")


def eval_names(heldout: Path) -> list[str]:
    """The evaluation faces of the hold-out list (its rows with ``eval`` 1)."""
    table = pd.read_csv(heldout, sep=" ", comment="#", header=None,
                        names=["image", "identity", "eval"], skiprows=1)
    table = table[table["image"] != "image"]
    return sorted(table.loc[table["eval"].astype(int) == 1, "image"])


def targets_for(source: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """``source`` (1 / -1) with ``attribute`` changed: a hair colour set, others flipped."""
    target = source.copy()
    if attribute in HAIR:
        target[list(HAIR)] = -1
        target[attribute] = 1
    else:
        target[attribute] = -source[attribute]
    return target


def read_attributes(paths: list[Path]) -> pd.DataFrame:
    """privface's default attribute model on the largest face of each image."""
    from privface.attributes.analysis import FaceAnalyzer, analyze_photos
    from privface.attributes.model import load_default_model

    analysis = analyze_photos(paths, analyzer=FaceAnalyzer(attribute_model=load_default_model()),
                              largest_only=True, workers=1)
    return analysis.largest_faces()


def paste(crop: np.ndarray, square: np.ndarray) -> np.ndarray:
    """A 128 px translation scaled to the crop's central square and put back in place."""
    height, width = crop.shape[:2]
    side = min(height, width)
    top, left = int(round((height - side) / 2.0)), int(round((width - side) / 2.0))
    out = crop.copy()
    out[top:top + side, left:left + side] = np.asarray(
        Image.fromarray(square).resize((side, side), Image.BILINEAR))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="G weights (default: the shipped stargan_celeba128_v1)")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--heldout", type=Path, default=REPO / "benchmarks" /
                        "stargan_heldout.txt")
    parser.add_argument("--limit", type=int, default=None, help="only the first N faces")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers (JSON) here")
    parser.add_argument("--grid", type=Path, default=None, help="write the 8 x 6 grid (PNG)")
    args = parser.parse_args()

    from privface.attributes.images import load_image
    from privface.generators.stargan import RELEASED_ATTRIBUTES, StarGANGenerator, celeba_square

    celeba = find_celeba(args.data, FULL)
    names = eval_names(args.heldout)[:args.limit]
    gan = StarGANGenerator(args.checkpoint)
    log(f"{len(names)} held-out faces, generator {gan.checkpoint}")
    crops = [load_image(celeba / FULL / name) for name in names]
    source = read_attributes([celeba / FULL / name for name in names])
    found = [i for i, name in enumerate(names) if name in source.index]
    log(f"source attributes read for {len(found)} of {len(names)} faces")
    names = [names[i] for i in found]
    crops = [crops[i] for i in found]
    source = source.loc[names, list(RELEASED_ATTRIBUTES)].astype(int)
    squares = np.stack([celeba_square(crop, gan.image_size) for crop in crops])

    results, columns = {}, [squares]
    with tempfile.TemporaryDirectory() as folder:
        for attribute in RELEASED_ATTRIBUTES:
            target = targets_for(source, attribute)
            translated = gan.generate(squares, None, target).faces
            columns.append(translated)
            paths = []
            for name, crop, face in zip(names, crops, translated):
                path = Path(folder) / f"{attribute}_{Path(name).stem}.png"  # lossless
                Image.fromarray(paste(crop, face)).save(path)
                paths.append(path)
            read = read_attributes(paths)
            keys = [f"{attribute}_{Path(n).stem}.png" for n in names]
            seen = np.array([k in read.index for k in keys])
            got = read.reindex(keys)[attribute].to_numpy()
            hit = (got == target[attribute].to_numpy()) & seen
            # Faces asked for a value they already had succeed by doing nothing; the share
            # among the others is what the translation itself achieves.
            changed = (source[attribute].to_numpy() != target[attribute].to_numpy()) & seen
            results[attribute] = {"success": round(float(hit.sum() / max(1, seen.sum())), 4),
                                  "faces": int(seen.sum()),
                                  "no_face_found": int((~seen).sum()),
                                  "success_changed": round(float(
                                      (hit & changed).sum() / max(1, changed.sum())), 4),
                                  "faces_changed": int(changed.sum())}
            log(f"{attribute}: {results[attribute]}")
    summary = {"checkpoint": str(gan.checkpoint), "faces": len(names), "attributes": results}
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    if args.grid is not None:
        rows = [np.concatenate([column[i] for column in columns], axis=1)
                for i in range(min(8, len(names)))]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.grid)
        log(f"grid ({len(rows)} faces: input, {', '.join(RELEASED_ATTRIBUTES)}) -> {args.grid}")


if __name__ == "__main__":
    main()
