"""Self-contained HTML reports that people read: audits, anonymized tables, photo runs, evaluations.

Each report is one HTML file with inline CSS, charts drawn by matplotlib (Agg) as embedded PNG and
photo thumbnails as embedded JPEG: no scripts, no external URLs, so it opens offline and can be
archived or mailed as it is. Every name taken from data (columns, file names, reasons) is
escaped. Needs the ``report`` extra (``pip install "privface[report]"``: matplotlib).

==============================  =================================================================
function                        renders
==============================  =================================================================
:func:`render_audit`            an :class:`~privface.privmetrics.report.AuditReport` (+ explain)
:func:`render_table_anonymization`  the certificate of ``privface anonymize TABLE``
:func:`render_photo_run`        the ``--out`` folder of ``privface anonymize PHOTOS_DIR``
:func:`render_evaluation`       an :class:`~privface.evaluation.EvaluationReport`
:func:`write_html`              writes a page atomically
==============================  =================================================================

Examples
--------
>>> import pandas as pd
>>> from privface.privmetrics import audit
>>> from privface.reports import class_sizes, render_audit
>>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 4]})
>>> html = render_audit(audit(df, ["Male"], ["identity"], k=2),
...                     class_sizes=class_sizes(df, ["Male"]))
>>> html.startswith("<!DOCTYPE html>"), "PASSED" in html
(True, True)
"""

from __future__ import annotations

import os
from pathlib import Path

from privface.base.files import atomic_write

from .audit import class_sizes, render_audit, render_table_anonymization
from .deps import ReportDependencyError, require_matplotlib
from .evaluation import render_evaluation
from .photos import read_run, render_photo_run


def write_html(path: str | os.PathLike, html: str) -> None:
    """Write ``html`` to ``path`` through a temporary file and a rename: never half-written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "r.html"
    >>> write_html(target, "<!DOCTYPE html><p>hi</p>")
    >>> target.read_text()
    '<!DOCTYPE html><p>hi</p>'
    """

    atomic_write(path, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))


__all__ = ["ReportDependencyError", "class_sizes", "read_run", "render_audit",
           "render_evaluation", "render_photo_run", "render_table_anonymization",
           "require_matplotlib", "write_html"]
