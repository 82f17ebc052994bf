"""privface: measurable face privacy.

One way in, in the style of ``import ot; ot.emd2(...)``::

    import privface
    report = privface.audit(table, qi=["Male", "Young"], sensitive="identity", k=5, l=2)

==============================  ===============================================================
name                            what it does
==============================  ===============================================================
:func:`audit`                   measure a table (k-anonymity, l-diversity, t-closeness, ...)
                                against requirements
:func:`explain`                 the smallest changes of a table's quasi-identifiers that would
                                make it pass
:func:`anonymize_table`         generalise a table until it meets the requirements
:func:`anonymize_photos`        anonymize a folder of photos face by face, with certificates
                                (needs the ``faces`` extra; ``generators`` for StarGAN and
                                diffusion)
:func:`evaluate`                identity leakage, image quality and attribute preservation of
                                an anonymized photo folder against its originals (needs the
                                ``faces`` extra)
:class:`InputError`             the error every function raises for bad input
==============================  ===============================================================

Requirements are keywords everywhere (``k=``, ``l=``, ``t=``, ``epsilon=``, ...), the data comes
first. The names are imported on first use, so ``import privface`` loads neither the metrics
engine nor torch or OpenCV; the photo functions load those only when called. The parts behind
them (docs/design.md draws the layers): :mod:`privface.base`, :mod:`privface.privmetrics`,
:mod:`privface.attributes`, :mod:`privface.generators`, :mod:`privface.adversarial`,
:mod:`privface.pipeline`, :mod:`privface.evaluation`, :mod:`privface.reports`,
:mod:`privface.cli`.

Examples
--------
>>> import pandas as pd
>>> import privface
>>> table = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 4]})
>>> privface.audit(table, ["Male"], ["identity"], k=2).passed
True
>>> privface.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib

from privface.base import __version__

# Public name -> (module, name there); imported on first access.
_EXPORTS = {
    "audit": ("privface.privmetrics.audit", "audit"),
    "explain": ("privface.privmetrics.counterfactuals", "explain"),
    "anonymize_table": ("privface.privmetrics.anonymize", "anonymize_table"),
    "anonymize_photos": ("privface.pipeline.run", "anonymize_photos"),
    "evaluate": ("privface.evaluation.run", "evaluate_anonymization"),
    "InputError": ("privface.base.errors", "InputError"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later accesses skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
