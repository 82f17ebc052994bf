"""The optional dependency of the HTML reports: matplotlib (``pip install "privface[report]"``)."""

from __future__ import annotations

import importlib.util

from privface.base.errors import InputError

EXTRA_HINT = 'pip install "privface[report]"'


class ReportDependencyError(InputError, ImportError):
    """matplotlib is missing: the message names the extra that installs it.

    An :class:`ImportError` for library callers, and an
    :class:`~privface.base.errors.InputError` so that the command line prints it and
    exits with status 2, as for any other missing extra.
    """


def require_matplotlib() -> None:
    """Raise :class:`ReportDependencyError` when matplotlib cannot be imported.

    Call it before a long run whose result will be rendered, so that a missing extra fails fast.

    Examples
    --------
    >>> require_matplotlib()  # matplotlib is installed with the test extra
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise ReportDependencyError(
            f"HTML reports draw their charts with matplotlib, which is not installed: "
            f"{EXTRA_HINT}")
