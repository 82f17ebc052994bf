"""The metric registry is the one place a metric is defined.

A toy metric registered in a fixture (and removed after) must show up everywhere the audit
reports: ``audit(...).metrics``, the per-SA values, the verdict, the worst classes, the text and
JSON reports, the per-class view, the counterfactuals and the HTML labels, without touching any
other module. The command line declares its requirement flags explicitly (typer reads a static
signature): a test keeps them and the registry in step.
"""

from __future__ import annotations

import json
import typing

import numpy as np
import pandas as pd
import pytest

from privface.privmetrics import METRICS, Requirements, audit, class_view, registry
from privface.privmetrics.counterfactuals import explain
from privface.privmetrics.registry import Metric

TOY = Metric(
    "toy_inverse_l", "toy inverse diversity", "at_most", per_sa=True,
    per_class=lambda sc, **_: 1.0 / np.asarray(sc.distinct, dtype=np.float64),
    requirement="toy", valid=lambda v: v > 0, expected="a number > 0")


@pytest.fixture
def toy():
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister(TOY.name)


@pytest.fixture
def table() -> pd.DataFrame:
    # Class (1,): identities 1, 2, 3 (l = 3); class (-1,): identities 4, 4 (l = 1).
    return pd.DataFrame({"Male": [1, 1, 1, -1, -1], "identity": [1, 2, 3, 4, 4]})


def test_a_registered_metric_is_measured_and_judged_everywhere(toy, table):
    report = audit(table, ["Male"], ["identity"], k=2, toy=0.5)
    assert list(report.metrics)[-1] == "toy_inverse_l"
    assert report.metrics["toy_inverse_l"] == 1.0  # the worst class has one identity
    assert report.by_sensitive["identity"]["toy_inverse_l"] == 1.0
    verdict = {r.metric: r for r in report.requirements}["toy_inverse_l"]
    assert (verdict.name, verdict.asked, verdict.passed) == ("toy inverse diversity", 0.5, False)
    assert (verdict.records_failing, verdict.classes_failing) == (2, 1)
    assert not report.passed
    assert "toy" in report.worst_classes["breaks"].iloc[0].split(",")
    assert "toy_inverse_l" in report.worst_classes.columns

    text = report.to_text()
    assert "FAIL toy inverse diversity" in text and "1 <= 0.5" in text
    assert any(line.split()[:2] == ["toy_inverse_l", "1"] for line in text.splitlines())

    data = json.loads(report.to_json())
    assert data["metrics"]["toy_inverse_l"] == 1.0
    assert data["verdict"] == "failed"
    toy_req = [r for r in data["requirements"] if r["metric"] == "toy_inverse_l"]
    assert toy_req and toy_req[0]["asked"] == 0.5 and not toy_req[0]["passed"]

    view = class_view(table, ["Male"], "identity", requirements=Requirements(toy=0.5))
    assert view.set_index("Male")["breaks_toy"].to_dict() == {-1: True, 1: False}
    assert view.set_index("Male")["identity.toy_inverse_l"].to_dict() == {-1: 1.0, 1: 1 / 3}

    # Withholding Male merges the classes into one with 4 identities: 1/4 <= 0.5.
    why = explain(table, ["Male"], ["identity"], toy=0.5)
    assert why.records_breaking == {"toy": 0.4}
    assert [cf.generalise for cf in why.counterfactuals] == [("Male",)]
    assert why.counterfactuals[0].metrics["toy_inverse_l"] == 0.25


def test_a_registered_metric_passes_when_the_bound_holds(toy, table):
    report = audit(table, ["Male"], ["identity"], toy=1.0)
    assert report.passed and report.requirements[0].metric == "toy_inverse_l"


def test_a_registered_requirement_is_validated_and_needs_a_sensitive_attribute(toy, table):
    with pytest.raises(ValueError, match="requirement toy must be a number > 0"):
        Requirements(toy=0)
    with pytest.raises(ValueError, match="toy need a sensitive attribute"):
        audit(table, ["Male"], toy=0.5)


def test_the_html_report_labels_a_registered_metric(toy, table):
    from privface.reports.audit import _label

    assert _label("toy_inverse_l") == "toy inverse diversity"


def test_unregistered_metrics_are_gone(table):
    assert "toy_inverse_l" not in METRICS
    with pytest.raises(TypeError, match="unexpected requirement 'toy'"):
        audit(table, ["Male"], ["identity"], toy=0.5)


def test_registering_twice_or_taking_a_keyword_is_refused(toy):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(TOY)
    with pytest.raises(ValueError, match="already taken"):
        registry.register(Metric("other", "other", "at_least", per_sa=True,
                                 per_class=TOY.per_class, requirement="k"))


def test_every_requirement_has_a_cli_flag_and_every_cli_requirement_is_registered():
    from privface.cli.audit import audit_command

    flags = {}
    for name, hint in typing.get_type_hints(audit_command, include_extras=True).items():
        for meta in getattr(hint, "__metadata__", ()):
            if (getattr(meta, "help", None) or "").startswith("Require"):
                # In Annotated, typer takes the first argument of Option for the flag name.
                flags[name] = (meta.param_decls or (meta.default,))[0]
    assert flags == {key: "--" + key.replace("_", "-") for key in registry.requirement_keys()}


def test_the_json_schema_lists_the_registered_metrics():
    """The published schema (privface.audit/1) names every metric: a new one is a schema change."""
    from importlib import resources

    schema = json.loads(resources.files("privface.privmetrics")
                        .joinpath("schema/audit-v1.json").read_text())
    metric_set = schema["$defs"]["metric_set"]
    names = [m.name for m in registry.metrics()]
    assert metric_set["required"] == names
    assert list(metric_set["properties"]) == names


def test_the_cli_passes_every_requirement_flag_on_to_the_audit():
    from typer.testing import CliRunner

    from privface.cli.main import app

    asked = {"k": "1", "l": "1", "entropy_l": "1", "c": "1", "t": "1", "beta": "1000",
             "enhanced_beta": "1000", "delta": "1000"}
    assert set(asked) == set(registry.requirement_keys())
    args = [part for key, value in asked.items() for part in ("--" + key.replace("_", "-"), value)]
    result = CliRunner().invoke(app, ["audit", "--demo", "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output  # a verdict, whichever it is
    metrics = [r["metric"] for r in json.loads(result.output)["requirements"]]
    assert metrics == [registry.by_requirement(key).name for key in registry.requirement_keys()]
