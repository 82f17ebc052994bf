"""Helpers shared by the sub-commands: option parsing, error exits, atomic output, progress."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from privface.privmetrics.readers import atomic_write

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

stderr = Console(stderr=True, highlight=False)


def split_names(values: Sequence[str] | None) -> list[str]:
    """Flatten repeatable, comma-separated column options (``--qi a,b --qi c``).

    Examples
    --------
    >>> split_names(["Male,Young", " Smiling "])
    ['Male', 'Young', 'Smiling']
    """
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def fail_input(error: Exception) -> typer.Exit:
    """Print a bad-input message and return the exit to raise (status 2)."""
    stderr.print(f"[bold red]privface: error:[/] {error}", markup=True, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def write_atomically(path: Path, text: str) -> None:
    """Write text to ``path`` through a temporary file and a rename: never half-written."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def progress(message: str, *, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr while a step runs (only on a terminal: logs stay clean)."""
    if enabled and sys.stderr.isatty():
        with stderr.status(message):
            yield
    else:
        yield
