"""``privface evaluate``: how private, how good-looking and how useful is an anonymized folder?"""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from privface.base.errors import InputError
from privface.base.files import check_distinct_paths

from .common import EXIT_BAD_INPUT, EXIT_OK, fail_input, split_names, stderr, write_atomically

_FORMATS = ("text", "json", "html")


def parse_fars(values: list[str] | None) -> tuple[float, ...]:
    """False-accept rates from repeatable, comma-separated ``--far`` options (default 1e-3, 1e-2).

    Examples
    --------
    >>> parse_fars(None)
    (0.001, 0.01)
    >>> parse_fars(["1e-4,0.001"])
    (0.0001, 0.001)
    >>> parse_fars(["2"])
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: --far must lie between 0 and 1 (exclusive), got '2'
    """
    names = split_names(values)
    if not names:
        return (1e-3, 1e-2)
    fars = []
    for name in names:
        try:
            far = float(name)
        except ValueError:
            raise InputError(f"--far expects a number such as 1e-3, got {name!r}") from None
        if not 0 < far < 1:
            raise InputError(f"--far must lie between 0 and 1 (exclusive), got {name!r}")
        fars.append(far)
    return tuple(sorted(set(fars)))


def parse_recognizers(values: list[str] | None) -> list[str]:
    """Recognizer names from repeatable, comma-separated ``--recognizer`` options.

    Examples
    --------
    >>> parse_recognizers(None)
    ['sface', 'dlib']
    >>> parse_recognizers(["dlib", "sface,dlib"])
    ['dlib', 'sface']
    >>> parse_recognizers(["arcface"])
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: unknown recognizer 'arcface'; expected dlib or sface
    """
    known = ("sface", "dlib")
    names = list(dict.fromkeys(n.lower() for n in split_names(values))) or list(known)
    for name in names:
        if name not in known:
            raise InputError(f"unknown recognizer {name!r}; expected {' or '.join(sorted(known))}")
    return names


def _check_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} folder not found", file=str(path))
    if not path.is_dir():
        raise InputError(f"expected the {what} folder of photos, found a file", file=str(path))


