#!/usr/bin/env python
"""AnonymousNet's Table 1 on real faces: quality, leakage and utility of each generator.

For every configuration (blur, pixelate, mask, k-Same-Select with k = 2, 5, 10 with identities and
k = 5 with persons found by SFace; on request k-Same's whole crop ``ksame*-crop`` and its face
region without the 2k margin ``ksame5-region1``; StarGAN when ``--checkpoint`` is given) the
script runs the
photo pipeline (:func:`privface.pipeline.anonymize_photos`, the same call as ``privface anonymize
PHOTOS_DIR``) on a subset of the shared 200-identity CelebA set and measures the output with
:func:`privface.evaluation.evaluate_anonymization` (the same call as ``privface evaluate``), with
the identities: PSNR / SSIM / MS-SSIM, top-1 re-identification (face and person level) and match
rate at FAR 1e-3 for SFace and dlib, detection rate, attribute preservation, and the pipeline's
throughput (photos/s with ``--workers`` processes).

Run from the repository root (the photos are linked, never copied into the repository)::

    .venv/bin/python benchmarks/bench_generators.py --persons 40 --photos 30 \\
        --out /tmp/bench_generators.json
    .venv/bin/python benchmarks/bench_generators.py --configs blur,ksame5 --persons 5 --photos 6
    .venv/bin/python benchmarks/bench_generators.py --heldout benchmarks/stargan_heldout.txt \\
        --configs blur,ksame5 --allow-collapse \\
        --checkpoint generators/models/stargan_celeba128_v1-00001-of-00002.safetensors

The JSON holds every number of the evaluation reports; the Markdown table printed at the end is
the one in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from common import default_data_dir, find_celeba, log, machine_info, write_json

CONFIGS = {
    "blur": {"generator": "blur", "params": {"sigma": 8}},
    "pixelate": {"generator": "pixelate", "params": {"block": 12}},
    "mask": {"generator": "mask", "params": {}},
    # k-Same's default: the face region, averages of 2k persons
    "ksame2": {"generator": "ksame", "k": 2},
    "ksame5": {"generator": "ksame", "k": 5},
    "ksame10": {"generator": "ksame", "k": 10},
    "ksame5-noid": {"generator": "ksame", "k": 5, "identities": False},
    # the face region with averages of k persons (no margin)
    "ksame5-region1": {"generator": "ksame", "k": 5, "params": {"margin": 1}},
    # the whole aligned crop (region=false), averages of k persons
    "ksame2-crop": {"generator": "ksame", "k": 2, "params": {"region": False}},
    "ksame5-crop": {"generator": "ksame", "k": 5, "params": {"region": False}},
    "ksame10-crop": {"generator": "ksame", "k": 10, "params": {"region": False}},
    # the photo's own light on the averages (--param shading=0.25)
    "ksame2-light": {"generator": "ksame", "k": 2, "params": {"shading": 0.25}},
    "ksame5-light": {"generator": "ksame", "k": 5, "params": {"shading": 0.25}},
    "stargan": {"generator": "stargan", "params": {}},
}


def subset(celeba: Path, persons: int, photos: int, folder: Path,
           only: list[str] | None = None):
    """Symbolic links to ``photos`` photos of each of the first ``persons`` identities, or to
    the photos named in ``only``."""
    from privface.privmetrics.readers import read_celeba_identities

    source = celeba / "img_align_celeba_200ids"
    names = sorted(p.name for p in source.iterdir())
    ids = read_celeba_identities(celeba / "identity_CelebA.txt").reindex(names)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if only is not None:
        chosen = sorted(only)
    else:
        chosen = [name for person in sorted(ids.unique())[:persons]
                  for name in sorted(ids.index[ids == person])[:photos]]
    for name in chosen:
        (folder / name).symlink_to(source / name)
    return ids.loc[chosen]


def row(name: str, report: dict, run: dict) -> dict:
    """The Table 1 numbers of one configuration."""
    identity = report["identity"]
    out = {"config": name, "photos_per_second": run["photos_per_second"],
           "written": run["photos"]["written"], "psnr": report["quality"]["psnr"],
           "ssim": report["quality"]["ssim"], "ms_ssim": report["quality"]["ms_ssim"],
           "detection_rate": report["detection_rate"],
           "attributes_preserved": report["attributes"]["preserved_mean"]}
    for rec, values in identity.items():
        out[f"{rec}_top1"] = values["top1_reid"]
        out[f"{rec}_top1_person"] = values.get("top1_reid_person")
        out[f"{rec}_match_1e-3"] = values["match_rate_far_1e-3"]
        out[f"{rec}_same_photo"] = values.get("top1_same_photo")
        out[f"{rec}_other_photos_person"] = values.get("top1_other_photos_person")
    if "ksame" in run:
        out["ksame_k_min"] = run["ksame"]["k_min"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--persons", type=int, default=40)
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--configs",
                        default="blur,pixelate,mask,ksame2,ksame5,ksame10,ksame5-noid")
    parser.add_argument("--checkpoint", type=Path, help="StarGAN weights (adds 'stargan')")
    parser.add_argument("--heldout", type=Path,
                        help="StarGAN hold-out list (benchmarks/stargan_heldout.txt): use its "
                             "evaluation faces instead of --persons/--photos")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_generators"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_generators.json"))
    parser.add_argument("--allow-collapse", action="store_true",
                        help="release plans that erase a group (as privface anonymize "
                             "--allow-collapse); without it such a configuration is refused")
    parser.add_argument("--png", type=Path, help="scatter plot of SSIM against top-1")
    parser.add_argument("--replot", action="store_true",
                        help="only print the table and plot of an earlier --out")
    args = parser.parse_args()
    if args.replot:
        report(json.loads(args.out.read_text())["results"], args.png)
        return

    from privface.evaluation import evaluate_anonymization
    from privface.pipeline import anonymize_photos
    from privface.pipeline.targets import CollapseError

    celeba = find_celeba(args.data, "img_align_celeba_200ids", "identity_CelebA.txt")
    photos = args.workdir / "originals"
    only = None
    if args.heldout is not None:
        from stargan_eval import eval_names

        only = eval_names(args.heldout)
    identities = subset(celeba, args.persons, args.photos, photos, only)
    log(f"{len(identities):,} photos of {identities.nunique()} persons in {photos}")
    names = [c for c in args.configs.split(",") if c]
    if args.checkpoint is not None and "stargan" not in names:
        names.append("stargan")
    results = []
    for name in names:
        config = dict(CONFIGS[name])
        params = dict(config.get("params", {}))
        if name == "stargan":
            if args.checkpoint is None:
                log("stargan: no --checkpoint, skipped")
                continue
            params["checkpoint"] = str(args.checkpoint)
        out = args.workdir / name
        if out.exists():
            shutil.rmtree(out)
        started = time.perf_counter()
        try:
            run = anonymize_photos(photos, out, generator=config["generator"],
                                   generator_params=params, k=config.get("k"),
                                   identities=identities if config.get("identities", True)
                                   else None, workers=args.workers,
                                   allow_collapse=args.allow_collapse).summary.to_dict()
        except CollapseError as refused:
            # Too few persons for the generator's groups in any class but one: the pipeline
            # refuses (as privface anonymize would); the table says so.
            log(f"{name}: refused: {refused}")
            results.append({"config": name, "refused": str(refused),
                            "row": {"config": name, "refused": "collapse"}})
            write_json(args.out, {"machine": machine_info(), "persons": args.persons,
                                  "photos": args.photos, "results": results}, indent=1,
                       default=str)
            continue
        log(f"{name}: anonymized {run['photos']['written']:,} photos in "
            f"{time.perf_counter() - started:.0f} s ({run['photos_per_second']} photos/s)")
        started = time.perf_counter()
        evaluation = evaluate_anonymization(photos, out, identities=identities,
                                            workers=args.workers).to_dict()
        log(f"{name}: evaluated in {time.perf_counter() - started:.0f} s")
        results.append({"config": name, "run": run, "evaluation": evaluation,
                        "row": row(name, evaluation, run)})
        write_json(args.out, {"machine": machine_info(), "persons": args.persons,
                              "photos": args.photos, "results": results}, indent=1, default=str)
    report(results, args.png)
    log(f"wrote {args.out}")


def report(results: list[dict], png: Path | None) -> None:
    """The Markdown table of benchmarks/README.md and, with ``png``, the scatter plot of
    quality (SSIM) against privacy (person-level top-1), one point per configuration and
    recognizer, with each k-Same point's 1/k."""
    columns = ["config", "psnr", "ssim", "ms_ssim", "sface_top1_person", "sface_same_photo",
               "sface_other_photos_person", "dlib_top1_person", "dlib_same_photo",
               "dlib_other_photos_person", "detection_rate", "attributes_preserved", "written",
               "photos_per_second"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for result in results:
        values = result["row"]
        if values.get("refused"):
            print(f"| {values['config']} | refused: {values['refused']} |")
            continue
        cells = [values.get(c) for c in columns]
        print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                for v in cells) + " |")
    if png is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    for result in results:
        values = result["row"]
        sface, dlib = values.get("sface_top1_person"), values.get("dlib_top1_person")
        if sface is None or dlib is None or values.get("ssim") is None:
            continue
        colour = "tab:orange" if "crop" in values["config"] else (
            "tab:blue" if values["config"].startswith("ksame") else "tab:grey")
        # One configuration: SFace (filled) and dlib (open) joined by a line, labelled once.
        axis.plot([sface, dlib], [values["ssim"]] * 2, color=colour, lw=0.6)
        axis.scatter(sface, values["ssim"], marker="o", color=colour)
        axis.scatter(dlib, values["ssim"], marker="s", facecolors="none", edgecolors=colour)
        axis.annotate(values["config"], (max(sface, dlib), values["ssim"]), fontsize=6,
                      xytext=(4, -2), textcoords="offset points")
    for k in sorted({CONFIGS.get(r["config"], {}).get("k") for r in results} - {None}):
        axis.axvline(1 / k, color="grey", lw=0.6, ls=":")
        axis.text(1 / k, 0.02, f"1/{k}", fontsize=6, color="grey",
                  transform=axis.get_xaxis_transform())
    axis.axhline(0.7894, color="tab:red", lw=0.6, ls="--")
    axis.text(0.99, 0.7894, "paper's SSIM 0.7894", fontsize=6, color="tab:red", ha="right",
              va="bottom", transform=axis.get_yaxis_transform())
    axis.set_xlabel("top-1 re-identification per person (filled: SFace, open: dlib)")
    axis.set_ylabel("SSIM")
    axis.set_title("Quality against privacy, every generator on the same photos "
                   "(blue: k-Same face region, orange: whole crop)", fontsize=8)
    figure.tight_layout()
    figure.savefig(png)
    log(f"wrote {png}")


if __name__ == "__main__":
    main()
