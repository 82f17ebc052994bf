"""privmetrics: the tabular privacy engine.

A face data set is a table: rows are faces, columns are attributes. Quasi-identifiers (QIs) are what
an observer can see; sensitive attributes (SAs) are what must not be disclosed. Every metric is
computed from one contingency table (counts per equivalence class and sensitive value), built once
by :func:`contingency_table`.

This package needs numpy, pandas, scipy and POT only; it imports no torch and no image library.

Examples
--------
>>> import pandas as pd
>>> from privface.privmetrics import audit, k_anonymity
>>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "Eyeglasses": [-1, -1, 1, 1],
...                    "identity": [10, 11, 12, 12]})
>>> k_anonymity(df, qi=["Male", "Eyeglasses"])
2
>>> report = audit(df, qi=["Male", "Eyeglasses"], sensitive="identity", k=2, l=2)
>>> report.passed, report.metrics["l_diversity"]
(False, 1)
"""

from .anonymity import RiskSummary, k_anonymity, record_risk, reidentification_risk
from .audit import METRICS, SCHEMA, AuditReport, Requirements, RequirementResult, audit
from .closeness import t_closeness
from .contingency import ContingencyTable, SensitiveCounts, as_contingency, contingency_table
from .diversity import entropy_l_diversity, l_diversity, recursive_c, recursive_c_l_diversity
from .errors import InputError
from .likeness import basic_beta_likeness, delta_disclosure, enhanced_beta_likeness
from .power import distinguishing_power
from .views import class_view, record_view

__all__ = [
    "AuditReport",
    "ContingencyTable",
    "InputError",
    "METRICS",
    "RequirementResult",
    "Requirements",
    "RiskSummary",
    "SCHEMA",
    "SensitiveCounts",
    "as_contingency",
    "audit",
    "basic_beta_likeness",
    "class_view",
    "contingency_table",
    "delta_disclosure",
    "distinguishing_power",
    "enhanced_beta_likeness",
    "entropy_l_diversity",
    "k_anonymity",
    "l_diversity",
    "recursive_c",
    "recursive_c_l_diversity",
    "record_risk",
    "record_view",
    "reidentification_risk",
    "t_closeness",
]
