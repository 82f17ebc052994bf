"""``import privface; privface.audit(...)``: one way in, light to import, one calling shape."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pandas as pd
import pytest

import privface

FUNCTIONS = ["audit", "explain", "anonymize_table", "anonymize_photos", "evaluate"]


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_entry_points_resolve_without_torch_opencv_or_dlib():
    out = run_python(
        "import sys, privface\n"
        "light = sorted(m for m in sys.modules if m.startswith('privface'))\n"
        "print(privface.audit, privface.anonymize_photos, privface.evaluate)\n"
        "print('LIGHT', light)\n"
        "print('HEAVY', sorted(m for m in ('torch', 'cv2', 'dlib') if m in sys.modules))\n")
    assert "<function audit" in out and "<function anonymize_photos" in out
    assert "<function evaluate_anonymization" in out
    # importing privface alone loads only the base layer
    assert "LIGHT ['privface', 'privface.base']" in out
    assert "HEAVY []" in out


def test_each_name_is_the_function_of_its_part():
    from privface.evaluation import evaluate_anonymization
    from privface.pipeline import anonymize_photos
    from privface.privmetrics import InputError, anonymize_table, audit, explain

    assert (privface.audit, privface.explain, privface.anonymize_table) == (
        audit, explain, anonymize_table)
    assert privface.anonymize_photos is anonymize_photos
    assert privface.evaluate is evaluate_anonymization
    assert privface.InputError is InputError
    assert set(FUNCTIONS) | {"InputError", "__version__"} == set(privface.__all__)
    assert set(privface.__all__) <= set(dir(privface))
    with pytest.raises(AttributeError, match="no attribute 'audits'"):
        privface.audits  # noqa: B018


@pytest.mark.parametrize("name", ["audit", "explain", "anonymize_table", "anonymize_photos"])
def test_requirements_are_keywords_everywhere(name):
    parameters = inspect.signature(getattr(privface, name)).parameters
    for requirement in ("k", "l", "t"):
        assert parameters[requirement].kind is inspect.Parameter.KEYWORD_ONLY, requirement
    first = next(iter(parameters.values()))
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD  # the data come first


def test_a_table_audit_through_the_front_door():
    table = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 1, 2]})
    report = privface.audit(table, ["Male"], "identity", k=2, l=2)
    assert report.passed and report.to_dict()["metrics"]["k_anonymity"] == 2
    result = privface.anonymize_table(table, ["Male"], "identity", k=3)
    assert result.audit.metrics["k_anonymity"] >= 3
    with pytest.raises(privface.InputError, match="no such quasi-identifier"):
        privface.audit(table, ["Mael"], k=2)
