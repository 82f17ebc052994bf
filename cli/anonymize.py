"""``privface anonymize``: make a face table or a folder of photos private, and certify it."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

import pandas as pd

from privface.privmetrics.anonymize import anonymize_table
from privface.base.errors import InputError
from privface.base.files import check_distinct_paths, committed_together
from privface.privmetrics.encoding import GENERALISED
from privface.privmetrics.readers import read_table_text, write_table

from .common import (EXIT_OK, DataArgument, DemoOption, IdentitiesOption, InputFormatOption,
                     OrderedOption, OrderOption, QiOption, SensitiveOption, fail_input, is_stdin,
                     load_table, ordered_columns, progress, resolve_columns, split_names, stderr,
                     write_atomically)


def _default_out(data: Optional[Path], demo: bool, fmt: str) -> Path:
    suffix = {"celeba": ".txt", "csv": ".csv", "tsv": ".tsv", "parquet": ".parquet"}[fmt]
    stem = ("demo" if demo or data is None else "stdin" if is_stdin(data)
            else data.name.rsplit(".", 1)[0])
    return Path(f"{stem}.anonymized{suffix}")


_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
             ".txt": "celeba"}


def _output_format(target: Path, input_fmt: str) -> str:
    """The format the output's suffix names; CelebA's layout only for a CelebA input.

    Without a suffix, the input's format when a reader tells it from the content (CelebA's
    layout, CSV), so that the output re-audits.
    """
    if not target.suffix and input_fmt in ("celeba", "csv"):
        return input_fmt
    fmt = _SUFFIXES.get(target.suffix.lower())
    if fmt is None or (fmt == "celeba" and input_fmt != "celeba"):
        usable = ".csv, .tsv, .parquet" + (" or .txt" if input_fmt == "celeba" else "")
        raise InputError(f"cannot write a table ending in {target.suffix or 'no suffix'!r}: "
                         f"the suffix decides the format; use {usable}"
                         + ("" if input_fmt == "celeba" else
                            " (.txt is CelebA's layout, for CelebA input only)"),
                         file=str(target))
    return fmt


def _check_outputs(data: Optional[Path], identities: Optional[Path], beside: Optional[Path],
                   target: Path, report: Optional[Path]) -> None:
    check_distinct_paths(
        inputs={"DATA": data, "--identities": identities, "the identities beside DATA": beside},
        outputs={"--out": target, "the certificate": Path(f"{target}.certificate.json"),
                 "--report": report})


def _with_input_text(table: pd.DataFrame, cells: pd.DataFrame, qi: list[str]) -> pd.DataFrame:
    """``table`` with every cell the anonymizer kept replaced by the input's exact text."""
    out = table.copy()
    for name in cells.columns:
        text = cells[name].to_numpy(dtype=object).copy()
        if name in qi:
            text[table[name].to_numpy(dtype=object) == GENERALISED] = GENERALISED
        out[name] = text
    out.index = cells.index
    return out


