"""HTML reports of tables: an audit (:class:`~privface.privmetrics.report.AuditReport`) and the
certificate of a table anonymized by ``privface anonymize``.

An audit report reads top-down as a privacy officer asks: the verdict on each requirement, every
metric, how the classes are sized and how the per-record risk is spread, which attributes make
records unique, what would fix it (the counterfactuals of ``--explain``), and the worst classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privface.privmetrics import registry
from privface.privmetrics.compare import at_least, at_most
from privface.privmetrics.contingency import ContingencyTable, contingency_table

from .html import Markup, Page, badge, definitions, figure, fmt, join, note, table, tag
from .plots import class_size_histogram, distinguishing_power_chart, risk_distribution, share_bars

if TYPE_CHECKING:
    from privface.privmetrics.report import AuditReport
    from privface.privmetrics.counterfactuals import Explanation



def _label(name: str) -> str:
    """The human name of a metric of the registry (the name itself when it is not one)."""
    try:
        return registry.by_name(name).label
    except KeyError:
        return name


def class_sizes(table: Any, qi: Sequence[str]) -> np.ndarray:
    """The size of every equivalence class of ``table`` over ``qi`` (for the histograms).

    ``table`` is what the audit was given: a pandas table (grouped by the engine's contingency
    table), a ready :class:`~privface.privmetrics.contingency.ContingencyTable` (counted in
    chunks or on Dask), or any frame with ``groupby(...).size()`` (a Dask DataFrame).

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1, 1, 2, None], "b": [0, 0, 0, 0]})
    >>> sorted(class_sizes(df, ["a", "b"]).tolist())
    [1, 1, 2]
    """

    if isinstance(table, ContingencyTable):
        return np.asarray(table.class_sizes, dtype=np.int64)
    if isinstance(table, pd.DataFrame):
        return np.asarray(contingency_table(table, list(qi)).class_sizes, dtype=np.int64)
    sizes = table.groupby(list(qi), dropna=False).size()
    sizes = sizes.compute() if hasattr(sizes, "compute") else sizes
    return np.asarray(sizes, dtype=np.int64)


def _names(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _requirements_section(page: Page, report: AuditReport) -> None:
    if not report.requirements:
        page.section("requirements", "Requirements",
                     note("No requirement was asked: the audit measures only."))
        return
    several = len(report.sensitive) > 1
    headers = ["requirement", "verdict", "value", "", "asked"] + \
        (["worst sensitive attribute"] if several else []) + \
        ["records breaking it", "share", "classes breaking it"]
    rows, classes = [], []
    for r in report.requirements:
        rows.append([r.name, badge(r.passed, "ok" if r.passed else "FAIL"), r.value,
                     registry.by_name(r.metric).op, r.asked]
                    + ([r.sensitive or "-"] if several else [])
                    + [r.records_failing, fmt(r.records_failing / max(report.n_records, 1),
                                              ".1%"), r.classes_failing])
        classes.append("pass" if r.passed else "fail")
    numeric = [2, 4] + [len(headers) - 3, len(headers) - 2, len(headers) - 1]
    page.section("requirements", "Requirements",
                 table(headers, rows, numeric=numeric, row_classes=classes))


def _metrics_section(page: Page, report: AuditReport, suffix: str = "") -> None:
    sens = list(report.by_sensitive)
    several = len(sens) > 1
    headers = ["metric", "table" + (" (worst)" if several else "")] + (sens if several else [])
    rows = [[_label(name), value]
            + ([report.by_sensitive[s].get(name) for s in sens] if several else [])
            for name, value in report.metrics.items() if value is not None]
    extra = []
    if report.parameters.get("ordered"):
        extra.append(f"ordered sensitive attributes: {', '.join(report.parameters['ordered'])}")
    if report.parameters.get("ground_distance"):
        extra.append("exact EMD under a given ground distance for: "
                     + ", ".join(report.parameters["ground_distance"]))
    extra.append(f"recursive (c,l)-diversity uses c = {fmt(report.parameters['recursive_c'])}")
    page.section("metrics", "Metrics" + suffix,
                 table(headers, rows, numeric=range(1, len(headers))),
                 join(tag("p", line, class_="meta") for line in extra))


def _sizes_sections(page: Page, report: AuditReport, sizes: np.ndarray | None,
                    k: int | None, suffix: str = "") -> None:
    risk = report.risk
    facts = {"equivalence classes": report.n_classes, "records": report.n_records,
             "smallest class (k)": report.metrics["k_anonymity"],
             "average class size": report.n_records / max(report.n_classes, 1),
             "sample uniques (classes of one)": risk.uniques}
    if sizes is not None and len(sizes):
        facts["largest class"] = int(sizes.max())
        facts["median class size"] = float(np.median(sizes))
        chart = figure(class_size_histogram(sizes, k), "class-size histogram",
                       "How many equivalence classes have each size. Small classes are where "
                       "records can be singled out.")
    else:
        chart = note("Class sizes were not given to the renderer: no histogram.")
    page.section("class-sizes", "Class sizes" + suffix, definitions(facts), chart)
    risk_facts = {"highest risk (1 / k)": risk.highest, "average risk (classes / records)":
                  risk.average, "risk threshold": risk.threshold,
                  "records above the threshold": fmt(risk.records_at_risk, ".2%"),
                  "sample uniques": risk.uniques}
    content: list[Any] = [definitions(risk_facts)]
    if sizes is not None and len(sizes):
        content.append(figure(risk_distribution(sizes, risk.threshold),
                              "risk distribution",
                              "Share of records at each prosecutor re-identification risk "
                              "(one over the size of the record's class)."))
    page.section("risk", "Re-identification risk (prosecutor model)" + suffix, *content)


def _power_section(page: Page, report: AuditReport) -> None:
    power = report.distinguishing_power
    if power is None or power.empty:
        page.section("distinguishing-power", "Distinguishing power of each attribute",
                     note("Not measured: `privface audit --power` measures it (one regrouping "
                          "of the table per quasi-identifier)."))
        return
    top = power.head(15)
    rows = [[a, k, u, ur, fmt(r, ".2%")] for a, k, u, ur, r in zip(
        top["attribute"], top["k"], top["uniques"], top["uniques_removed"],
        top["records_at_risk"])]
    page.section("distinguishing-power", "Distinguishing power of each attribute",
                 Markup("<p>How k and the sample uniques change when one quasi-identifier is "
                        "dropped: the attributes at the top single out the most records and "
                        "are the first to generalise or suppress.</p>"),
                 figure(distinguishing_power_chart(power), "distinguishing power chart"),
                 table(["attribute (dropped)", "k without it", "uniques without it",
                        "uniques removed", "records at risk without it"], rows,
                       numeric=[1, 2, 3, 4]))


def _counterfactual_section(page: Page, report: AuditReport,
                            explanation: Explanation | None) -> None:
    title = "What would make it private (counterfactuals)"
    if report.passed:
        page.section("counterfactuals", title, note("Every requirement already holds."))
        return
    if explanation is None:
        page.section("counterfactuals", title, note(
            "Not searched: `privface audit ... --explain` finds the smallest sets of "
            "quasi-identifiers to generalise, and how far the table is from each requirement."))
        return
    content: list[Any] = [
        Markup("<h3>How far from private</h3><p>Share of records in classes that break each "
               "requirement (what suppressing those classes would cost).</p>"),
        figure(share_bars(explanation.records_breaking, xlabel="records breaking it"),
               "records breaking each requirement"),
    ]
    if explanation.counterfactuals:
        proven = ("no smaller set exists (exhaustive search)" if explanation.search ==
                  "exhaustive" else "found by beam search")
        shown = [m for m in ("k_anonymity", "l_diversity", "t_closeness")
                 if any(cf.metrics.get(m) is not None for cf in explanation.counterfactuals)]
        rows = [[", ".join(cf.generalise)] + [cf.metrics.get(m) for m in shown]
                + [cf.n_classes, fmt(cf.generalised_share, ".0%"), cf.discernibility]
                for cf in explanation.counterfactuals]
        content += [Markup("<h3>Smallest sets of quasi-identifiers to generalise</h3>"),
                    tag("p", f"Generalising (withholding) every attribute of one set makes "
                             f"every requirement hold; {proven}."),
                    table(["generalise", *(_label(m) for m in shown), "classes",
                           "QI cells generalised", "discernibility"], rows,
                          numeric=range(1, len(shown) + 4), id="counterfactual-table")]
    else:
        content.append(note(
            f"No set of up to {explanation.max_size} quasi-identifiers to generalise makes every "
            "requirement hold; local generalisation does better (`privface anonymize`).",
            "warn"))
        if explanation.closest is not None:
            content.append(tag("p", "Closest: generalise "
                               + ", ".join(explanation.closest.generalise)))
        content.append(tag("p", "Generalising every quasi-identifier " + (
            "would make them hold." if explanation.all_generalised is not None else
            "would not be enough: the requirements cannot be met by generalisation.")))
    page.section("counterfactuals", title, *content)


def _worst_section(page: Page, report: AuditReport, suffix: str = "") -> None:
    worst = report.worst_classes
    if worst is None or worst.empty:
        return
    sa_columns = [c for c in worst.columns if c.endswith(("l_diversity", "t_closeness"))
                  and not c.endswith(("entropy_l_diversity", "recursive_c_l_diversity"))]
    # "identity.t_closeness" (several SAs) reads "t-closeness (identity)".
    sa_headers = [_label(c.rpartition(".")[2]) + (
        f" ({c.rpartition('.')[0]})" if "." in c else "") for c in sa_columns]
    rows = []
    for idx, row in worst.iterrows():  # a handful of classes, for display only
        rows.append([idx, row["size"], row["risk"], row["breaks"] or "-",
                     row["distinctive"] or "(the most common value of every QI)"]
                    + [row[c] for c in sa_columns])
    failing = any(bool(b) for b in worst["breaks"])
    page.section("worst-classes", "Worst classes" + suffix,
                 tag("p", ("The classes that break the most requirements, smallest first."
                           if failing else "The smallest classes.")
                     + " Distinctive values: the quasi-identifier values that differ from each "
                       "column's most common one."),
                 table(["class", "size", "risk", "breaks", "distinctive values", *sa_headers],
                       rows, numeric=[0, 1, 2, *range(5, 5 + len(sa_columns))]))


def audit_sections(page: Page, report: AuditReport, *, sizes: np.ndarray | None = None,
                   explanation: Explanation | None = None, output: bool = False) -> None:
    """Add the sections of an audit to ``page``.

    ``output=True`` is the audit of an anonymized table under its certificate: the certificate
    already gives the requirements, and counterfactuals and distinguishing power are moot.
    """
    suffix = " of the anonymized table" if output else ""
    if not output:
        _requirements_section(page, report)
    _metrics_section(page, report, suffix)
    k = next((int(r.asked) for r in report.requirements if r.metric == "k_anonymity"), None)
    _sizes_sections(page, report, sizes, k, suffix)
    if not output:
        _power_section(page, report)
        _counterfactual_section(page, report, explanation)
    _worst_section(page, report, suffix)


def render_audit(report: AuditReport, *, class_sizes: np.ndarray | None = None,
                 explanation: Explanation | None = None, title: str = "privface audit") -> str:
    """The audit as one self-contained HTML page.

    Parameters
    ----------
    report : AuditReport
    class_sizes : ndarray of int, optional
        The size of every equivalence class (:func:`class_sizes`), for the class-size histogram
        and the risk distribution; without it those charts are left out.
    explanation : Explanation, optional
        The counterfactuals of :func:`~privface.privmetrics.counterfactuals.explain`.
    title : str

    Returns
    -------
    str
        The HTML document.

    Examples
    --------
    >>> from privface.privmetrics import audit
    >>> df = pd.DataFrame({"Male": [1, 1, -1], "id": [1, 2, 3]})
    >>> r = audit(df, ["Male"], ["id"], k=2, source="<faces>.csv")
    >>> html = render_audit(r, class_sizes=class_sizes(df, ["Male"]))
    >>> "FAILED" in html and "&lt;faces&gt;.csv" in html and html.count("<img") >= 2
    True
    """
    meta = [f"data: {report.source}"] if report.source else []
    meta += [f"{report.n_records:,} records, {report.n_classes:,} equivalence classes",
             f"quasi-identifiers ({len(report.qi)}): {_names(report.qi)}",
             "sensitive: " + (", ".join(report.sensitive) or "(none)")]
    page = Page(title, meta=meta)
    failed = report.failed
    if not report.requirements:
        page.verdict(None, "no requirement asked: measured only")
    elif failed:
        page.verdict(False, f"{len(failed)} of {len(report.requirements)} requirements fail: "
                            + ", ".join(r.name for r in failed))
    else:
        page.verdict(True, f"every requirement holds ({len(report.requirements)})")
    audit_sections(page, report, sizes=class_sizes, explanation=explanation)
    return page.render()


def render_table_anonymization(certificate: dict, *, audit: AuditReport | None = None,
                               class_sizes: np.ndarray | None = None) -> str:
    """The certificate of an anonymized table (``privface anonymize``) as an HTML page.

    Parameters
    ----------
    certificate : dict
        :meth:`~privface.privmetrics.anonymize.AnonymizationResult.certificate` (as written to
        ``OUT.certificate.json``).
    audit : AuditReport, optional
        The output's own audit, for its metrics, class sizes and worst classes.
    class_sizes : ndarray of int, optional
        Class sizes of the output (:func:`class_sizes`).

    Examples
    --------
    >>> from privface.privmetrics import anonymize_table
    >>> df = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, -1, 1, -1]})
    >>> result = anonymize_table(df, ["Male", "Young"], k=2)
    >>> html = render_table_anonymization(result.certificate(), audit=result.audit)
    >>> "PASSED" in html and 'id="information-loss"' in html
    True
    """
    meta = [f"data: {certificate['source']}"] if certificate.get("source") else []
    if certificate.get("output"):
        meta.append(f"anonymized table: {certificate['output']}")
    meta += [f"{certificate.get('n_records', 0):,} records; method: "
             f"{certificate.get('method', '?')} (generalised value "
             f"{certificate.get('generalised_value', '*')!r})",
             f"quasi-identifiers ({len(certificate.get('quasi_identifiers', []))}): "
             f"{_names(certificate.get('quasi_identifiers', []))}",
             "sensitive: " + (", ".join(certificate.get("sensitive") or []) or "(none)")]
    page = Page("privface anonymize: table certificate", meta=meta)
    passed = bool(certificate.get("passed"))
    page.verdict(passed, "the anonymized table meets every requirement" if passed else
                 "the anonymized table does not meet the requirements")
    reached = certificate.get("reached", {})
    rows, classes = [], []
    for key, asked in certificate.get("requirements", {}).items():
        metric = registry.by_requirement(key)
        value = reached.get(metric.name)
        value = float("inf") if value == "inf" else value
        ok = value is not None and asked is not None and (
            at_least(value, asked) if metric.larger_is_better else at_most(value, asked))
        rows.append([metric.label, badge(ok, "ok" if ok else "FAIL"),
                     value, metric.op, asked])
        classes.append("pass" if ok else "fail")
    page.section("requirements", "Requirements",
                 table(["requirement", "verdict", "reached", "", "asked"], rows, numeric=[2, 4],
                       row_classes=classes))
    loss = certificate.get("information_loss", {})
    facts = {"QI cells generalised": loss.get("generalised_cells"),
             "share of QI cells generalised": fmt(loss.get("generalised_share"), ".1%"),
             "records suppressed": loss.get("suppressed_rows"),
             "equivalence classes": loss.get("n_classes"),
             "average class size": loss.get("average_class_size"),
             "normalized average class size (C_avg)": loss.get("normalized_average_class_size"),
             "discernibility": loss.get("discernibility")}
    content: list[Any] = [definitions(facts)]
    if loss.get("per_attribute"):
        content.append(figure(share_bars(loss["per_attribute"],
                                               xlabel="records generalised"),
                              "generalised share per attribute",
                              "Share of records whose value of each quasi-identifier was "
                              "generalised."))
    page.section("information-loss", "Information loss", *content)
    dp = certificate.get("differential_privacy") or {}
    if dp.get("applied", True) and dp.get("epsilon"):
        dp_facts = {"mechanism": dp.get("mechanism"), "privacy model": dp.get("privacy_model"),
                    "epsilon (total)": dp.get("epsilon"), "composition": dp.get("composition"),
                    "rows": dp.get("rows"), "randomness": dp.get("randomness")}
        dp_content: list[Any] = [definitions({k: v for k, v in dp_facts.items()
                                              if v is not None})]
        if dp.get("seeded"):
            dp_content.append(note("Seeded: reproducible, and private only while the seed is "
                                   "secret. Not for release.", "warn"))
        page.section("differential-privacy", "Randomized response", *dp_content)
    else:
        page.section("differential-privacy", "Randomized response",
                     note("Not applied (no --epsilon)."))
    if audit is not None:
        audit_sections(page, audit, sizes=class_sizes, output=True)
    return page.render()
