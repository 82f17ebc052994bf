"""The ``privface`` command: one typer app, one module per sub-command.

Exit codes are shared by every command: 0 success (for ``audit``: every requirement holds), 1 a
requirement fails, 2 bad input (the message names the file, row or column at fault).
"""

from __future__ import annotations

import typer

from privface.base import __version__

from .anonymize import anonymize_command
from .audit import audit_command
from .evaluate import evaluate_command
from .perturb import perturb_app
from .predict import predict_command
from .report import report_command
from .train import train_app

app = typer.Typer(
    name="privface",
    help="Measurable face privacy: audit face-attribute tables (or photo folders) against "
    "k-anonymity, l-diversity, t-closeness, beta-likeness, delta-disclosure and "
    "re-identification risk; predict attributes from photos; measure identity leakage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("audit", no_args_is_help=False)(audit_command)
app.command("anonymize", no_args_is_help=False)(anonymize_command)
app.command("predict")(predict_command)
app.command("evaluate")(evaluate_command)
app.command("report")(report_command)
app.add_typer(train_app, name="train")
app.add_typer(perturb_app, name="perturb")


@app.command("version")
def version_command() -> None:
    """Print the privface version."""
    typer.echo(__version__)


def _exit_on_sigterm(signum, frame) -> None:
    # Unhandled, SIGTERM ends the process on the spot: no temporary file removed, no worker
    # stopped. As an exception it unwinds like Ctrl-C, and the exit status says why.
    raise SystemExit(128 + signum)


def main() -> None:
    """Run the ``privface`` command line."""
    import signal

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
