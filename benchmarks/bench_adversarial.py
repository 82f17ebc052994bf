#!/usr/bin/env python
"""Stage IV on real faces: a universal perturbation against FGSM, PGD and Gaussian noise.

Two targets, each attacked white-box and measured on the models that were not attacked:

* **Attributes.** The attribute CNN (:mod:`privface.attributes.cnn`) on the shared CelebA crops
  (89 x 109, the data's own resolution, which is the frame: the network reads it through its own
  antialiased resize). A universal perturbation is computed on ``--attr-train`` images and every
  attack is applied to the held-out ``--attr-test`` images. Fooled: at least one of the five
  StarGAN / PPAS attributes flips. Transfer: the same on the shipped SFace-ridge attribute model.
* **Recognizer.** The face embedding network (:mod:`privface.attributes.embedding_net`) as a
  classifier over a gallery of persons of the 200-identity set (full-size 178 x 218 crops: the
  frame; each person's first ``--gallery`` photos form the gallery, the next ``--train`` train the
  perturbation, the last ``--test`` are attacked). Fooled: the top-1 person changes. Transfer:
  SFace and dlib, cropping each face where the clean photo's detection and landmarks put it,
  with their top-1 person against the gallery photos and their identity-match break rate at a
  false-accept rate of 1e-3 (threshold calibrated on the gallery's impostor pairs).

Every attack has the same budget (``--xi`` in ``--p``); Gaussian noise is scaled per image to the
budget and, as a second baseline, to the universal perturbation's l_2 norm. All numbers are
measured on the *released* 8-bit images (the change rounded towards zero: within the budget), as
they would be published. Perceptibility: PSNR and SSIM against the clean images.

Run from the repository root (about 20 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_adversarial.py --out /tmp/bench_adversarial.json
    .venv/bin/python benchmarks/bench_adversarial.py --quick      # a smoke run of a minute

The JSON holds every number; the Markdown tables printed at the end are the ones in
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import default_data_dir, find_celeba, log, machine_info, write_json

ATTACKS = ("uap", "fgsm", "pgd", "gauss", "gauss_l2")


def read_images(folder: Path, names: list[str]) -> np.ndarray:
    """The named images of ``folder`` as one uint8 RGB array (they share one size)."""
    from privface.attributes.images import load_image

    return np.stack([load_image(folder / name) for name in names])


def attacks(target, x_train, x_test, args, log_prefix: str) -> tuple[dict, dict]:
    """Every attack applied to ``x_test``: name -> perturbed floats; and the UAP's record."""
    import torch

    from privface.adversarial import (apply_perturbation, fgsm, gaussian_noise, pgd,
                                      universal_perturbation)

    started = time.perf_counter()
    result = universal_perturbation(
        target, x_train, xi=args.xi, p=args.p, delta=args.delta, max_passes=args.max_passes,
        max_iter=args.max_iter, overshoot=args.overshoot, batch_size=args.batch_size,
        seed=args.seed,
        on_pass=lambda n, rate: log(f"{log_prefix}: UAP pass {n}, fooling rate on the training "
                                    f"images {rate:.3f} ({time.perf_counter() - started:.0f} s)"))
    uap_seconds = time.perf_counter() - started
    out = {"uap": apply_perturbation(x_test, result.perturbation)}
    timings = {"uap": round(uap_seconds, 1)}
    for name, run in (("fgsm", lambda: fgsm(target, x_test, xi=args.xi, p=args.p)),
                      ("pgd", lambda: pgd(target, x_test, xi=args.xi, p=args.p,
                                          steps=args.pgd_steps, seed=args.seed)),
                      ("gauss", lambda: gaussian_noise(x_test, xi=args.xi, p=args.p,
                                                       seed=args.seed)),
                      ("gauss_l2", lambda: gaussian_noise(x_test, like=result.perturbation,
                                                          p=2, seed=args.seed))):
        started = time.perf_counter()
        out[name] = run()
        timings[name] = round(time.perf_counter() - started, 1)
        log(f"{log_prefix}: {name} on {len(x_test):,} images in {timings[name]:.0f} s")
    record = {"fooling_rates_train": result.fooling_rates, "passes": result.passes,
              "kept_pass": result.params["kept_pass"], "params": result.params,
              "l2_norm": float(torch.linalg.vector_norm(result.perturbation)),
              "linf_norm": float(result.perturbation.abs().max()), "seconds": timings}
    return out, record


def logits_of(target, x, batch_size: int = 256):
    """The target model's logits of ``x``, in evaluation mode and batches, without gradients."""
    import torch

    from privface.adversarial.classifiers import evaluating

    with torch.no_grad(), evaluating(target):
        return torch.cat([target.model(x[i:i + batch_size])
                          for i in range(0, len(x), batch_size)])


