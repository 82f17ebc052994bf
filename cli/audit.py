"""``privface audit``: is this table private, and how private is it?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from privface.privmetrics import audit
from privface.privmetrics.errors import InputError

from .common import (EXIT_FAILED, EXIT_OK, fail_input, progress, split_names, stderr,
                     write_atomically)

# Distinguishing power regroups the table once per QI; by default it runs only while that is quick.
_AUTO_POWER_LIMIT = 20_000_000


def _load(data: Optional[Path], demo: bool, fmt: Optional[str]) -> tuple[pd.DataFrame, bool, str]:
    """Read the table; returns it, whether it is in CelebA's layout, and a label for reports."""
    from privface.privmetrics import readers

    if demo:
        if data is not None:
            raise InputError("give either DATA or --demo, not both")
        from privface.privmetrics.demo import demo_table

        return demo_table(), True, "demo (synthetic, from CelebA attribute statistics)"
    if data is None:
        raise InputError("no DATA given: pass a CelebA attribute file, a CSV or Parquet table, "
                         "or --demo")
    celeba = fmt == "celeba" or (fmt is None and data.is_file()
                                 and readers.is_celeba_attribute_file(data))
    return readers.read_table(data, fmt=fmt), celeba, str(data)


def _ground_distances(specs: list[str], table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    for spec in specs:
        if "=" not in spec:
            raise InputError(f"--ground-distance expects COLUMN=FILE.csv, got {spec!r}")
        column, path = spec.split("=", 1)
        if column not in table.columns:
            raise InputError("--ground-distance names a column the table does not have",
                             column=column)
        try:
            matrix = pd.read_csv(path, index_col=0)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the ground-distance matrix: {exc}", file=path) from exc
        # CSV labels are strings: match them to the column's values through their text.
        by_text = {str(v): v for v in pd.unique(table[column])}
        unknown = [x for x in list(matrix.index) + list(matrix.columns) if str(x) not in by_text]
        if unknown:
            raise InputError(f"label {unknown[0]!r} is not a value of column {column!r}",
                             file=path)
        matrix.index = [by_text[str(x)] for x in matrix.index]
        matrix.columns = [by_text[str(x)] for x in matrix.columns]
        out[column] = matrix
    return out


def audit_command(
    data: Annotated[Optional[Path], typer.Argument(
        help="CelebA attribute file (list_attr_celeba.txt layout), CSV or Parquet table.",
        show_default=False)] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Audit the embedded demo table (synthetic, CelebA-like).")] = False,
    qi: Annotated[Optional[list[str]], typer.Option(
        "--qi", help="Quasi-identifier columns, comma-separated; repeatable. "
        "Default for a CelebA file: its 40 attributes.")] = None,
    sensitive: Annotated[Optional[list[str]], typer.Option(
        "--sensitive", help="Sensitive attribute columns, comma-separated; repeatable. "
        "Default: identity when identities are given.")] = None,
    identities: Annotated[Optional[Path], typer.Option(
        "--identities", help="CelebA identity file (NNNNNN.jpg ID) joined as the sensitive "
        "attribute 'identity'.")] = None,
    ordered: Annotated[Optional[list[str]], typer.Option(
        "--ordered", help="Declare a sensitive attribute ordered (t-closeness uses the "
        "ordered distance); every SA is nominal otherwise. Repeatable.")] = None,
    ground_distance: Annotated[Optional[list[str]], typer.Option(
        "--ground-distance", help="COLUMN=FILE.csv: a ground-distance matrix (labelled rows "
        "and columns) for exact EMD through POT. Repeatable.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Require k-anonymity.")] = None,
    l: Annotated[Optional[int], typer.Option(
        "--l", help="Require distinct l-diversity (also the l of --c).")] = None,
    entropy_l: Annotated[Optional[float], typer.Option(
        "--entropy-l", help="Require entropy l-diversity.")] = None,
    c: Annotated[Optional[float], typer.Option(
        "--c", help="Require recursive (c,l)-diversity with this c (l from --l, else 2).")] = None,
    t: Annotated[Optional[float], typer.Option("--t", help="Require t-closeness.")] = None,
    beta: Annotated[Optional[float], typer.Option(
        "--beta", help="Require basic beta-likeness.")] = None,
    enhanced_beta: Annotated[Optional[float], typer.Option(
        "--enhanced-beta", help="Require enhanced beta-likeness.")] = None,
    delta: Annotated[Optional[float], typer.Option(
        "--delta", help="Require delta-disclosure privacy.")] = None,
    risk_threshold: Annotated[float, typer.Option(
        "--risk-threshold", help="Prosecutor risk above which a record counts as at risk.")
    ] = 0.2,
    output_format: Annotated[str, typer.Option(
        "--format", help="Report format: text or json.")] = "text",
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the report to this file instead of standard output.")
    ] = None,
    input_format: Annotated[Optional[str], typer.Option(
        "--input-format", help="Force the input format: celeba, csv, tsv or parquet.")] = None,
    worst: Annotated[int, typer.Option(
        "--worst", help="How many of the worst classes to list.")] = 10,
    power: Annotated[Optional[bool], typer.Option(
        "--power/--no-power", help="Measure each QI's distinguishing power "
        "(default: on while quick).", show_default=False)] = None,
) -> None:
    """Audit a face-attribute table: every metric, and a verdict on the requirements asked.

    Exit status: 0 when every requirement holds, 1 when one fails, 2 for bad input.
    """
    try:
        if output_format not in ("text", "json"):
            raise InputError(f"--format must be text or json, got {output_format!r}")
        if input_format not in (None, "celeba", "csv", "tsv", "parquet"):
            raise InputError(f"--input-format must be celeba, csv, tsv or parquet, "
                             f"got {input_format!r}")
        with progress("Reading the table..."):
            table, is_celeba, source = _load(data, demo, input_format)
            if identities is not None:
                from privface.privmetrics.readers import join_identities, read_celeba_identities

                table = join_identities(table, read_celeba_identities(identities),
                                        source=str(identities))
        sens = split_names(sensitive)
        if not sens and "identity" in table.columns:
            sens = ["identity"]
        qis = split_names(qi)
        if not qis:
            if not is_celeba:
                raise InputError("--qi is needed for a table that is not in CelebA's layout "
                                 f"(columns: {', '.join(map(str, table.columns[:12]))})",
                                 file=source)
            qis = [col for col in table.columns if col not in sens]
        gd = _ground_distances(split_names(ground_distance), table)
        run_power = power if power is not None else len(table) * len(qis) <= _AUTO_POWER_LIMIT
        with progress(f"Auditing {len(table):,} records..."):
            report = audit(table, qis, sens, k=k, l=l, entropy_l=entropy_l, c=c, t=t, beta=beta,
                           enhanced_beta=enhanced_beta, delta=delta, ordered=split_names(ordered),
                           ground_distance=gd, risk_threshold=risk_threshold, worst=worst,
                           power=run_power, source=source)
        text = report.to_json() + "\n" if output_format == "json" else report.to_text() + "\n"
        if output is not None:
            write_atomically(output, text)
            verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
            stderr.print(f"privface audit: {verdict}; report written to {output}")
        else:
            typer.echo(text, nl=False)
    except InputError as exc:
        raise fail_input(exc) from None
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)
