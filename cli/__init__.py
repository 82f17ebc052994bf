"""The ``privface`` command line (built with typer)."""
