"""HTML reports: what they say (parsed with html.parser) and how they render (headless Chromium).

The Chromium tests open each report from a file:// URL, save a full-page screenshot to the
artifacts folder (``$PRIVFACE_ARTIFACTS``, default ``.ci/artifacts/`` in the repository) and read
back, through a probe script added to a copy of the page, whether every image decoded and whether
an untrusted column name turned into an element. They skip, with the reason, only when no
Chromium is installed; ``.ci/run`` installs it.
"""

from __future__ import annotations

import base64
import doctest
import html
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

pytest.importorskip("matplotlib", reason="HTML reports need the report extra (matplotlib)")

from PIL import Image  # noqa: E402  (after the skip: the report extra brings Pillow)

from privface.cli.main import app  # noqa: E402
from privface.privmetrics import anonymize_table, audit  # noqa: E402
from privface.privmetrics.counterfactuals import explain  # noqa: E402
from privface.privmetrics.demo import demo_table  # noqa: E402
from privface.reports import (class_sizes, render_audit, render_evaluation,  # noqa: E402
                              render_photo_run, render_table_anonymization)
from privface.reports.html import fmt, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

#: A column name that is an HTML element if it is not escaped, and mathematics for matplotlib.
EVIL = "<img src=x id=pwned>"
DOLLAR = "cost $5 & $x^{"
#: A photo name that is markup (file names may hold anything but "/").
ODD = '<b onclick="x">odd.png'


# --------------------------------------------------------------------------------------------
# Reading a report back


