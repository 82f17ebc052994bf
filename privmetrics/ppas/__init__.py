"""PPAS: privacy-preserving attribute selection (docs/making-it-private.md, "PPAS").

For each face, pick the attribute vector a generator should give it: epsilon-locally
differentially private on the editable attributes, and in a class of the public reference
population that meets k, l and t. See :mod:`privface.privmetrics.ppas.selection` for the method and
its guarantee.

* :mod:`~privface.privmetrics.ppas.selection`: :func:`select_attributes`, validation.
* :mod:`~privface.privmetrics.ppas.bits`: packed attribute bits, nearest-class search (randomised
  response itself is :mod:`privface.privmetrics.dp`'s).
* :mod:`~privface.privmetrics.ppas.certificates`: per-face certificates, the result, the
  infeasibility error.
* :mod:`~privface.privmetrics.ppas.release`: :func:`assign_targets`, PPAS for a released set of
  faces (the photo model v2): every target chosen at once so that each released class holds k
  persons and each attribute's share stays within t of the reference's.
"""

from .certificates import (GUARANTEE, NO_DP_GUARANTEE, SCHEMA, PPASCertificate, PPASCertificates,
                           PPASInfeasibleError, PPASResult)
from .release import Assignment, assign_targets, randomised_response
from .selection import select_attributes

__all__ = [
    "Assignment",
    "GUARANTEE",
    "NO_DP_GUARANTEE",
    "PPASCertificate",
    "PPASCertificates",
    "PPASInfeasibleError",
    "PPASResult",
    "SCHEMA",
    "assign_targets",
    "randomised_response",
    "select_attributes",
]
