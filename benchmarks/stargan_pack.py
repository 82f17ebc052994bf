#!/usr/bin/env python
"""Pack CelebA faces and labels for training StarGAN on the accelerator machine (issue 19).

The accelerator machine receives only the working tree (64 MiB in all), so the training data
travels as an ignored folder named in ``carry``: ``.stargan-pack/`` at the repository root.

What goes in (all from ``$PRIVFACE_DATA/celeba``, never tracked by git):

- ``images.zip`` (stored, not compressed: JPEGs do not shrink; one file travels faster and
  counts no per-file disk blocks; ``benchmarks/stargan_gpu_job.sh`` unpacks it): the
  200-identity full-size crops (178 x 218), minus the held-out identities,
  centre-cropped to 178 x 178 and resized to 128 x 128 (``celeba_square``, exactly the training
  preprocessing) as JPEG (``--quality``, 80). Training reads them unchanged (128 px in, 128 px
  used).
- in ``images.zip`` also: the first ``--small-count`` labelled 89 x 109 crops (images 1..10,000),
  copied byte for byte, minus any image of a held-out identity or already in the full-size set.
  They are *not* upscaled in the pack: the trainer's ``celeba_square`` crops 89 x 89 and
  resizes to 128 when it reads them, as for any scaled copy, so the pack stays small and the
  pixels stay CelebA's. They bring thousands of identities (the 200-id set has 190 after the
  hold-out) and official hair-colour labels, at the price of softer pixels.
- ``list_attr_stargan.txt``: the 40 attributes in CelebA's layout. Images up to 020000.jpg take
  CelebA's official labels (``list_attr_celeba_first20k.txt``); the others (full-size images
  above 020000) take the labels of privface's default attribute model
  (``celeba_attributes_v1.npz``: SFace features + ridge, through the photo pipeline's
  detect -> landmarks -> align path, as ``privface predict`` does); images where it finds no
  face are left out.
- ``provenance.csv``: per image its source folder, its label source (``celeba`` or
  ``privface:celeba_attributes_v1``) and its CelebA identity.
- ``manifest.json``: counts, size, the held-out identities.

Held out, never packed: ``--holdout-ids`` (10) whole identities of the 200-identity set, drawn with
a fixed seed; ``benchmarks/stargan_heldout.txt`` lists their 300 images, and the 200 marked
``eval`` (the first 20 of each identity by file name) are the faces the trained model is measured
on.

Run from the repository root (about 15 minutes on one busy core, most of it labelling)::

    .venv/bin/python benchmarks/stargan_pack.py            # writes .stargan-pack/
    du -sh .stargan-pack                                   # about 32 MiB

To train from the pack here: ``python -m zipfile -e .stargan-pack/images.zip /tmp/pack`` and
``--images /tmp/pack/images --labels .stargan-pack/list_attr_stargan.txt``.

The predicted labels are cached in ``.stargan-cache/predicted.txt`` (ignored, not carried); a
second run reuses them and takes seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, default_data_dir, find_celeba, log
from PIL import Image

FULL = "img_align_celeba_200ids"
SMALL = "img_align_celeba_89x109"
LABELS = "list_attr_celeba_first20k.txt"
IDENTITIES = "identity_CelebA.txt"
MODEL_LABEL = "privface:celeba_attributes_v1"


def choose_heldout(identities: pd.Series, full_names: list[str], count: int,
                   seed: int) -> list[int]:
    """``count`` identities of the full-size set, drawn with ``seed`` (sorted)."""
    ids = np.array(sorted(identities.loc[full_names].unique()))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(ids, count, replace=False))


def predict_labels(paths: list[Path], cache: Path, workers: int) -> pd.DataFrame:
    """privface's default attribute model on ``paths`` (cached in ``cache``, CelebA layout)."""
    from privface.privmetrics.readers import read_celeba_attributes, write_celeba_attributes

    if cache.is_file():
        cached = read_celeba_attributes(cache)
        if set(p.name for p in paths) <= set(cached.index) | _skipped_names(cache):
            log(f"reusing {len(cached):,} predicted label rows from {cache}")
            return cached
    from privface.attributes.analysis import FaceAnalyzer, analyze_photos
    from privface.attributes.model import load_default_model

    log(f"predicting the attributes of {len(paths):,} images with privface's default model "
        f"({workers} worker(s)) ...")
    analysis = analyze_photos(paths, analyzer=FaceAnalyzer(attribute_model=load_default_model()),
                              largest_only=True, workers=workers)
    largest = analysis.largest_faces()
    columns = [c for c in largest.columns if c not in ("face", "x", "y", "width", "height",
                                                       "score")]
    table = largest[columns].astype("int8")
    write_celeba_attributes(table, cache)
    skipped = sorted(str(name) for name in analysis.skipped["file"])
    cache.with_suffix(".skipped").write_text("".join(f"{n}\n" for n in skipped))
    log(f"{len(table):,} labelled, {len(skipped):,} without a face")
    return table


