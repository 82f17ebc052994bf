"""``privface audit``: is this table private, and how private is it?"""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from privface.privmetrics import audit
from privface.base.errors import InputError

from .audit_input import (ChunkRowsOption, DaskAddressOption, EngineOption, dask_scheduler,
                          load_for_audit)
from .common import (EXIT_FAILED, EXIT_OK, DataArgument, DemoOption, IdentitiesOption,
                     InputFormatOption, OrderedOption, OrderOption, QiOption, SensitiveOption,
                     fail_input, ordered_columns, progress, split_names, stderr,
                     write_atomically)

# Distinguishing power regroups the table once per QI; by default it runs only while that is quick.
_AUTO_POWER_LIMIT = 20_000_000


def _ground_distances(specs: list[str], table: Mapping, sensitive: list[str]
                      ) -> dict[str, pd.DataFrame]:
    """Read ``COLUMN=FILE.csv`` matrices; ``table`` maps each column to its values."""
    out = {}
    for spec in specs:
        if "=" not in spec:
            raise InputError(f"--ground-distance expects COLUMN=FILE.csv, got {spec!r}")
        column, path = spec.split("=", 1)
        if column not in table:
            raise InputError("--ground-distance names a column the table does not have",
                             column=column)
        if column not in sensitive:
            raise InputError("a ground-distance matrix was given for a column that is not a "
                             "sensitive attribute", column=column)
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


def _check_output(output: Path, data: Optional[Path], identities: Optional[Path],
                  ground_distance: Optional[list[str]]) -> None:
    """Refuse an --output that is one of the files the audit reads."""
    import glob

    from privface.base.files import check_distinct_paths
    from privface.privmetrics.streaming import is_pattern

    inputs: dict[str, Optional[Path]] = {"DATA": data, "--identities": identities}
    if data is not None and is_pattern(data):
        inputs.update((f"DATA ({match})", Path(match))
                      for match in glob.glob(str(data), recursive=True))
    inputs.update((f"--ground-distance {spec}", Path(spec.split("=", 1)[-1]))
                  for spec in ground_distance or [])
    check_distinct_paths(inputs=inputs, outputs={"--output": output})


def audit_command(
    data: DataArgument = None,
    demo: DemoOption = False,
    qi: QiOption = None,
    sensitive: SensitiveOption = None,
    identities: IdentitiesOption = None,
    ordered: OrderedOption = None,
    order: OrderOption = None,
    ground_distance: Annotated[Optional[list[str]], typer.Option(
        "--ground-distance", help="COLUMN=FILE.csv: a ground-distance matrix (labelled rows "
        "and columns) for exact EMD through POT. Repeatable.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Require k-anonymity.", min=1)] = None,
    l: Annotated[Optional[int], typer.Option(
        "--l", help="Require distinct l-diversity (also the l of --c).", min=1)] = None,
    entropy_l: Annotated[Optional[float], typer.Option(
        "--entropy-l", help="Require entropy l-diversity.", min=1.0)] = None,
    c: Annotated[Optional[float], typer.Option(
        "--c", help="Require recursive (c,l)-diversity with this c (l from --l, else 2).")] = None,
    t: Annotated[Optional[float], typer.Option("--t", help="Require t-closeness.", min=0.0,
                                               max=1.0)] = None,
    beta: Annotated[Optional[float], typer.Option(
        "--beta", help="Require basic beta-likeness.", min=0.0)] = None,
    enhanced_beta: Annotated[Optional[float], typer.Option(
        "--enhanced-beta", help="Require enhanced beta-likeness.", min=0.0)] = None,
    delta: Annotated[Optional[float], typer.Option(
        "--delta", help="Require delta-disclosure privacy.", min=0.0)] = None,
    risk_threshold: Annotated[float, typer.Option(
        "--risk-threshold", help="Prosecutor risk above which a record counts as at risk.",
        min=0.0, max=1.0)] = 0.2,
    output_format: Annotated[str, typer.Option(
        "--format", help="Report format: text, json or html (one self-contained page with "
        "charts; needs the report extra).")] = "text",
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the report to this file instead of standard output.")
    ] = None,
    input_format: InputFormatOption = None,
    worst: Annotated[int, typer.Option(
        "--worst", help="How many of the worst classes to list.", min=0)] = 10,
    explain: Annotated[bool, typer.Option(
        "--explain", help="When a requirement fails: how far from private (share of records "
        "breaking each), and the smallest sets of QIs to generalise that would fix it.")
    ] = False,
    power: Annotated[Optional[bool], typer.Option(
        "--power/--no-power", help="Measure each QI's distinguishing power "
        "(default: on while quick).", show_default=False)] = None,
    engine: EngineOption = "memory",
    chunk_rows: ChunkRowsOption = None,
    dask_address: DaskAddressOption = None,
) -> None:
    """Audit a face-attribute table: every metric, and a verdict on the requirements asked.

    Exit status: 0 when every requirement holds, 1 when one fails, 2 for bad input.
    """
    # One flag per requirement of the metric registry (a test keeps the two in step).
    asked = dict(k=k, l=l, entropy_l=entropy_l, c=c, t=t, beta=beta, enhanced_beta=enhanced_beta,
                 delta=delta)
    try:
        if output_format not in ("text", "json", "html"):
            raise InputError("--format must be text or json, or html for a page with "
                             f"charts; got {output_format!r}")
        if output_format == "html":
            from privface.reports import require_matplotlib

            require_matplotlib()  # before the audit: a missing extra fails fast
        if output is not None:
            _check_output(output, data, identities, ground_distance)
        orders = ordered_columns(ordered, order, ground_distance)
        with progress("Reading the table..."), dask_scheduler(engine, dask_address):
            loaded = load_for_audit(data, demo, input_format, identities, qi, sensitive,
                                    orders, engine=engine, chunk_rows=chunk_rows)
        # `table` is the rows, or their contingency table when counted in chunks or on Dask.
        qis, sens, table, source = loaded.qi, loaded.sensitive, loaded.data, loaded.source
        gd = _ground_distances(split_names(ground_distance), loaded.columns, sens)
        run_power = power if power is not None else loaded.n_records * len(qis) <= \
            _AUTO_POWER_LIMIT
        with progress(f"Auditing {loaded.n_records:,} records..."):
            report = audit(table, qis, sens, **asked, ordered=orders, ground_distance=gd,
                           risk_threshold=risk_threshold, worst=worst, power=run_power,
                           source=source)
        explanation = None
        if explain and not report.passed:
            from privface.privmetrics.counterfactuals import explain as explain_table

            with progress("Searching for the smallest fixes..."):
                explanation = explain_table(table, qis, sens, **asked, ordered=orders,
                                            ground_distance=gd)
        if output_format == "json":
            payload = report.to_dict()
            if explain:
                payload["explanation"] = explanation.to_dict() if explanation else None
            text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
        elif output_format == "html":
            from privface.reports import class_sizes, render_audit

            text = render_audit(report, class_sizes=class_sizes(table, qis),
                                explanation=explanation)
        else:
            text = report.to_text() + "\n"
            if explanation is not None:
                text += "\nCounterfactuals\n" + explanation.to_text() + "\n"
        if output is not None:
            write_atomically(output, text)
            verdict = ("no requirement given (measured only)" if not report.requirements
                       else "[green]PASSED[/]" if report.passed else "[red]FAILED[/]")
            stderr.print(f"privface audit: {verdict}; report written to {output}")
        else:
            typer.echo(text, nl=False)
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)