class ReportParser(HTMLParser):
    """Sections (by id) with their tables (rows of cell texts) and facts (dt -> dd), images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, dict] = {}
        self.images: list[dict] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.verdict = ""
        self.text: list[str] = []
        self._section: dict | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._dt: str | None = None
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes += [(tag, k, v or "") for k, v in attrs.items()]
        if tag not in ("img", "meta", "br"):
            self._in.append(tag)
        if tag == "section":
            self._section = {"tables": [], "facts": {}, "headings": []}
            self.sections[attrs["id"]] = self._section
        elif tag == "table" and self._section is not None:
            self._section["tables"].append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th", "dt", "dd", "h2", "h3") or (tag == "p" and
                                                              attrs.get("id") == "verdict"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        text = "".join(self._cell).strip() if self._cell is not None else ""
        if tag in ("td", "th") and self._row is not None:
            self._row.append(text)
            self._cell = None
        elif tag == "tr" and self._row is not None and self._section is not None:
            self._section["tables"][-1].append(self._row)
            self._row = None
        elif tag == "dt":
            self._dt, self._cell = text, None
        elif tag == "dd" and self._section is not None:
            self._section["facts"][self._dt] = text
            self._cell = None
        elif tag in ("h2", "h3") and self._section is not None:
            self._section["headings"].append(text)
            self._cell = None
        elif tag == "p" and self._cell is not None and not self.verdict:
            self.verdict = text
            self._cell = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(page)
    parser.close()
    return parser


def number(text: str) -> float:
    """A number as the report prints it (``1,234``, ``0.25``, ``inf``, ``12.5%``)."""
    text = text.replace(",", "").strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def assert_self_contained(page: str) -> ReportParser:
    """No script, no external resource; every image a data: URI that decodes."""
    parsed = parse(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in \
        parsed.tags
    for tag, name, value in parsed.attributes:
        if name in ("src", "href", "action"):
            assert value.startswith("data:image/"), (tag, name, value[:60])
        assert not name.startswith("on"), (tag, name)
    for image in parsed.images:
        header, payload = image["src"].split(",", 1)
        assert header in ("data:image/png;base64", "data:image/jpeg;base64")
        with Image.open(io.BytesIO(base64.b64decode(payload))) as decoded:
            decoded.load()
            assert decoded.width > 50 and decoded.height > 50
    assert "http://" not in page and "https://" not in page
    return parsed


# --------------------------------------------------------------------------------------------
# Reports of tables


@pytest.fixture(scope="module")
def faces() -> tuple[pd.DataFrame, list[str]]:
    """The demo table with hostile column names among the quasi-identifiers."""
    table = demo_table().rename(columns={"Wearing_Hat": EVIL, "Bald": DOLLAR})
    return table, ["Male", "Young", "Smiling", "Eyeglasses", "Blond_Hair", EVIL, DOLLAR]


@pytest.fixture(scope="module")
def audit_page(faces):
    table, qi = faces
    report = audit(table, qi, ["identity"], k=5, l=2, t=0.2, power=True,
                   source="<b>faces</b>.csv")
    explanation = explain(table, qi, ["identity"], k=5, l=2)
    page = render_audit(report, class_sizes=class_sizes(table, qi), explanation=explanation)
    return report, explanation, page


def test_audit_report_shows_every_section_with_the_report_numbers(audit_page):
    report, explanation, page = audit_page
    parsed = assert_self_contained(page)
    assert list(parsed.sections) == ["requirements", "metrics", "class-sizes", "risk",
                                     "distinguishing-power", "counterfactuals", "worst-classes"]
    assert parsed.verdict.startswith("FAILED") and "3 of 3 requirements fail" in parsed.verdict
    header, *rows = parsed.sections["requirements"]["tables"][0]
    assert header[:5] == ["requirement", "verdict", "value", "", "asked"]
    assert [r[0] for r in rows] == [r.name for r in report.requirements]
    for row, result in zip(rows, report.requirements):
        assert row[1] == ("ok" if result.passed else "FAIL")
        assert number(row[2]) == pytest.approx(result.value, rel=1e-3)
        assert number(row[4]) == pytest.approx(result.asked)
        assert int(number(row[5])) == result.records_failing
        assert int(number(row[7])) == result.classes_failing
    metrics = {r[0]: r[1] for r in parsed.sections["metrics"]["tables"][0][1:]}
    assert number(metrics["k-anonymity"]) == report.metrics["k_anonymity"]
    assert number(metrics["t-closeness"]) == pytest.approx(report.metrics["t_closeness"],
                                                          rel=1e-3)
    assert number(metrics["sample uniques"]) == report.risk.uniques
    facts = parsed.sections["class-sizes"]["facts"]
    assert number(facts["equivalence classes"]) == report.n_classes
    assert number(facts["records"]) == report.n_records == len(demo_table())
    risk = parsed.sections["risk"]["facts"]
    assert number(risk["records above the threshold"]) == pytest.approx(
        report.risk.records_at_risk, abs=5e-5)
    power = parsed.sections["distinguishing-power"]["tables"][0][1:]
    assert [r[0] for r in power] == list(report.distinguishing_power["attribute"])
    assert [int(number(r[3])) for r in power] == list(
        report.distinguishing_power["uniques_removed"])
    counterfactuals = parsed.sections["counterfactuals"]["tables"][0][1:]
    assert [r[0] for r in counterfactuals] == [", ".join(cf.generalise)
                                               for cf in explanation.counterfactuals]
    worst = parsed.sections["worst-classes"]["tables"][0][1:]
    assert [int(number(r[1])) for r in worst] == list(report.worst_classes["size"])
    # One chart each: class sizes, risk, distinguishing power, how far from private.
    assert len(parsed.images) == 4


def test_untrusted_names_stay_text(audit_page, faces):
    _, _, page = audit_page
    assert EVIL not in page and "<b>faces</b>" not in page
    assert html.escape(EVIL) in page and "&lt;b&gt;faces&lt;/b&gt;.csv" in page
    parsed = parse(page)
    assert not any(name == "id" and value == "pwned" for _, name, value in parsed.attributes)
    assert EVIL in "".join(parsed.text) and DOLLAR in "".join(parsed.text)


def test_audit_without_sizes_or_explanation_says_what_is_missing(faces):
    table, qi = faces
    report = audit(table, qi[:3], ["identity"], k=5000)
    parsed = parse(render_audit(report))
    assert len(parsed.images) == 0
    text = " ".join(parsed.text)
    assert "Class sizes were not given" in text and "--explain" in text and "--power" in text


def test_passing_audit_has_a_green_verdict_and_no_counterfactual_search():
    df = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 4]})
    report = audit(df, ["Male"], ["identity"], k=2, l=2)
    parsed = parse(render_audit(report, class_sizes=class_sizes(df, ["Male"])))
    assert parsed.verdict.startswith("PASSED")
    assert "Every requirement already holds." in " ".join(parsed.text)


def test_table_anonymization_report_matches_its_certificate(faces):
    table, qi = faces
    result = anonymize_table(table, qi, ["identity"], k=5, l=2)
    certificate = result.certificate()
    page = render_table_anonymization(certificate, audit=result.audit,
                                      class_sizes=class_sizes(result.table, qi))
    parsed = assert_self_contained(page)
    assert parsed.verdict.startswith("PASSED")
    assert list(parsed.sections)[:3] == ["requirements", "information-loss",
                                         "differential-privacy"]
    assert "class-sizes" in parsed.sections and "counterfactuals" not in parsed.sections
    rows = parsed.sections["requirements"]["tables"][0][1:]
    assert [(r[0], number(r[2]), number(r[4])) for r in rows] == [
        ("k-anonymity", result.audit.metrics["k_anonymity"], 5),
        ("distinct l-diversity", result.audit.metrics["l_diversity"], 2)]
    facts = parsed.sections["information-loss"]["facts"]
    assert number(facts["QI cells generalised"]) == result.loss.generalised_cells
    assert number(facts["equivalence classes"]) == result.loss.n_classes
    sizes = parsed.sections["class-sizes"]["facts"]
    assert number(sizes["smallest class (k)"]) == result.audit.metrics["k_anonymity"]


def test_report_verdicts_use_the_engines_comparison(faces):
    """A certificate that reached its bound up to rounding (t 0.30000000000000004 for t = 0.3,
    entropy-style 6.999999999999998 for k = 7) shows "ok", as the audit that wrote it decided."""
    from privface.reports.photos import _meets

    table, qi = faces
    certificate = anonymize_table(table, qi, ["identity"], k=5).certificate()
    certificate["requirements"] = {"k": 7, "t": 0.3}
    certificate["reached"].update(k_anonymity=6.999999999999998, t_closeness=0.1 + 0.2)
    parsed = assert_self_contained(render_table_anonymization(certificate))
    verdicts = [row[1] for row in parsed.sections["requirements"]["tables"][0][1:]]
    assert verdicts == ["ok", "ok"]
    assert _meets("t", 0.1 + 0.2, 0.3) and _meets("k", 6.999999999999998, 7)
    assert not _meets("t", 0.31, 0.3) and not _meets("l", 1, 2)


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
                        min_size=1, max_size=30), min_size=1, max_size=4))
def test_any_text_survives_a_table_as_text(names):
    parsed = parse("<section id='s'>" + table(["name"], [[n] for n in names]) + "</section>")
    assert [row[0] for row in parsed.sections["s"]["tables"][0][1:]] == [n.strip()
                                                                        for n in names]
    assert parsed.tags.count("td") == len(names)


def test_numbers_read_as_people_expect():
    assert [fmt(v) for v in (3, 12345, 0.5, 1 / 3, float("inf"), None, float("nan"))] == [
        "3", "12,345", "0.5", "0.3333", "inf", "-", "-"]


# --------------------------------------------------------------------------------------------
# A photo run's folder (the layout privface.pipeline writes; see docs/photo-pipeline.md)


def _photo(seed: int, size=(120, 100)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size[::-1], Image.Resampling.BILINEAR)


@pytest.fixture
def photo_run(tmp_path: Path) -> dict:
    originals, out = tmp_path / "originals", tmp_path / "out"
    (out / "certificates").mkdir(parents=True)
    originals.mkdir()
    names = [f"{i:06d}.jpg" for i in range(15)] + [ODD]
    for i, name in enumerate(names):
        _photo(i).save(originals / name)
        _photo(100 + i).save(out / name)
        certificate = {"schema": "privface.photo-certificate/1", "file": name,
                       "generator": {"name": "ksame", "params": {"k": 2}},
                       "faces": [{"face": 0, "changed": ["Young"] if i % 2 else [],
                                  "ksame": {"group": i // 2, "k": 2, "group_size": 2},
                                  "leakage": {"distance": 0.3 if i < 4 else 0.9,
                                              "matches_source": i < 4, "threshold": 0.6}}]}
        (out / "certificates" / f"{name}.json").write_text(json.dumps(certificate))
    (out / "000003.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")  # cannot be read back
    run = {"schema": "privface.anonymize-photos/1",
           "photos": {"input": 17, "written": 16, "already_done": 0, "skipped": 1},
           "faces": 16, "generator": {"name": "ksame", "params": {"k": 2}},
           "requirements": {"k": 2, "t": 0.5}, "qi": ["Male", "Young", EVIL],
           "persons": {"case": "identities", "detail": "from the identity file", "n_persons": 8},
           "ppas": {"ppas": True, "qi": ["Male", "Young", EVIL], "controlled": ["Male", "Young"],
                    "generalised": [EVIL], "editable": ["Male", "Young"], "reference_size": 16,
                    "mean_changed": 0.5, "guarantee": "NO differential-privacy guarantee"},
           "reached": {"k": 3, "l": 2, "t": 0.4}, "seeded": False, "resumed": False,
           "seconds": 4.2, "photos_per_second": 3.8,
           "skipped": [{"file": "<script>x</script>.jpg", "reason": "no face found"}],
           "ksame": {"k_min": 2, "k_mean": 2.0, "groups": 8, "faces_in_merged_classes": 0},
           "outputs": {"faces": 16, "qi": ["Male", "Young"], "realised": 0.75,
                       "reached": {"k": 1, "l": 1, "t": 0.6}, "requirements_met": False},
           "leakage": {"recognizer": "sface", "far": 0.001, "threshold": 0.6165, "faces": 16,
                       "match_rate": 0.25, "mean_distance": 0.75},
           "perturbation": {"method": "uap", "xi": 0.04, "p": "inf", "seeded": False,
                            "max_change_levels": 10, "faces_read_differently": 0.3125,
                            "outputs_released": {"faces": 16, "realised": 0.5,
                                                 "reached": {"k": 2, "l": 2, "t": 0.7}}}}
    (out / "run.json").write_text(json.dumps(run))
    return {"originals": originals, "out": out, "names": names, "run": run}


def test_photo_run_report_shows_requirements_both_ways_and_a_before_after_grid(photo_run):
    page = render_photo_run(photo_run["out"], originals=photo_run["originals"], thumbnails=6)
    parsed = assert_self_contained(page)
    assert parsed.verdict.startswith("FAILED")
    assert "the released faces' predicted attributes do not" in parsed.verdict
    assert list(parsed.sections) == ["requirements", "run", "ppas", "generator", "outputs",
                                     "skipped", "thumbnails"]
    rows = parsed.sections["requirements"]["tables"][0][1:]
    # requirement, op, asked, targets reach, verdict, released faces reach, verdict
    assert [(r[0], number(r[2]), number(r[3]), r[4], number(r[5]), r[6]) for r in rows] == [
        ("k-anonymity", 2, 3, "ok", 1, "FAIL"),
        ("t-closeness over persons", 0.5, 0.4, "ok", 0.6, "FAIL")]
    qi_rows = parsed.sections["ppas"]["tables"][0][1:]
    assert [r[:2] for r in qi_rows] == [["Male", "controlled"], ["Young", "controlled"],
                                        [EVIL, "generalised (no claim)"]]
    assert parsed.sections["skipped"]["tables"][0][1] == ["<script>x</script>.jpg",
                                                          "no face found"]
    # Six photos spread over the sixteen written (000000, 000003, ..., then ODD), before and
    # after each; the anonymized 000003.jpg is truncated: a box says so instead of an image.
    assert len(parsed.images) == 11 and " ".join(parsed.text).count("cannot read") == 1
    assert "6 of 16 written photos" in parsed.sections["thumbnails"]["headings"][0]
    assert ODD not in page and html.escape(ODD) in page
    leakage = parsed.sections["outputs"]["facts"]
    assert leakage["faces still matched to their source"] == "25.0%"
    assert leakage["largest change (grey levels)"] == "10"
    assert leakage["faces the attribute model reads differently after it"] == "31.2%"
    assert leakage["t of the fooled reading"] == "0.7"
    # Photos 000000-000003 are still matched by SFace: the sampled ones are outlined in red.
    assert page.count('class="pair alert"') == 2  # 000000 and 000003 among the six


def test_photo_run_report_marks_unreadable_and_missing_photos(photo_run):
    page = render_photo_run(photo_run["out"], thumbnails=16)
    parsed = assert_self_contained(page)
    text = " ".join(parsed.text)
    # Without the originals only the anonymized photos show; the truncated one says why.
    assert len(parsed.images) == 15
    assert text.count("originals not given") == 16
    assert "cannot read" in text and "000003.jpg" in text


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    from privface.base.errors import InputError

    with pytest.raises(InputError, match="no run.json"):
        render_photo_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema": "privface.audit/1"}')
    with pytest.raises(InputError, match="anonymize-photos/1"):
        render_photo_run(tmp_path)


# --------------------------------------------------------------------------------------------
# An evaluation


@pytest.fixture
def evaluation(tmp_path: Path):
    from privface.evaluation import AttributeAgreement, EvaluationReport, identity_leakage
    from privface.quality import QualityScores

    originals, anonymized = tmp_path / "orig", tmp_path / "anon"
    originals.mkdir()
    anonymized.mkdir()
    n = 10
    names = [f"p{i}.png" for i in range(n)]
    for i, name in enumerate(names):
        _photo(i).save(originals / name)
        _photo(50 + i).save(anonymized / name)
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(n, 8))
    probes = gallery + rng.normal(scale=0.8, size=(n, 8))
    ids = np.repeat(np.arange(5), 2)
    leaks = {name: identity_leakage(gallery, probes, np.ones(n, bool), metric=metric,
                                    fars=(1e-2, 1e-1), identities=ids, recognizer=name)
             for name, metric in (("sface", "cosine"), ("dlib", "euclidean"))}
    # Scores as privface.quality gives them (its own tests check the numbers).
    quality = QualityScores(psnr=rng.uniform(12, 30, n), ssim=rng.uniform(0.3, 0.9, n),
                            ms_ssim=rng.uniform(0.4, 0.95, n), ms_ssim_scales=np.full(n, 5))
    per_pair = pd.DataFrame({"original": names, "anonymized": names, "identity": ids,
                             "face_detected": True, "landmarks": "original",
                             "psnr": quality.psnr, "ssim": quality.ssim})
    for name, leak in leaks.items():
        per_pair[f"{name}_distance"] = leak.distances
        per_pair[f"{name}_top1"] = leak.top1_hits
    agreement = AttributeAgreement("model", ("Male", EVIL), np.array([0.9, 0.4]), n)
    report = EvaluationReport(str(originals), str(anonymized), n, n, "original", 0, leaks,
                              (1e-2, 1e-1), quality, 0, agreement,
                              pd.DataFrame([{"file": "<b>.png", "folder": "originals",
                                             "reason": "no face found"}]), per_pair,
                              notes=["a <note>"])
    return report


def test_evaluation_report_has_the_leakage_table_with_intervals(evaluation):
    page = render_evaluation(evaluation, thumbnails=4)
    parsed = assert_self_contained(page)
    assert list(parsed.sections) == ["leakage", "quality", "detection", "attributes",
                                     "thumbnails", "skipped", "notes"]
    header, *rows = parsed.sections["leakage"]["tables"][0]
    assert header == ["", "sface", "dlib"]
    by_label = {r[0]: r[1:] for r in rows}
    for i, name in enumerate(("sface", "dlib")):
        leak = evaluation.identity[name]
        assert number(by_label["top-1 re-identification (same person)"][i]) == pytest.approx(
            leak.top1_reid, abs=5e-4)
        low, high = by_label["95% interval (Wilson, faces)"][i].split(" - ")
        assert (number(low), number(high)) == pytest.approx(leak.top1_reid_ci95, abs=5e-4)
        assert number(by_label["match rate at FAR 1e-2"][i]) == pytest.approx(
            leak.match_rates[1e-2], abs=5e-4)
    quality = parsed.sections["quality"]["facts"]
    assert number(quality["PSNR (dB)"]) == pytest.approx(evaluation.quality.psnr.mean(),
                                                         rel=1e-3)
    # Charts: leakage, distances, quality, attributes; then four pairs before and after.
    assert len(parsed.images) == 4 + 8
    hits = sum(bool(evaluation.per_pair[f"{n}_top1"].iloc[i]) for n in ("sface", "dlib")
               for i in (0, 3, 6, 9))
    assert page.count("re-identified (d=") - page.count("not re-identified (d=") == hits
    assert "&lt;note&gt;" in page and "<note>" not in page and EVIL not in page


# --------------------------------------------------------------------------------------------
# The commands


def test_audit_writes_html_atomically_and_to_standard_output(tmp_path):
    target = tmp_path / "report.html"
    result = runner.invoke(app, ["audit", "--demo", "--qi", "Male,Young,Smiling", "--k", "5",
                                 "--format", "html", "--output", str(target)])
    assert result.exit_code == 0, result.output
    parsed = assert_self_contained(target.read_text())
    assert parsed.verdict.startswith("PASSED") and len(parsed.images) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left
    result = runner.invoke(app, ["audit", "--demo", "--qi", "Male,Young,Smiling,Eyeglasses,"
                                 "Bald,Blond_Hair", "--k", "50", "--explain", "--format",
                                 "html"])
    assert result.exit_code == 1
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert "counterfactual-table" in result.stdout


def test_anonymize_table_writes_its_report(tmp_path):
    out, report = tmp_path / "anon.csv", tmp_path / "anon.html"
    result = runner.invoke(app, ["anonymize", "--demo", "--qi", "Male,Young,Smiling", "--k",
                                 "5", "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    certificate = json.loads(Path(f"{out}.certificate.json").read_text())
    parsed = assert_self_contained(report.read_text())
    facts = parsed.sections["information-loss"]["facts"]
    assert number(facts["equivalence classes"]) == certificate["information_loss"]["n_classes"]
    # The same certificate, rendered later by `privface report`, says the same.
    again = tmp_path / "again.html"
    result = runner.invoke(app, ["report", f"{out}.certificate.json", "-o", str(again)])
    assert result.exit_code == 0, result.output
    assert parse(again.read_text()).sections["information-loss"]["facts"] == facts


def test_report_command_renders_a_photo_run(photo_run, tmp_path):
    target = tmp_path / "run.html"
    result = runner.invoke(app, ["report", str(photo_run["out"]), "--originals",
                                 str(photo_run["originals"]), "--thumbnails", "3", "-o",
                                 str(target)])
    assert result.exit_code == 0, result.output
    assert len(assert_self_contained(target.read_text()).images) == 6


@pytest.mark.parametrize("args, message", [
    (["report", "{tmp}/nowhere"], "no such file or folder"),
    (["report", "{tmp}"], "no run.json"),
    (["report", "{tmp}", "--originals", "{tmp}/nowhere"], "original photos"),
])
def test_report_command_exits_2_naming_the_culprit(tmp_path, args, message):
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without it sees
    for args in (["audit", "--demo", "--qi", "Male", "--format", "html"],
                 ["anonymize", "--demo", "--qi", "Male", "--k", "2", "--out",
                  str(tmp_path / "a.csv"), "--report", str(tmp_path / "a.html")],
                 ["report", str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert 'pip install "privface[report]"' in result.output
    assert not (tmp_path / "a.csv").exists()  # it failed before doing the work


def test_reports_do_not_load_matplotlib_into_privmetrics():
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, privface.privmetrics, privface.reports, "
         "privface.cli.main; print('matplotlib' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["html", "plots", "thumbnails", "audit", "photos",
                                  "evaluation", "deps", ""])
def test_docstring_examples(name):
    module = importlib.import_module("privface.reports" + (f".{name}" if name else ""))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------------------------
# Headless Chromium: the page renders, every image decodes, nothing untrusted runs


def _chromium() -> str | None:
    for name in (os.environ.get("PRIVFACE_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _artifacts() -> Path:
    folder = Path(os.environ.get("PRIVFACE_ARTIFACTS") or ROOT / ".ci" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Added to a copy of the page (the report itself has no script): once everything has loaded,
# write what the browser sees into the DOM, for --dump-dom to print.
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const out = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    pwned: document.getElementById("pwned") !== null,
    height: document.documentElement.scrollHeight,
    headings: Array.from(document.querySelectorAll("h1, h2")).map(h => h.textContent),
    text: document.body.innerText,
  };
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _run_chromium(browser: str, profile: Path, *args: str) -> str:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def open_in_chromium(page: str, name: str, tmp_path: Path) -> dict:
    """Render ``page``: probe results, and a full-page screenshot saved as an artifact."""
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    artifacts = _artifacts()
    report = artifacts / f"{name}.html"
    report.write_text(page, encoding="utf-8")
    probe = tmp_path / f"{name}-probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    # The same width as the screenshot, so that the measured height is the screenshot's.
    dom = _run_chromium(browser, tmp_path / "profile-dom", "--window-size=1280,900",
                        "--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.S)
    assert found, "the page did not finish loading in Chromium"
    seen = json.loads(html.unescape(found.group(1)))
    screenshot = artifacts / f"{name}.png"
    height = min(max(int(seen["height"]), 600), 16000)
    _run_chromium(browser, tmp_path / "profile-shot", f"--window-size=1280,{height}",
                  f"--screenshot={screenshot}", report.as_uri())
    with Image.open(screenshot) as shot:
        pixels = np.asarray(shot.convert("L"), dtype=np.float32)
    seen["pixel_std"] = float(pixels.std())
    seen["inked"] = float((pixels < 200).mean())
    seen["screenshot"] = screenshot
    return seen


def _assert_rendered(seen: dict, images: int, headings: list[str]) -> None:
    assert seen["images"] == images and seen["broken"] == []
    assert not seen["pwned"]
    for heading in headings:
        assert heading in seen["headings"], (heading, seen["headings"])
    # Not a blank page: text and charts put ink on a good share of it.
    assert seen["pixel_std"] > 20 and seen["inked"] > 0.01, seen["screenshot"]


@pytest.mark.slow
def test_chromium_renders_the_audit_report(audit_page, tmp_path):
    _, _, page = audit_page
    seen = open_in_chromium(page, "html-report-audit", tmp_path)
    _assert_rendered(seen, 4, ["privface audit", "Requirements", "Class sizes",
                               "Re-identification risk (prosecutor model)",
                               "Distinguishing power of each attribute",
                               "What would make it private (counterfactuals)", "Worst classes"])
    assert "FAILED" in seen["text"] and EVIL in seen["text"] and "<b>faces</b>.csv" in \
        seen["text"]


@pytest.mark.slow
def test_chromium_renders_the_table_anonymization_report(faces, tmp_path):
    table, qi = faces
    result = anonymize_table(table, qi, ["identity"], k=5, l=2)
    page = render_table_anonymization(result.certificate(), audit=result.audit,
                                      class_sizes=class_sizes(result.table, qi))
    seen = open_in_chromium(page, "html-report-anonymize-table", tmp_path)
    _assert_rendered(seen, 3, ["Information loss", "Class sizes of the anonymized table"])
    assert "PASSED" in seen["text"]


@pytest.mark.slow
def test_chromium_renders_the_photo_run_report(photo_run, tmp_path):
    page = render_photo_run(photo_run["out"], originals=photo_run["originals"], thumbnails=8)
    seen = open_in_chromium(page, "html-report-photo-run", tmp_path)
    _assert_rendered(seen, 16, ["Requirements", "Verification of the released faces",
                                "Before and after (8 of 16 written photos)"])
    assert "<script>x</script>.jpg" in seen["text"] and ODD in seen["text"]


@pytest.mark.slow
def test_chromium_renders_the_evaluation_report(evaluation, tmp_path):
    seen = open_in_chromium(render_evaluation(evaluation, thumbnails=6), "html-report-evaluate",
                            tmp_path)
    _assert_rendered(seen, 4 + 12, ["Identity leakage", "Image quality",
                                    "Attributes preserved", "Before and after (6 of 10 pairs)"])


# --------------------------------------------------------------------------------------------
# Real faces: the photo run and its evaluation, end to end through the commands


@pytest.mark.realdata
@pytest.mark.slow
def test_realdata_photo_run_and_evaluation_reports(celeba_dir, tmp_path):
    from privface.privmetrics.readers import read_celeba_identities

    source = celeba_dir / "img_align_celeba_200ids"
    identity_file = celeba_dir / "identity_CelebA.txt"
    ids = read_celeba_identities(identity_file)
    ids = ids[ids.index.isin([p.name for p in source.iterdir()])]
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in sorted(ids.unique())[:3]:
        for name in sorted(ids.index[ids == person])[:2]:
            shutil.copy(source / name, photos / name)
    out, run_html = tmp_path / "out", tmp_path / "run.html"
    # Blur: a quick generator that sets no attribute, so every photo with a target is written.
    result = runner.invoke(app, ["anonymize", str(photos), "--k", "2", "--identities",
                                 str(identity_file), "--out", str(out), "--workers", "1",
                                 "--generator", "blur", "--param", "sigma=6",
                                 "--allow-collapse", "--report", str(run_html)])
    seen_run = json.loads((out / "run.json").read_text())
    # Blur realises no attribute: what the model reads off the blurred faces decides the
    # verdict (exit 1 when it misses k), and the report is written either way.
    assert result.exit_code == (0 if seen_run["verdict"]["met"] else 1), result.output
    written = sorted(p.name[:-5] for p in (out / "certificates").glob("*.json"))
    assert written
    page = run_html.read_text()
    parsed = assert_self_contained(page)
    assert len(parsed.images) == 2 * len(written)
    rows = parsed.sections["requirements"]["tables"][0][1:]
    release = parsed.sections["release"]["tables"][0][1:]
    assert [row[2] for row in release] == [
        f"{rate:.1%}" for rates in seen_run["release"]["by_group"].values()
        for rate in rates.values()]
    assert number(rows[0][3]) == seen_run["reached"]["k"]
    eval_html = tmp_path / "eval.html"
    result = runner.invoke(app, ["evaluate", str(photos), str(out), "--identities",
                                 str(identity_file), "--workers", "1", "--quiet", "--format",
                                 "html", "--output", str(eval_html)])
    assert result.exit_code == 0, result.output
    evaluated = assert_self_contained(eval_html.read_text())
    assert list(evaluated.sections)[:4] == ["leakage", "quality", "detection", "attributes"]
    if _chromium() is not None:
        for name, path in (("html-report-realdata-run", run_html),
                           ("html-report-realdata-evaluate", eval_html)):
            seen = open_in_chromium(path.read_text(), name, tmp_path)
            assert seen["broken"] == [] and seen["images"] > 0 and seen["pixel_std"] > 20