def _skipped_names(cache: Path) -> set[str]:
    path = cache.with_suffix(".skipped")
    return set(path.read_text().split()) if path.is_file() else set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=REPO / ".stargan-pack")
    parser.add_argument("--cache", type=Path, default=REPO / ".stargan-cache",
                        help="where predicted labels are kept between runs (not carried)")
    parser.add_argument("--heldout-list", type=Path, default=REPO / "benchmarks" /
                        "stargan_heldout.txt")
    parser.add_argument("--holdout-ids", type=int, default=10)
    parser.add_argument("--eval-per-id", type=int, default=20)
    # Smaller than the first run's pack (quality 90, 4,500 small faces: 44.2 MiB): since
    # privface ships StarGAN's weights the tracked tree is 26 MiB, and tree and pack must
    # travel together in 64 MiB.
    parser.add_argument("--small-count", type=int, default=3000,
                        help="89 x 109 labelled images to add (from 000001.jpg on)")
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    from privface.generators.stargan.data import celeba_square
    from privface.privmetrics.readers import (read_celeba_attributes, read_celeba_identities,
                                              write_celeba_attributes)

    celeba = find_celeba(args.data, FULL, SMALL, LABELS, IDENTITIES)
    identities = read_celeba_identities(celeba / IDENTITIES)
    official = read_celeba_attributes(celeba / LABELS)
    full_names = sorted(p.name for p in (celeba / FULL).glob("*.jpg"))
    heldout_ids = choose_heldout(identities, full_names, args.holdout_ids, args.seed)
    held = identities.loc[full_names]
    held = held[held.isin(heldout_ids)].sort_index()
    eval_mask = held.groupby(held).cumcount() < args.eval_per_id
    lines = ["# StarGAN hold-out (issue 19): images of the 200-identity CelebA set never packed "
             "for training; eval=1 marks the evaluation faces",
             f"# identities drawn with numpy default_rng({args.seed}) among the set's "
             f"{identities.loc[full_names].nunique()}: "
             + " ".join(map(str, heldout_ids)),
             "image identity eval"]
    lines += [f"{name} {ident} {int(e)}" for (name, ident), e in
              zip(held.items(), eval_mask.to_numpy())]
    args.heldout_list.write_text("\n".join(lines) + "\n")
    log(f"held out {len(held)} images of {len(heldout_ids)} identities "
        f"({int(eval_mask.sum())} for evaluation) -> {args.heldout_list}")
    excluded_ids = set(heldout_ids)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    images = args.cache / "images"  # staged here, zipped into the pack at the end
    images.mkdir(parents=True, exist_ok=True)
    if (out / "images").is_dir():  # the layout of an earlier version of this script
        shutil.rmtree(out / "images")
    keep_full = [n for n in full_names if int(identities.get(n, -1)) not in excluded_ids]
    official_full = [n for n in keep_full if n in official.index]
    to_predict = [celeba / FULL / n for n in keep_full if n not in official.index]
    predicted = predict_labels(to_predict, args.cache / "predicted.txt", args.workers)
    predicted_full = [n for n in keep_full if n not in official.index and n in predicted.index]

    log(f"writing {len(official_full) + len(predicted_full):,} full-size faces at "
        f"{args.size} px ...")
    for name in official_full + predicted_full:
        target = images / name
        if not target.is_file():
            face = np.asarray(Image.open(celeba / FULL / name).convert("RGB"))
            Image.fromarray(celeba_square(face, args.size)).save(target, "JPEG",
                                                                 quality=args.quality)
    small_all = sorted(p.name for p in (celeba / SMALL).glob("*.jpg"))
    small = [n for n in small_all if n in official.index and n not in set(keep_full)
             and n not in set(held.index)
             and int(identities.get(n, -1)) not in excluded_ids][:args.small_count]
    log(f"copying {len(small):,} 89 x 109 faces ...")
    for name in small:
        if not (images / name).is_file():
            shutil.copyfile(celeba / SMALL / name, images / name)
    wanted = set(official_full) | set(predicted_full) | set(small)
    for stale in images.iterdir():  # a previous run with other settings
        if stale.name not in wanted:
            stale.unlink()

    labels = pd.concat([official.loc[official_full + small],
                        predicted.loc[predicted_full, official.columns]]).sort_index()
    write_celeba_attributes(labels, out / "list_attr_stargan.txt")
    archive = out / "images.zip"
    with zipfile.ZipFile(archive.with_suffix(".tmp"), "w", zipfile.ZIP_STORED) as packed:
        for name in sorted(wanted):
            packed.write(images / name, f"images/{name}")
    archive.with_suffix(".tmp").replace(archive)
    provenance = pd.DataFrame({
        "image": labels.index,
        "source": [FULL if n in set(keep_full) else SMALL for n in labels.index],
        "labels": ["celeba" if n in official.index else MODEL_LABEL for n in labels.index],
        "identity": identities.reindex(labels.index).fillna(-1).astype(int).to_numpy()})
    provenance.to_csv(out / "provenance.csv", index=False)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = {
        "images": len(labels), "full_size_official_labels": len(official_full),
        "full_size_predicted_labels": len(predicted_full), "small_89x109": len(small),
        "identities": int(provenance["identity"].nunique()),
        "heldout_identities": heldout_ids, "heldout_list": str(args.heldout_list.name),
        "size_bytes": size, "jpeg_quality": args.quality, "image_size": args.size,
        "label_model": MODEL_LABEL,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"pack: {len(labels):,} images ({manifest['identities']:,} identities), "
        f"{size / 2**20:.1f} MiB in {out}")
    check_travel_size(size)


#: What the device tool sends in one call (the tracked tree and the carried paths), with
#: room for the tree to grow between packing and the call.
TRAVEL_LIMIT, TRAVEL_MARGIN = 64 * 2**20, 4 * 2**20


def check_travel_size(pack_bytes: int) -> None:
    """Stop with a clear message when the pack and the tracked tree would not travel together."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError) as error:
        log(f"could not list the tracked tree ({error}); check its size by hand")
        return
    tree = sum((REPO / name).stat().st_size for name in listed if name and (REPO / name).is_file())
    total = tree + pack_bytes
    log(f"with the tracked tree ({tree / 2**20:.1f} MiB) the device call carries "
        f"{total / 2**20:.1f} MiB of {TRAVEL_LIMIT / 2**20:.0f}")
    if total > TRAVEL_LIMIT - TRAVEL_MARGIN:
        raise SystemExit(f"tree and pack ({total / 2**20:.1f} MiB) leave less than "
                         f"{TRAVEL_MARGIN / 2**20:.0f} MiB of the device tool's "
                         f"{TRAVEL_LIMIT / 2**20:.0f} MiB: pack again with a lower --quality "
                         "or --small-count")


if __name__ == "__main__":
    main()