def anonymize_command(
    data: DataArgument = None,
    demo: DemoOption = False,
    qi: QiOption = None,
    sensitive: SensitiveOption = None,
    identities: IdentitiesOption = None,
    ordered: OrderedOption = None,
    order: OrderOption = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Require k-anonymity.", min=1)] = None,
    l: Annotated[Optional[int], typer.Option("--l", help="Require distinct l-diversity.",
                                             min=1)] = None,
    t: Annotated[Optional[float], typer.Option("--t", help="Require t-closeness.", min=0.0,
                                               max=1.0)] = None,
    epsilon: Annotated[Optional[float], typer.Option(
        "--epsilon", help="First apply randomized response to the quasi-identifiers with this "
        "total budget (epsilon-local differential privacy).")] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Seed the randomized response (reproducible, recorded in the "
        "certificate). Default: OS entropy.", min=0)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Where to write the anonymized table, in the format its suffix "
        "names (.csv, .tsv, .parquet; .txt for CelebA's layout); the certificate goes to "
        "OUT.certificate.json. Default: NAME.anonymized.EXT here.")
    ] = None,
    input_format: InputFormatOption = None,
    generator: Annotated[str, typer.Option(
        "--generator", help="Photos: the face generator: ksame (k-Same-Select), stargan, blur, "
        "pixelate, mask, diffusers, or an installed plug-in.")] = "ksame",
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", help="Photos: a generator parameter NAME=VALUE (e.g. sigma=4 for blur, "
        "block=8 for pixelate); repeatable.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(
        "--checkpoint", help="Photos: StarGAN generator weights (official 200000-G.ckpt, a "
        "{iter}-G.ckpt from `privface train stargan`, or a shard of its exported "
        ".safetensors; default: the weights shipped with privface, if any).")] = None,
    model_dir: Annotated[Optional[Path], typer.Option(
        "--model-dir", help="Photos: a local diffusers inpainting pipeline folder.")] = None,
    reference: Annotated[Optional[Path], typer.Option(
        "--reference", help="Photos: the reference population for k, l and t (a CelebA "
        "attribute file or table with identities). Default: the input photos.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Photos: processes for face analysis (default: one per core).",
        min=1)] = None,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Photos: predict the attributes of every written face and "
        "audit them with the persons, as an attacker would (about 60 ms per face).")] = True,
    withhold: Annotated[bool, typer.Option(
        "--withhold/--release-all", help="Photos, with --verify: do not write a photo in which "
        "the model reads another value than the target off an anonymized face, for an attribute "
        "the generator sets. Default: release them; the run is audited on what the model reads "
        "off the written faces.")] = False,
    allow_collapse: Annotated[bool, typer.Option(
        "--allow-collapse", help="Photos: accept targets that put every face into one class or "
        "change more than half of the controlled attributes per face on average (refused "
        "by default, exit 1).")] = False,
    confidence: Annotated[float, typer.Option(
        "--confidence", help="Photos: attribute readings less probable than this are "
        "uncertain and never changed.", min=0.5, max=0.999)] = 0.8,
    perturb: Annotated[Optional[str], typer.Option(
        "--perturb", help="Photos: stage IV, an adversarial perturbation added to every face "
        "after generation: uap (a file from `privface perturb train`, given with --uap), fgsm or "
        "pgd (against the attribute CNN), gauss (noise of the same budget). Recorded in every "
        "certificate.")] = None,
    xi: Annotated[Optional[float], typer.Option(
        "--xi", help="Photos, with --perturb fgsm|pgd|gauss: the budget, the perturbation's l_p "
        "norm on images in [0, 1] (0.04 in l_inf is 10 grey levels).", min=0.0)] = None,
    uap: Annotated[Optional[Path], typer.Option(
        "--uap", help="Photos, with --perturb uap: the universal perturbation (.npz).")] = None,
    perturb_norm: Annotated[str, typer.Option(
        "--perturb-norm", help="Photos, with --perturb fgsm|pgd|gauss: the norm of the budget, "
        "inf or 2.")] = "inf",
    resume: Annotated[bool, typer.Option(
        "--resume/--restart", help="Photos: continue an interrupted run in --out (same "
        "settings), or start again.")] = True,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="Also write a self-contained HTML report to this file: the "
        "certificate with charts; for photos, the run with before/after thumbnails (needs the "
        "report extra).")] = None,
) -> None:
    """Make data private: generalise a table, or anonymize the faces of a folder of photos.

    A table: quasi-identifiers are generalised until it meets k, l and t; the output's own audit
    passes by construction (`privface audit OUT` with the same requirements exits 0). Without
    --sensitive or --identities, l and t use identity_CelebA.txt when it lies beside a CelebA
    attribute file.

    A folder of photos: detect, align, predict attributes, choose private target attributes
    (PPAS: k, l and t over persons against --reference, --epsilon), generate new faces, paste
    them back; writes the photos, certificates/NAME.json per photo and run.json to --out.

    Exit status: 0 on success, 2 for bad input or requirements that cannot be met.
    """
    if data is not None and data.is_dir():
        from .anonymize_photos import run_photos
        from .common import note_subfolders

        table_only = {"--sensitive": sensitive, "--ordered": ordered, "--order": order,
                      "--input-format": input_format, "--demo": demo or None}
        given = [name for name, value in table_only.items() if value]
        if given:
            raise fail_input(InputError(
                f"{', '.join(given)} apply to tables, not to a folder of photos (photos use "
                "the persons as the sensitive attribute)", file=str(data)))

        note_subfolders(data)
        run_photos(data, out=out, generator=generator, params=param, checkpoint=checkpoint,
                   model_dir=model_dir, k=k, l=l, t=t, epsilon=epsilon, seed=seed,
                   qi=split_names(qi), reference=reference, identities=identities,
                   workers=workers, resume=resume, verify=verify, withhold=withhold,
                   allow_collapse=allow_collapse, confidence=confidence, html_report=report,
                   perturb=perturb, xi=xi, uap=uap, perturb_norm=perturb_norm)
    photo_only = {"--perturb": perturb, "--xi": xi, "--uap": uap}
    given = [name for name, value in photo_only.items() if value is not None]
    if given:
        raise fail_input(InputError(f"{', '.join(given)} apply to a folder of photos, not to a "
                                    "table", file=None if data is None else str(data)))
    try:
        if k is None and l is None and t is None:
            raise InputError("give at least one requirement: --k, --l or --t")
        if report is not None:
            from privface.reports import require_matplotlib

            require_matplotlib()  # before the work: a missing extra fails fast
        if out is not None:  # refuse before reading; the default output is checked below
            _check_outputs(data, identities, None, out, report)
        with progress("Reading the table..."):
            loaded = load_table(data, demo, input_format, identities)
        qis, sens, notes = resolve_columns(loaded, qi, sensitive, need_sensitive=(
            l is not None or t is not None))
        for note in notes:
            stderr.print(note, markup=False)
        target = out if out is not None else _default_out(data, demo, loaded.fmt)
        certificate_path = Path(f"{target}.certificate.json")
        beside = (loaded.path.parent / "identity_CelebA.txt"
                  if loaded.fmt == "celeba" and loaded.path is not None else None)
        _check_outputs(data, identities, beside, target, report)
        out_fmt = _output_format(target, loaded.fmt)
        # Cells the anonymizer does not generalise are copied as the input's exact text (no
        # "02134" -> 2134). The QIs are then grouped on that text too, so a class is constant
        # in the text the output shows; with --epsilon they are released values instead.
        cells = (read_table_text(loaded.path, fmt=loaded.fmt)
                 if loaded.path is not None and {loaded.fmt, out_fmt} <= {"csv", "tsv"}
                 else None)
        source = loaded.table
        if cells is not None and epsilon is None:
            source = source.copy()
            for name in (q for q in qis if q in cells.columns):  # a bad name: anonymize_table says
                source[name] = cells[name].where(~source[name].isna().to_numpy()).to_numpy()
        with progress(f"Anonymizing {len(loaded.table):,} records..."):
            result = anonymize_table(source, qis, sens, k=k, l=l, t=t,
                                     ordered=ordered_columns(ordered, order), epsilon=epsilon,
                                     seed=seed)
        table = result.table if cells is None else _with_input_text(result.table, cells, qis)
        if out_fmt == "celeba" and "identity" in table.columns:
            # CelebA's attribute layout holds attributes only; identities live in their own file.
            table = table.drop(columns="identity")
        certificate = result.certificate()
        certificate["source"] = loaded.source
        certificate["output"] = str(target)
        html = None
        if report is not None:
            from privface.reports import class_sizes, render_table_anonymization, write_html

            html = render_table_anonymization(
                certificate, audit=result.audit, class_sizes=class_sizes(result.table, qis))
        # The certificate and the table replace what was there together, or neither does.
        with committed_together():
            write_atomically(certificate_path, json.dumps(certificate, indent=2) + "\n")
            write_table(table, target, fmt=out_fmt)
            if html is not None:
                write_html(report, html)
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    loss = result.loss
    reached = result.audit.metrics
    stderr.print(
        f"privface anonymize: wrote {target} and {certificate_path}"
        + (f" and the report {report}" if report is not None else "") + "\n"
        f"  reached k={reached['k_anonymity']}"
        + (f", l={reached['l_diversity']}" if reached.get("l_diversity") is not None else "")
        + (f", t={reached['t_closeness']:.4g}" if reached.get("t_closeness") is not None else "")
        + f"; {loss.n_classes:,} classes, {loss.generalised_share:.1%} of QI cells generalised, "
        f"{loss.suppressed_rows} rows suppressed"
        + (f"; epsilon {epsilon:g} spent" + (" (seeded)" if seed is not None else "")
           if epsilon is not None else ""))
    if loss.generalised_share > 0.9 and sens:
        widest = max(sens, key=lambda s: result.table[s].nunique())
        stderr.print(
            f"  note: {loss.generalised_share:.0%} of the quasi-identifier cells had to be "
            "generalised. With a sensitive attribute of many values such as "
            f"{widest!r} ({result.table[widest].nunique():,} values), "
            + ("t-closeness " if t is not None else "the requirements ")
            + "can only hold for very large classes; consider a looser t, or k and l alone.")
    raise typer.Exit(EXIT_OK)