def released(clean: np.ndarray, x_clean, x_adv) -> np.ndarray:
    """The 8-bit images a user would publish: the change rounded towards zero, clipped."""
    from privface.adversarial import add_quantized

    return add_quantized(clean, (x_adv - x_clean).permute(0, 2, 3, 1).cpu().numpy())


def attribute_part(args, celeba: Path) -> dict:
    """The attribute CNN, white-box, and transfer to the shipped SFace-ridge model."""

    from privface.adversarial import label_flip_rates, perceptibility, to_tensor
    from privface.adversarial.classifiers import DEFAULT_ATTRIBUTES
    from privface.adversarial.evaluation import attribute_model_labels
    from privface.adversarial.models import attribute_classifier
    from privface.attributes.cnn import load_attribute_cnn
    from privface.attributes.model import load_default_model
    from privface.privmetrics.readers import read_celeba_attributes

    folder = celeba / "img_align_celeba_89x109"
    labels = read_celeba_attributes(celeba / "list_attr_celeba_first20k.txt")
    train_names = [f"{i:06d}.jpg" for i in range(*args.attr_train)]
    test_names = [f"{i:06d}.jpg" for i in range(*args.attr_test)]
    started = time.perf_counter()
    clean_train, clean_test = read_images(folder, train_names), read_images(folder, test_names)
    x_train, x_test = to_tensor(clean_train), to_tensor(clean_test)
    log(f"attributes: read {len(train_names):,} + {len(test_names):,} images "
        f"({time.perf_counter() - started:.0f} s)")
    cnn = load_attribute_cnn(args.cnn_weights)
    frame = tuple(x_test.shape[2:])
    target = attribute_classifier(cnn, attributes=DEFAULT_ATTRIBUTES, frame_size=frame)
    columns = [list(cnn.attributes).index(a) for a in DEFAULT_ATTRIBUTES]
    clean_logits = logits_of(target, x_test)
    truth = labels.loc[test_names].to_numpy() > 0
    accuracy = ((clean_logits.numpy() > 0) == truth).mean(axis=0)
    perturbed, uap = attacks(target, x_train, x_test, args, "attributes")
    ridge = load_default_model()
    ridge_columns = [list(ridge.attributes).index(a) for a in DEFAULT_ATTRIBUTES]
    started = time.perf_counter()
    ridge_clean = attribute_model_labels(ridge, clean_test)
    log(f"attributes: shipped SFace-ridge model on the clean images "
        f"({time.perf_counter() - started:.0f} s)")
    rows = {}
    for name, x_adv in perturbed.items():
        out = released(clean_test, x_test, x_adv)
        x_out = to_tensor(out)
        logits = logits_of(target, x_out)
        cnn_flips = label_flip_rates(clean_logits.numpy()[:, columns] > 0,
                                     logits.numpy()[:, columns] > 0, DEFAULT_ATTRIBUTES)
        all_flips = label_flip_rates(clean_logits.numpy() > 0, logits.numpy() > 0,
                                     cnn.attributes)
        ridge_out = attribute_model_labels(ridge, out)
        ridge_flips = label_flip_rates(ridge_clean[:, ridge_columns], ridge_out[:, ridge_columns],
                                       DEFAULT_ATTRIBUTES)
        rows[name] = {"fooling_rate": cnn_flips["any"], "per_attribute": cnn_flips,
                      "any_of_40": all_flips["any"],
                      "transfer_sface_ridge": ridge_flips["any"],
                      "transfer_per_attribute": ridge_flips["per_attribute"],
                      **perceptibility(clean_test, out)}
        log(f"attributes: {name}: fooling {rows[name]['fooling_rate']:.3f}, transfer "
            f"{rows[name]['transfer_sface_ridge']:.3f}, PSNR {rows[name]['psnr']:.2f}")
    return {"frame": list(frame), "train_images": f"{train_names[0]} .. {train_names[-1]}",
            "test_images": f"{test_names[0]} .. {test_names[-1]}",
            "cnn_accuracy_test": dict(zip(cnn.attributes, accuracy.round(4).tolist())),
            "cnn_weights": str(args.cnn_weights or "shipped"), "uap": uap, "attacks": rows}


def _persons(celeba: Path, args) -> tuple[list[str], list[str], list[str], dict]:
    """Gallery, training and test photos of the chosen persons, and each photo's person."""
    from privface.privmetrics.readers import read_celeba_identities

    source = celeba / "img_align_celeba_200ids"
    names = sorted(p.name for p in source.iterdir())
    ids = read_celeba_identities(celeba / "identity_CelebA.txt").reindex(names)
    persons = sorted(ids.unique())
    persons = persons[-args.persons:] if args.persons_from == "last" else persons[:args.persons]
    gallery, train, test = [], [], []
    for person in persons:
        own = sorted(ids.index[ids == person])
        gallery += own[:args.gallery]
        train += own[args.gallery:args.gallery + args.train]
        test += own[len(own) - args.test:]
    return gallery, train, test, ids.to_dict()


