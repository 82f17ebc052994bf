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

from privface.base.errors import InputError

from .anonymity import RiskSummary, k_anonymity, record_risk, reidentification_risk
from .anonymize import AnonymizationResult, InformationLoss, anonymize_table
from .audit import Requirements, audit
from .closeness import t_closeness
from .contingency import ContingencyTable, SensitiveCounts, contingency_table
from .counterfactuals import Counterfactual, Explanation, explain
from .diversity import entropy_l_diversity, l_diversity, recursive_c, recursive_c_l_diversity
from .dp import (DPRelease, epsilon_for_flip_probability, estimate_frequencies,
                 estimate_joint_frequencies, flip_probability, keep_probability,
                 randomized_response)
from .engines import as_contingency
from .likeness import basic_beta_likeness, delta_disclosure, enhanced_beta_likeness
from .power import distinguishing_power
from .ppas import (PPASCertificate, PPASCertificates, PPASInfeasibleError, PPASResult,
                   select_attributes)
from .registry import METRICS, Metric
from .report import SCHEMA, AuditReport, RequirementResult
from .views import class_view, record_view

__all__ = [
    "AnonymizationResult",
    "anonymize_table",
    "as_contingency",
    "audit",
    "AuditReport",
    "basic_beta_likeness",
    "class_view",
    "contingency_table",
    "ContingencyTable",
    "Counterfactual",
    "delta_disclosure",
    "distinguishing_power",
    "DPRelease",
    "enhanced_beta_likeness",
    "entropy_l_diversity",
    "epsilon_for_flip_probability",
    "estimate_frequencies",
    "estimate_joint_frequencies",
    "explain",
    "Explanation",
    "flip_probability",
    "InformationLoss",
    "InputError",
    "k_anonymity",
    "keep_probability",
    "l_diversity",
    "METRICS",
    "Metric",
    "PPASCertificate",
    "PPASCertificates",
    "PPASInfeasibleError",
    "PPASResult",
    "randomized_response",
    "record_risk",
    "record_view",
    "recursive_c",
    "recursive_c_l_diversity",
    "reidentification_risk",
    "RequirementResult",
    "Requirements",
    "RiskSummary",
    "SCHEMA",
    "select_attributes",
    "SensitiveCounts",
    "t_closeness",
]
