"""``privface train``: fit the models privface uses on your own labelled images."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.base.errors import InputError
from privface.base.files import check_distinct_paths

from .common import EXIT_OK, fail_input, stderr, write_atomically

train_app = typer.Typer(help="Train privface's models on labelled images.",
                        no_args_is_help=True, add_completion=False,
                        pretty_exceptions_enable=False)


@train_app.command("attributes")
def train_attributes_command(
    images: Annotated[Path, typer.Option(
        "--images", help="Folder of face images (CelebA's aligned crops, or any photos).",
        show_default=False)],
    labels: Annotated[Path, typer.Option(
        "--labels", help="Attribute labels in CelebA's layout (list_attr_celeba.txt).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the model (.npz).")] = Path("attributes.npz"),
    train_count: Annotated[Optional[int], typer.Option(
        "--train-count", help="Train on the first N labelled images of the folder (by file "
        "name) and measure accuracy on the rest. Default: train on all.", min=1)] = None,
    flip: Annotated[bool, typer.Option(
        "--flip/--no-flip", help="Also train on mirrored faces.")] = True,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="Write per-attribute accuracy (JSON) here.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Processes to run (default: one per core).", min=1)] = None,
) -> None:
    """Train the attribute model: SFace features and one ridge classifier per attribute.

    Use the model with ``privface predict --model`` or as the library's ``AttributeModel``.
    """
    from privface.privmetrics.readers import read_celeba_attributes

    from .common import require_faces_extra

    try:
        check_distinct_paths(inputs={"--images": images, "--labels": labels},
                             outputs={"--out": out, "--report": report})
        require_faces_extra()
        from privface.attributes.model import AttributeModel
        from privface.attributes.training import fit_and_measure

        table = read_celeba_attributes(labels)
        stderr.print(f"privface train: aligning the images of {images} and reading their "
                     f"features with {workers or os.cpu_count()} process(es) ...")
        present = {p.name for p in images.iterdir()} if images.is_dir() else set()
        total = int(table.index.isin(list(present)).sum())
        with contextlib.ExitStack() as stack:
            advance = None
            if stderr.is_terminal and total:
                from rich.progress import Progress

                bar = stack.enter_context(Progress(console=stderr, transient=True))
                task = bar.add_task(f"Reading {total:,} images", total=total)
                advance = lambda done: bar.advance(task, done)  # noqa: E731
            model, accuracy, skipped = fit_and_measure(
                images, table, train_count=train_count, model=AttributeModel(flip=flip),
                workers=workers or os.cpu_count() or 1, on_images=advance)
        model.metadata["labels"] = labels.name
        if len(skipped):
            stderr.print(f"privface train: {len(skipped):,} image(s) left out, e.g. "
                         f"{skipped.iloc[0]['file']}: {skipped.iloc[0]['reason']}")
        summary = {"model": str(out), "train_images": model.metadata["train_images"]}
        if accuracy is not None:
            summary["test_accuracy"] = model.metadata["test_accuracy"]
            stderr.print(f"privface train: mean accuracy on held-out faces "
                         f"{accuracy['accuracy'].mean():.4f} (majority baseline "
                         f"{accuracy['majority_baseline'].mean():.4f})")
        model.save(out)
        if report is not None:
            write_atomically(report, json.dumps(summary, indent=2) + "\n")
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    stderr.print(f"privface train: model written to {out}")
    raise typer.Exit(EXIT_OK)


@train_app.command("stargan")
def train_stargan_command(
    images: Annotated[Path, typer.Option(
        "--images", help="Folder of CelebA's aligned crops (178 x 218, or a scaled copy).",
        show_default=False)],
    labels: Annotated[Path, typer.Option(
        "--labels", help="Attribute labels in CelebA's layout (list_attr_celeba.txt).",
        show_default=False)],
    attributes: Annotated[str, typer.Option(
        "--attributes", help="Attributes the generator learns to set, comma-separated, in "
        "label-vector order.")] = "Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
    image_size: Annotated[int, typer.Option(
        "--image-size", help="Side of the square the crops are resized to.", min=16)] = 128,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    iterations: Annotated[int, typer.Option(
        "--iterations", help="Iteration to stop after (the release trained 200,000).",
        min=1)] = 200_000,
    checkpoint_dir: Annotated[Path, typer.Option(
        "--checkpoint-dir", help="Where {iter}-G.ckpt, {iter}-D.ckpt and {iter}-opt.ckpt are "
        "written.")] = Path("stargan_checkpoints"),
    save_every: Annotated[int, typer.Option(
        "--save-every", help="Iterations between checkpoints (one is also written at the "
        "end).", min=1)] = 10_000,
    resume: Annotated[Optional[int], typer.Option(
        "--resume", help="Continue from the checkpoints of iteration ITER in "
        "--checkpoint-dir.", metavar="ITER", show_default=False, min=1)] = None,
    conv_dim: Annotated[int, typer.Option("--conv-dim", help="Generator and discriminator "
                                          "width.", min=1)] = 64,
    repeat_num: Annotated[int, typer.Option("--repeat-num", help="Residual blocks of the "
                                            "generator.", min=0)] = 6,
    d_repeat_num: Annotated[int, typer.Option("--d-repeat-num", help="Stride-2 convolutions "
                                              "of the discriminator.", min=1)] = 6,
    iterations_decay: Annotated[int, typer.Option(
        "--iterations-decay", help="Decay the learning rates linearly to 0 over this many "
        "last iterations (0: constant).", min=0)] = 0,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Seed for the initial weights and every random draw.",
        show_default=False, min=0)] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Processes reading images alongside training (0: none).",
        min=0)] = 0,
    device: Annotated[str, typer.Option("--device", help="Torch device, e.g. cuda (bf16 "
                                        "autocast, channels-last, cuDNN autotuner).")] = "cpu",
    precision: Annotated[str, typer.Option(
        "--precision", help="auto (bf16 on CUDA, fp32 elsewhere), bf16 or fp32. The gradient "
        "penalty is always fp32.")] = "auto",
    max_minutes: Annotated[Optional[float], typer.Option(
        "--max-minutes", help="Wall-clock budget: write checkpoints and stop after the first "
        "iteration that ends past it.", min=0.0, show_default=False)] = None,
    save_every_minutes: Annotated[Optional[float], typer.Option(
        "--save-every-minutes", help="Also write checkpoints every this many minutes.",
        min=0.0, show_default=False)] = None,
    preload: Annotated[bool, typer.Option(
        "--preload/--no-preload", help="Decode all images once and keep them on the device "
        "(the GPU never waits for JPEG decoding).")] = False,
    export_dir: Annotated[Optional[Path], typer.Option(
        "--export-dir", help="At every checkpoint, also write G in half precision as "
        "safetensors shards below 15 MiB here.", show_default=False)] = None,
    export_name: Annotated[str, typer.Option(
        "--export-name", help="File stem of the exported shards.")] = "stargan",
    log_every: Annotated[int, typer.Option(
        "--log-every", help="Iterations between loss lines on stderr.", min=1)] = 10,
) -> None:
    """Train StarGAN: WGAN-GP, lambda_cls 1, lambda_rec 10, lambda_gp 10, n_critic 5, Adam 1e-4.

    Checkpoints take the official release's names; use them with the generator ``stargan``.
    Checkpoints are written atomically and a run continues with ``--resume ITER``.
    """
    from .common import split_names

    try:
        check_distinct_paths(inputs={"--images": images, "--labels": labels},
                             outputs={"--checkpoint-dir": checkpoint_dir})
        try:
            from privface.generators.stargan import train_stargan
        except ImportError as error:
            raise InputError(f"{error}") from None
        train_stargan(images, labels, attributes=split_names([attributes]),
                      image_size=image_size, batch_size=batch_size, iterations=iterations,
                      checkpoint_dir=checkpoint_dir, save_every=save_every, resume=resume,
                      conv_dim=conv_dim, repeat_num=repeat_num, d_conv_dim=conv_dim,
                      d_repeat_num=d_repeat_num, iterations_decay=iterations_decay, seed=seed,
                      workers=workers, device=device, precision=precision,
                      max_minutes=max_minutes, save_every_minutes=save_every_minutes,
                      preload=preload, export_dir=export_dir, export_name=export_name,
                      log_every=log_every, log=lambda line: stderr.print(line, markup=False))
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    stderr.print(f"privface train: StarGAN checkpoints in {checkpoint_dir}")
    raise typer.Exit(EXIT_OK)


# -- the differentiable torch models (stage IV attacks them) ------------------------------------
EpochsOption = Annotated[int, typer.Option("--epochs", help="Passes over the training images.",
                                           min=1)]
SeedOption = Annotated[Optional[int], typer.Option(
    "--seed", help="Seed for the initial weights, batch order and augmentation (default: from "
    "OS entropy; the seed used is recorded in the file).", show_default=False, min=0)]
ThreadsOption = Annotated[Optional[int], typer.Option(
    "--threads", help="CPU threads torch may use (default: torch's choice).", min=1,
    show_default=False)]
DeviceOption = Annotated[str, typer.Option("--device", help="Torch device, e.g. cuda.")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=2)]
LrOption = Annotated[float, typer.Option("--lr", help="Peak learning rate.", min=0.0)]


def _train_torch_model(fit, out: Path, report: Optional[Path], threads: Optional[int],
                       summary_key: str, inputs: dict[str, Optional[Path]]) -> None:
    """Run ``fit() -> (model, metrics, skipped)``, save the model and the report; exit 0 or 2."""
    try:
        check_distinct_paths(inputs=inputs, outputs={"--out": out, "--report": report})
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        model, _, skipped = fit()
        if len(skipped):
            stderr.print(f"privface train: {len(skipped):,} image(s) left out, e.g. "
                         f"{skipped.iloc[0]['file']}: {skipped.iloc[0]['reason']}")
        model.save(out)
        if report is not None:
            summary = {"model": str(out), "seed": model.metadata.get("seed"),
                       summary_key: model.metadata.get(summary_key)}
            write_atomically(report, json.dumps(summary, indent=2) + "\n")
    except (InputError, ImportError, OSError) as exc:
        raise fail_input(exc if isinstance(exc, InputError) else InputError(str(exc))) from None
    stderr.print(f"privface train: model written to {out}")
    raise typer.Exit(EXIT_OK)


@train_app.command("attributes-cnn")
def train_attributes_cnn_command(
    images: Annotated[Path, typer.Option(
        "--images", help="Folder of CelebA-aligned face crops (178 x 218 or a scaled copy).",
        show_default=False)],
    labels: Annotated[Path, typer.Option(
        "--labels", help="Attribute labels in CelebA's layout (list_attr_celeba.txt).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the weights (.npz).")] = Path("attributes_cnn.npz"),
    train_count: Annotated[Optional[int], typer.Option(
        "--train-count", help="Train on the first N labelled images of the folder (by file "
        "name) and measure accuracy on the rest. Default: train on all.", min=1)] = None,
    epochs: EpochsOption = 30,
    batch_size: BatchOption = 128,
    lr: LrOption = 0.1,
    seed: SeedOption = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "cpu",
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="Write the held-out accuracy (JSON) here.")] = None,
) -> None:
    """Train the differentiable attribute CNN (40 CelebA attributes from pixels) from scratch.

    Load the result with ``privface.attributes.cnn.load_attribute_cnn(path)``.
    """
    from privface.privmetrics.readers import read_celeba_attributes

    def fit():
        from privface.attributes.torch_training import fit_attribute_cnn

        model, accuracy, skipped = fit_attribute_cnn(
            images, read_celeba_attributes(labels), train_count=train_count, epochs=epochs,
            batch_size=batch_size, lr=lr, seed=seed, device=device,
            log=lambda line: stderr.print(f"privface train: {line}", markup=False))
        if accuracy is not None:
            stderr.print(f"privface train: mean accuracy on held-out faces "
                         f"{accuracy['accuracy'].mean():.4f} (majority baseline "
                         f"{accuracy['majority_baseline'].mean():.4f})")
        return model, accuracy, skipped

    _train_torch_model(fit, out, report, threads, "test_accuracy",
                       {"--images": images, "--labels": labels})


@train_app.command("face-embedding")
def train_face_embedding_command(
    images: Annotated[Path, typer.Option(
        "--images", help="Folder of CelebA-aligned face crops of known people.",
        show_default=False)],
    identities: Annotated[Path, typer.Option(
        "--identities", help="Identity file in CelebA's layout (identity_CelebA.txt).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the weights (.npz).")] = Path("face_embedding.npz"),
    holdout: Annotated[int, typer.Option(
        "--holdout", help="People (the largest identity numbers) kept out of training to "
        "calibrate the match thresholds and measure verification.", min=0)] = 40,
    extra_images: Annotated[Optional[list[Path]], typer.Option(
        "--extra-images", help="More folders of CelebA-aligned crops, for training only: their "
        "photos of people not held out (at least two photos a person). Repeatable.",
        show_default=False)] = None,
    epochs: EpochsOption = 40,
    batch_size: BatchOption = 128,
    lr: LrOption = 0.1,
    seed: SeedOption = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "cpu",
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="Write the held-out verification numbers (JSON) here.")] = None,
) -> None:
    """Train the differentiable face embedding network (CosFace loss) from scratch.

    Load the result with ``privface.attributes.embedding_net.load_face_embedding_net(path)``.
    """
    from privface.privmetrics.readers import read_celeba_identities

    def fit():
        from privface.attributes.embedding_training import fit_face_embedding

        net, metrics, skipped = fit_face_embedding(
            images, read_celeba_identities(identities), holdout=holdout,
            extra_folders=extra_images or (), epochs=epochs, batch_size=batch_size, lr=lr,
            seed=seed, device=device,
            log=lambda line: stderr.print(f"privface train: {line}", markup=False))
        if metrics is not None:
            tar = ", ".join(f"TAR {v:.3f} at FAR {k}" for k, v in metrics["tar"].items())
            stderr.print(f"privface train: held-out people: ROC AUC {metrics['roc_auc']:.4f}, "
                         f"{tar}")
        return net, metrics, skipped

    _train_torch_model(fit, out, report, threads, "held_out",
                       {"--images": images, "--identities": identities,
                        **{f"--extra-images {p}": p for p in extra_images or ()}})
