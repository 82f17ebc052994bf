#!/usr/bin/env python
"""A picture of the default photo run: originals beside k-Same's outputs, full photos.

Runs :func:`privface.anonymize_photos` (k-Same-Select, the default generator) on ``--photos``
photos of each of the first ``--persons`` identities of the shared 200-identity CelebA set and
writes a PNG: ``--show`` originals of different persons in the top row, their outputs below.
The checklist to read it with is in docs/photo-pipeline.md ("Looking at the output")::

    .venv/bin/python benchmarks/ksame_grid.py --persons 40 --photos 5 --k 5 \\
        --png docs/ksame-grid.png

``--run OUT --originals PHOTOS`` draws the picture from a finished run instead (every n-th
written photo), e.g. the default run of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from bench_generators import subset
from common import default_data_dir, find_celeba, log


def grid(originals: list[np.ndarray], outputs: list[np.ndarray], scale: float) -> np.ndarray:
    """Originals in the top row, outputs below, 4 px white gaps, resized by ``scale``."""
    import cv2

    height = max(i.shape[0] for i in originals)
    width = max(i.shape[1] for i in originals)
    gap = 4
    sheet = np.full((2 * height + gap, len(originals) * (width + gap) - gap, 3), 255, np.uint8)
    for column, (before, after) in enumerate(zip(originals, outputs)):
        x = column * (width + gap)
        sheet[:before.shape[0], x:x + before.shape[1]] = before
        sheet[height + gap:height + gap + after.shape[0], x:x + after.shape[1]] = after
    size = (round(sheet.shape[1] * scale), round(sheet.shape[0] * scale))
    return cv2.resize(sheet, size, interpolation=cv2.INTER_AREA) if scale != 1 else sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--persons", type=int, default=40)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--show", type=int, default=8, help="photos in the picture")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ksame_grid"))
    parser.add_argument("--png", type=Path, default=Path("docs/ksame-grid.png"))
    parser.add_argument("--reuse", action="store_true", help="keep an earlier run's outputs")
    parser.add_argument("--crop", action="store_true",
                        help="k-Same's whole-crop mode (--param region=false)")
    parser.add_argument("--run", type=Path, help="a finished run's OUT folder (no new run)")
    parser.add_argument("--originals", type=Path, help="with --run: the photos it read")
    args = parser.parse_args()

    from privface.attributes.images import load_image
    from privface.pipeline import anonymize_photos

    if args.run is not None:
        if args.originals is None:
            parser.error("--run needs --originals")
        written = sorted(p.name for p in args.run.iterdir()
                         if p.suffix.lower() in (".jpg", ".png"))
        chosen = written[::max(1, len(written) // args.show)][:args.show]
        log(f"showing {chosen} of {len(written)} written photos")
        draw([load_image(args.originals / n) for n in chosen],
             [load_image(args.run / n) for n in chosen], args)
        return
    celeba = find_celeba(args.data, "img_align_celeba_200ids", "identity_CelebA.txt")
    photos, out = args.workdir / "originals", args.workdir / "out"
    if not args.reuse:
        identities = subset(celeba, args.persons, args.photos, photos)
        if out.exists():
            shutil.rmtree(out)
        anonymize_photos(photos, out, k=args.k, identities=identities, workers=args.workers,
                         generator_params={"region": False} if args.crop else None)
    written = sorted(p.name for p in out.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    # One photo per person: the first written photo of every args.photos-th input.
    names = sorted(p.name for p in photos.iterdir())
    chosen = [n for n in names[::args.photos] if n in written][:args.show]
    log(f"{len(written)} of {len(names)} photos written; showing {chosen}")
    draw([load_image(photos / n) for n in chosen], [load_image(out / n) for n in chosen], args)


def draw(before: list[np.ndarray], after: list[np.ndarray], args) -> None:
    """Write the grid of ``before`` above ``after`` to ``args.png``."""
    from PIL import Image

    args.png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid(before, after, args.scale)).save(args.png, optimize=True)
    log(f"wrote {args.png} ({args.png.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
