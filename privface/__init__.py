"""privface: measurable face privacy.

The public entry points live in the parts of the package:

* :mod:`privface.privmetrics`: the tabular privacy engine (k-anonymity, l-diversity, t-closeness,
  beta-likeness, delta-disclosure, re-identification risk) and :func:`~privface.privmetrics.audit`.
* :mod:`privface.attributes`: stage I, faces in: detection, alignment, identity embeddings and
  attribute prediction (the ``faces`` extra).
* :mod:`privface.evaluation`: identity leakage, image quality (:mod:`privface.quality`) and
  attribute preservation of an anonymized folder against its originals.
* :mod:`privface.cli`: the ``privface`` command.

Examples
--------
>>> import privface
>>> privface.__version__
'0.1.0'
"""

__version__ = "0.1.0"
