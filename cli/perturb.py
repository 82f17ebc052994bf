"""``privface perturb``: compute a universal adversarial perturbation, and add it to photos."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.base.errors import InputError
from privface.base.files import check_distinct_paths

from .common import EXIT_OK, fail_input, stderr

perturb_app = typer.Typer(help="Universal adversarial perturbations (stage IV): train one on "
                          "faces, add it to photos.", no_args_is_help=True,
                          add_completion=False, pretty_exceptions_enable=False)


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError('perturbations need torch: pip install "privface[adversarial]"'
                         ) from None


@perturb_app.command("train")
def perturb_train_command(
    images: Annotated[Path, typer.Option(
        "--images", help="Folder of face photos (CelebA's aligned crops or any photos).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the perturbation (.npz).")] = Path("uap.npz"),
    model: Annotated[str, typer.Option(
        "--model", help="What to fool: 'attributes' (the attribute CNN: a chosen attribute "
        "flips) or 'recognizer' (the face embedding network over the photos' identities: the "
        "top-1 identity changes).")] = "attributes",
    identities: Annotated[Optional[Path], typer.Option(
        "--identities", help="CelebA identity file (NNNNNN.jpg ID); needed for --model "
        "recognizer.")] = None,
    attributes: Annotated[str, typer.Option(
        "--attributes", help="Attributes whose flip counts (comma-separated, or 'all').")
    ] = "Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="Weights of the attacked network (default: the shipped ones).")
    ] = None,
    p: Annotated[str, typer.Option("--p", help="Norm of the budget: inf or 2.")] = "inf",
    xi: Annotated[float, typer.Option(
        "--xi", help="Budget: the perturbation's l_p norm, images in [0, 1] (0.04 in l_inf is "
        "10 grey levels).", min=0.0)] = 0.04,
    delta: Annotated[float, typer.Option(
        "--delta", help="Stop once the fooling rate on the photos exceeds 1 - delta.",
        min=0.0, max=0.999)] = 0.2,
    max_passes: Annotated[int, typer.Option(
        "--max-passes", help="Passes over the photos at most.", min=1)] = 10,
    overshoot: Annotated[float, typer.Option("--overshoot", help="DeepFool's overshoot.",
                                             min=0.0)] = 0.02,
    max_iter: Annotated[int, typer.Option("--max-iter", help="DeepFool's steps per image.",
                                          min=1)] = 10,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Photos attacked together (1: the paper's algorithm exactly; more "
        "is faster, with slightly stale updates).", min=1)] = 1,
    size: Annotated[Optional[str], typer.Option(
        "--size", help="Resolution of the perturbation in CelebA's aligned geometry, HxW "
        "(default: the network's input size).")] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", help="Use the first N photos (by file name).", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Seed for the order of the photos (OS entropy otherwise); recorded.",
        show_default=False, min=0)] = None,
    device: Annotated[str, typer.Option("--device", help="Torch device, e.g. cuda.")] = "cpu",
) -> None:
    """Compute a universal adversarial perturbation (Moosavi-Dezfooli et al. 2017) on photos.

    Exit status: 0 on success (also when the target fooling rate was not reached: the output
    says so), 2 for bad input.
    """
    from .common import split_names

    try:
        check_distinct_paths(inputs={"--images": images, "--identities": identities,
                                     "--weights": weights}, outputs={"--out": out})
        _require_torch()
        from privface.adversarial.folders import folder_uap, parse_size
        from privface.adversarial.norms import check_p

        try:
            norm = check_p(p)
        except ValueError as error:
            raise InputError(f"--p: {error}") from None
        ids = None
        if identities is not None:
            from privface.privmetrics.readers import read_celeba_identities

            ids = read_celeba_identities(identities)
        chosen = "all" if attributes.strip() == "all" else split_names([attributes])
        header = folder_uap(
            images, out, model=model, identities=ids, attributes=chosen, weights=weights,
            size=parse_size(size), limit=limit, xi=xi, p=norm, delta=delta,
            max_passes=max_passes, overshoot=overshoot, max_iter=max_iter,
            batch_size=batch_size, seed=seed, device=device,
            log=lambda line: stderr.print(f"privface perturb: {line}", markup=False))
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    rate = header["fooling_rate"]
    stderr.print(f"privface perturb: wrote {out} (l_{header['p']} norm "
                 f"{header['params']['norm']:.4g} <= xi {xi:g}); fooling rate {rate:.3f} on "
                 f"{header['images']['used']:,} faces after {header['passes']} pass(es)"
                 + ("" if header["converged"] else f", short of the target {1 - delta:.3f}")
                 + ("; seeded (reproducible)" if seed is not None else ""), markup=False)
    raise typer.Exit(EXIT_OK)


@perturb_app.command("apply")
def perturb_apply_command(
    perturbation: Annotated[Path, typer.Argument(
        help="A perturbation from `privface perturb train` (.npz).", show_default=False)],
    photos: Annotated[Path, typer.Argument(help="Folder of photos.", show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder for the perturbed photos and perturb.json.",
        show_default=False)],
    png: Annotated[bool, typer.Option(
        "--png", help="Write every photo as PNG (lossless: JPEG compression would alter the "
        "perturbation).")] = False,
) -> None:
    """Add a saved perturbation to every face of every photo of PHOTOS.

    Each face is aligned as in the rest of privface; the perturbation is resized to the aligned
    crop, warped back into the photo and added (no pixel changes by more than its l_inf norm).
    Photos without a face are listed and not written. Exit status: 0 on success, 2 for bad input.
    """
    from .common import require_faces_extra

    try:
        check_distinct_paths(inputs={"PERTURBATION": perturbation, "PHOTOS": photos},
                             outputs={"--out": out})
        _require_torch()
        require_faces_extra()
        from privface.adversarial.photos import RECORD, perturb_photos
        from privface.adversarial.storage import load_perturbation

        saved = load_perturbation(perturbation)
        if not photos.is_dir():
            raise InputError("expected a folder of photos", file=str(photos))
        run = perturb_photos(saved, photos, out, suffix=".png" if png else None)
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    quality = run.record["quality"]
    stderr.print(f"privface perturb: wrote {len(run.written):,} photo(s) to {out} "
                 f"(l_{saved.p} budget {saved.xi:g}"
                 + (f"; PSNR {quality['psnr']:.2f} dB, SSIM {quality['ssim']:.4f}"
                    if quality.get("psnr") is not None else "")
                 + f"), record {out / RECORD}", markup=False)
    if run.skipped:
        stderr.print(f"  skipped {len(run.skipped):,} photo(s): "
                     + "; ".join(f"{s['file']}: {s['reason']}" for s in run.skipped[:5])
                     + (" ..." if len(run.skipped) > 5 else ""), markup=False)
    raise typer.Exit(EXIT_OK)