def recognizer_part(args, celeba: Path) -> dict:
    """The embedding network over a gallery, white-box, and transfer to SFace and dlib."""

    from privface.adversarial import perceptibility, to_tensor
    from privface.adversarial.evaluation import (locate_faces, match_break_rate,
                                                 recognizer_embeddings)
    from privface.evaluation.adversarial import top1_change_rate
    from privface.adversarial.models import FrameInput, embed, gallery_classifier
    from privface.attributes.embedding_net import FACE_BOX, load_face_embedding_net
    from privface.attributes.recognizers import (DlibRecognizer, SFaceRecognizer,
                                                 calibrate_threshold)
    from privface.evaluation import impostor_distances

    folder = celeba / "img_align_celeba_200ids"
    gallery_names, train_names, test_names, ids = _persons(celeba, args)
    started = time.perf_counter()
    clean_gallery = read_images(folder, gallery_names)
    clean_train, clean_test = read_images(folder, train_names), read_images(folder, test_names)
    x_gallery, x_train, x_test = (to_tensor(a) for a in (clean_gallery, clean_train, clean_test))
    gallery_ids = np.array([ids[n] for n in gallery_names])
    test_ids = np.array([ids[n] for n in test_names])
    log(f"recognizer: read {len(gallery_names) + len(train_names) + len(test_names):,} photos of "
        f"{len(set(gallery_ids))} persons ({time.perf_counter() - started:.0f} s)")
    net = load_face_embedding_net(args.embedding_weights)
    target = gallery_classifier(x_gallery, gallery_ids, net=net)
    classes = np.array(target.model.model.classes)
    reader = FrameInput(net, net.input_size, FACE_BOX)
    clean_top1 = classes[logits_of(target, x_test).argmax(1).numpy()]
    perturbed, uap = attacks(target, x_train, x_test, args, "recognizer")

    # Each recognizer's embeddings of the gallery, its threshold at FAR 1e-3 on impostor pairs.
    started = time.perf_counter()
    gallery_locations = locate_faces(clean_gallery)
    test_locations = locate_faces(clean_test)
    log(f"recognizer: located the faces of the gallery and test photos "
        f"({time.perf_counter() - started:.0f} s)")
    recognizers = {"embedding_net": None, "sface": SFaceRecognizer(), "dlib": DlibRecognizer()}
    metric = {"embedding_net": "cosine", "sface": "cosine", "dlib": "euclidean"}

    def embeddings(name: str, images: np.ndarray, locations) -> np.ndarray:
        if name == "embedding_net":
            return embed(reader, to_tensor(images)).numpy()
        return recognizer_embeddings(recognizers[name], images, locations)

    references, thresholds, clean_embeddings = {}, {}, {}
    for name in recognizers:
        gallery = embeddings(name, clean_gallery, gallery_locations)
        keep = ~np.isnan(gallery).any(axis=1)
        references[name] = (gallery[keep], gallery_ids[keep])
        thresholds[name] = calibrate_threshold(
            impostor_distances(gallery[keep], metric[name], gallery_ids[keep]), 1e-3)
        clean_embeddings[name] = embeddings(name, clean_test, test_locations)
    usable = np.array([loc is not None for loc in test_locations])
    rows = {}
    for attack, x_adv in perturbed.items():
        out = released(clean_test, x_test, x_adv)
        x_out = to_tensor(out)
        top1 = classes[logits_of(target, x_out).argmax(1).numpy()]
        row = {"fooling_rate": float((top1 != clean_top1).mean()), **perceptibility(clean_test,
                                                                                    out)}
        for name in recognizers:
            mask = usable if name != "embedding_net" else np.ones(len(out), bool)
            moved = embeddings(name, out, test_locations)
            gallery, gids = references[name]
            row[name] = {
                "top1_change": top1_change_rate(clean_embeddings[name][mask], moved[mask],
                                                gallery, gids, metric[name]),
                **match_break_rate(clean_embeddings[name][mask], moved[mask], test_ids[mask],
                                   gallery, gids, threshold=thresholds[name],
                                   metric=metric[name])}
        rows[attack] = row
        log(f"recognizer: {attack}: fooling {row['fooling_rate']:.3f}; match breaks "
            + ", ".join(f"{n} {row[n]['break_rate']:.3f}" for n in recognizers)
            + f"; PSNR {row['psnr']:.2f}")
    return {"frame": list(x_test.shape[2:]), "persons": int(len(set(gallery_ids))),
            "gallery_photos": len(gallery_names), "train_photos": len(train_names),
            "test_photos": len(test_names), "test_photos_with_a_face": int(usable.sum()),
            "clean_top1_accuracy": float((clean_top1 == test_ids).mean()),
            "thresholds_far_1e-3": thresholds,
            "embedding_weights": str(args.embedding_weights or "shipped"), "uap": uap,
            "attacks": rows}