def evaluate_command(
    originals: Annotated[Path, typer.Argument(
        help="Folder of the original photos.", show_default=False)],
    anonymized: Annotated[Path, typer.Argument(
        help="Folder of the anonymized photos, with the originals' file names (the suffix may "
        "differ: a.jpg pairs with a.png).", show_default=False)],
    identities: Annotated[Optional[Path], typer.Option(
        "--identities", help="CelebA identity file (NNNNNN.jpg ID) for the originals: impostor "
        "pairs are then of different persons, and top-1 counts a nearest original of the same "
        "person as re-identified.")] = None,
    recognizer: Annotated[Optional[list[str]], typer.Option(
        "--recognizer", help="Face recognizer to attack with: sface, dlib; comma-separated or "
        "repeatable. Default: both.")] = None,
    far: Annotated[Optional[list[str]], typer.Option(
        "--far", help="False-accept rate at which to report match rates; comma-separated or "
        "repeatable. Default: 1e-3 and 1e-2.")] = None,
    attributes: Annotated[bool, typer.Option(
        "--attributes/--no-attributes", help="Measure attribute preservation with the shipped "
        "attribute model.")] = True,
    output_format: Annotated[str, typer.Option(
        "--format", help="Report format: text, json or html (one self-contained page with charts "
        "and before/after thumbnails; needs the report extra).")] = "text",
    per_pair: Annotated[bool, typer.Option(
        "--per-pair", help="JSON only: add one record per pair (distances, scores).")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the report to this file instead of standard output.")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Processes to run (default: one per core); the report is the same "
        "whatever the number.", min=1)] = None,
    reuse_run: Annotated[bool, typer.Option(
        "--reuse-run/--no-reuse-run", help="When ANONYMIZED is a `privface anonymize` output "
        "folder, take the originals' faces, landmarks, SFace embeddings and attributes from the "
        "run's saved analysis for every original whose bytes (SHA-256) and models are those the "
        "run used; the numbers are the same, faster.")] = True,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress or messages on standard error.")] = False,
) -> None:
    """Evaluate anonymized photos against their originals: identity leakage, quality, utility.

    Identity leakage: match rate at thresholds set by false-accept rates on impostor pairs of
    originals, and top-1 re-identification against the gallery of all originals, for each face
    recognizer (with --identities also per person: the mean of each person's rate), with 95%
    intervals. Quality: PSNR, SSIM, MS-SSIM of whole photos. Utility: face detection rate and
    attribute agreement. Photos that cannot be used are listed with the reason. A summary line
    with the throughput (pairs/s) goes to standard error. Exit status: 0 on success, 2 for bad
    input (a missing folder, no common file names, no usable pair).
    """
    try:
        if output_format not in _FORMATS:
            raise InputError("--format must be text or json, or html for a page with "
                             f"charts; got {output_format!r}")
        if output_format == "html":
            from privface.reports import require_matplotlib

            require_matplotlib()  # before the long run: a missing extra fails fast
        _check_folder(originals, "originals")
        _check_folder(anonymized, "anonymized")
        check_distinct_paths(inputs={"ORIGINALS": originals, "ANONYMIZED": anonymized,
                                     "--identities": identities}, outputs={"--output": output})
        from .common import note_subfolders

        for folder in (originals, anonymized):
            note_subfolders(folder, quiet=quiet)
        names = parse_recognizers(recognizer)
        fars = parse_fars(far)
        ids = None
        if identities is not None:
            from privface.privmetrics.readers import read_celeba_identities

            ids = read_celeba_identities(identities)
        model = _attribute_model() if attributes else None
        from privface.evaluation import evaluate_anonymization

        workers = workers or os.cpu_count() or 1
        started = time.perf_counter()
        report = _run(evaluate_anonymization, originals, anonymized, ids, names, fars,
                      model, workers=workers, show=not quiet, reuse_run=reuse_run)
        seconds = time.perf_counter() - started
        if report.pairs == 0:
            reasons = "; ".join(f"{r.file}: {r.reason}"
                                for r in report.skipped.head(3).itertuples(index=False))
            raise InputError(f"no usable pair of photos ({len(report.skipped):,} skipped; "
                             f"first: {reasons})", file=str(originals))
        if output_format == "json":
            text = report.to_json(per_pair=per_pair) + "\n"
        elif output_format == "html":
            from privface.reports import render_evaluation

            text = render_evaluation(report)
        else:
            text = report.to_text() + "\n"
        summary = _summary(report.pairs, seconds, workers)
        if output is not None:
            write_atomically(output, text)
            if not quiet:
                stderr.print(f"{summary}; report written to {output}")
        else:
            typer.echo(text, nl=False)
            if not quiet:
                stderr.print(summary)
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    except ImportError as exc:
        # The faces extra is missing: the message says what to install.
        stderr.print(f"[bold red]privface: error:[/] {exc}", markup=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(EXIT_OK)


def _summary(pairs: int, seconds: float, workers: int) -> str:
    """The closing line on standard error: pairs, time and throughput.

    Examples
    --------
    >>> _summary(200, 80.0, 2)
    'privface evaluate: 200 pairs in 80.0 s (2.50 pairs/s, 2 workers)'
    """
    rate = f"{pairs / seconds:.2f} pairs/s" if seconds > 0 else "- pairs/s"
    return (f"privface evaluate: {pairs:,} pairs in {seconds:.1f} s ({rate}, {workers} "
            f"worker{'s' if workers != 1 else ''})")


def _attribute_model():
    """The shipped attribute model, loaded before the long run so that a missing one fails fast."""
    try:
        from privface.attributes.model import load_default_model

        return load_default_model()
    except (ImportError, OSError, InputError) as exc:
        raise InputError(f"cannot load the attribute model ({exc}); evaluate without "
                         "attributes with --no-attributes") from None


def _run(evaluate, originals, anonymized, ids, names, fars, model, *, workers: int,
         show: bool, reuse_run: bool = True):
    """Run the evaluation with a progress bar on a terminal's standard error."""
    kwargs = dict(identities=ids, recognizers=names, fars=fars, attribute_model=model,
                  attributes=model is not None, workers=workers, reuse_run=reuse_run)
    if not (show and sys.stderr.isatty()):
        return evaluate(originals, anonymized, **kwargs)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("Evaluating", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, transient=True) as bar:
        task = bar.add_task("pairs", total=None)

        def on_pair(_name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return evaluate(originals, anonymized, on_pair=on_pair, **kwargs)
