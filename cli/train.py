"""``privface train``: fit the models privface uses on your own labelled images."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.privmetrics.errors import InputError

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
        "name) and measure accuracy on the rest. Default: train on all.")] = None,
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

    from .photos import require_faces_extra

    try:
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
    except InputError as exc:
        raise fail_input(exc) from None
    stderr.print(f"privface train: model written to {out}")
    raise typer.Exit(EXIT_OK)