def tables(results: dict) -> str:
    """The Markdown tables of benchmarks/README.md."""
    lines = []
    names = {"uap": "UAP (universal)", "fgsm": "FGSM (per image)", "pgd": "PGD (per image)",
             "gauss": "Gaussian, same budget", "gauss_l2": "Gaussian, UAP's l_2 norm"}
    if "attributes" in results:
        lines += ["| attack | CNN fooled (5 attr.) | CNN any of 40 | SFace-ridge fooled (transfer) "
                  "| PSNR | SSIM | max change (levels) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, row in results["attributes"]["attacks"].items():
            lines.append(f"| {names[name]} | {row['fooling_rate']:.3f} | {row['any_of_40']:.3f} | "
                         f"{row['transfer_sface_ridge']:.3f} | {row['psnr']:.2f} | "
                         f"{row['ssim']:.4f} | {row['linf_levels']} |")
        lines.append("")
    if "recognizer" in results:
        lines += ["| attack | gallery top-1 changed | net match broken | SFace top-1 changed | "
                  "SFace match broken | dlib top-1 changed | dlib match broken | PSNR | SSIM |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, row in results["recognizer"]["attacks"].items():
            lines.append(f"| {names[name]} | {row['fooling_rate']:.3f} | "
                         f"{row['embedding_net']['break_rate']:.3f} | "
                         f"{row['sface']['top1_change']:.3f} | {row['sface']['break_rate']:.3f} | "
                         f"{row['dlib']['top1_change']:.3f} | {row['dlib']['break_rate']:.3f} | "
                         f"{row['psnr']:.2f} | {row['ssim']:.4f} |")
    return "\n".join(lines)


def _range(text: str) -> tuple[int, int]:
    first, last = (int(v) for v in text.split("-"))
    return first, last + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--parts", default="attributes,recognizer")
    parser.add_argument("--xi", type=float, default=0.04)
    parser.add_argument("--p", default="inf")
    parser.add_argument("--delta", type=float, default=0.2)
    parser.add_argument("--max-passes", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--overshoot", type=float, default=0.02)
    parser.add_argument("--batch-size", type=int, default=16,
                        help="images per UAP update batch (1: the paper's algorithm exactly)")
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attr-train", type=_range, default=(6001, 8001),
                        help="CelebA image numbers the UAP is computed on, FIRST-LAST")
    parser.add_argument("--attr-test", type=_range, default=(8001, 9001),
                        help="held-out CelebA image numbers every attack is measured on")
    parser.add_argument("--persons", type=int, default=40)
    parser.add_argument("--persons-from", choices=("first", "last"), default="last",
                        help="which persons of the 200-identity set (sorted by identity)")
    parser.add_argument("--gallery", type=int, default=10)
    parser.add_argument("--train", type=int, default=10)
    parser.add_argument("--test", type=int, default=10)
    parser.add_argument("--cnn-weights", type=Path, help="attribute CNN weights (default: shipped)")
    parser.add_argument("--embedding-weights", type=Path,
                        help="face embedding weights (default: shipped)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_adversarial.json"))
    args = parser.parse_args()
    if args.quick:
        args.attr_train, args.attr_test = (6001, 6101), (8001, 8101)
        args.persons, args.gallery, args.train, args.test = 5, 5, 5, 5
        args.max_passes, args.pgd_steps = 2, 3

    import torch

    torch.set_num_threads(args.threads)
    celeba = find_celeba(args.data, "img_align_celeba_89x109", "img_align_celeba_200ids",
                         "identity_CelebA.txt", "list_attr_celeba_first20k.txt")
    results: dict = {"machine": machine_info(threads=args.threads, torch=torch.__version__),
                     "settings": {k: (str(v) if isinstance(v, Path) else v)
                                  for k, v in vars(args).items() if k != "data"}}
    started = time.perf_counter()
    for part in [p for p in args.parts.split(",") if p]:
        begun = time.perf_counter()
        results[part] = attribute_part(args, celeba) if part == "attributes" else \
            recognizer_part(args, celeba)
        results[part]["seconds"] = round(time.perf_counter() - begun, 1)
        write_json(args.out, results, indent=1, default=str)
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.out, results, indent=1, default=str)
    print(tables(results))
    log(f"wrote {args.out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
