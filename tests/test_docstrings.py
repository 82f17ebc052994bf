"""Every example in the public docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import privface
import privface.adversarial
import privface.attributes
import privface.cli
import privface.evaluation
import privface.generators
import privface.pipeline
import privface.reports
import privface.privmetrics


def _modules() -> list[str]:
    names = ["privface", "privface.quality", "privface.base", "privface.base.errors",
             "privface.base.files", "privface.base.jsonenc", "privface.base.validation",
             "privface.base.workers"]
    for package in (privface.privmetrics, privface.cli, privface.attributes, privface.evaluation,
                    privface.generators, privface.pipeline, privface.adversarial,
                    privface.reports):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
