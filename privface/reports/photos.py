"""HTML report of a photo run (``privface anonymize PHOTOS_DIR``), rendered from its folder.

Everything comes from what the run wrote: ``OUT/run.json`` (schema
``privface.anonymize-photos/1``), ``OUT/certificates/NAME.json`` and the anonymized photos. The
run does not record where its originals were, so the before/after grid needs them given
(``originals``); without them it shows the anonymized photos alone. A report with originals shows
real faces next to their anonymized versions: it is for the data holder, like the certificates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from privface.privmetrics.compare import at_least, at_most
from privface.base.errors import InputError

from .html import Page, badge, definitions, fmt, join, note, prose, table, tag
from .thumbnails import Pair, evenly, pair_grid

RUN_SCHEMA = "privface.anonymize-photos/1"
_AT_LEAST = {"k", "l"}
_REQUIREMENT_NAMES = {"k": "k-anonymity", "l": "distinct l-diversity over persons",
                      "t": "t-closeness over persons"}
_PPAS_FACTS = {"model": "photo model", "reference": "reference population",
               "reference_size": "faces in the reference",
               "reference_classes": "classes in the reference",
               "feasible_classes": "classes meeting the requirements",
               "faces": "faces", "targeted": "faces given a private target",
               "skipped": "faces without a private target",
               "mean_changed": "attributes changed per face (mean)",
               "faces_changed": "faces with a changed attribute",
               "epsilon": "epsilon per face"}
_SKIPPED_SHOWN = 200


def read_run(run_dir: str | Path) -> dict:
    """``RUN_DIR/run.json`` of a photo run, checked.

    Raises
    ------
    InputError
        Naming the file: missing, not JSON, or not a photo run's report.

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     read_run(tempfile.mkdtemp())
    ... except InputError as exc:
    ...     print(exc.message)
    no run.json: expected the output folder of `privface anonymize PHOTOS_DIR`
    """
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise InputError("no run.json: expected the output folder of `privface anonymize "
                         "PHOTOS_DIR`", file=str(path))
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the run report: {exc}", file=str(path)) from None
    if not isinstance(run, dict) or run.get("schema") != RUN_SCHEMA:
        found = run.get("schema") if isinstance(run, dict) else type(run).__name__
        raise InputError(f"expected a {RUN_SCHEMA} report, found {found!r}", file=str(path))
    return run


def read_certificates(run_dir: str | Path) -> dict[str, dict]:
    """The per-photo certificates of a run, by photo name (unreadable ones are left out).

    The photo's name comes from the certificate's file name (``NAME.json``), never from inside
    the file, and must be a plain name: a crafted certificate cannot point outside the folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "certificates").mkdir()
    >>> _ = (d / "certificates" / "a.jpg.json").write_text('{"faces": []}')
    >>> read_certificates(d)
    {'a.jpg': {'faces': []}}
    """
    folder = Path(run_dir) / "certificates"
    out: dict[str, dict] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        name = path.name[:-len(".json")]
        if not name or Path(name).name != name or name.startswith("."):
            continue
        try:
            certificate = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(certificate, dict):
            out[name] = certificate
    return out


def _meets(key: str, reached: Any, asked: Any) -> bool | None:
    if reached is None or asked is None:
        return None
    reached = float("inf") if reached == "inf" else float(reached)
    # The engine's comparison: a value equal to the bound up to rounding meets it, as in the audit.
    return at_least(reached, asked) if key in _AT_LEAST else at_most(reached, asked)


def _requirements(page: Page, run: dict) -> tuple[bool | None, bool | None]:
    """The requirements section; returns whether the targets, and the released faces, meet them
    (None where nothing was asked, or the faces were not verified)."""
    asked = {k: v for k, v in run.get("requirements", {}).items() if k in ("k", "l", "t")}
    reached = run.get("reached") or {}
    outputs = run.get("outputs") or {}
    seen = outputs.get("reached") or {}
    rows, classes, verdicts = [], [], []
    for key, value in asked.items():
        target_ok = _meets(key, reached.get(key), value)
        output_ok = _meets(key, seen.get(key), value)
        verdicts.append(target_ok)
        rows.append([_REQUIREMENT_NAMES[key], ">=" if key in _AT_LEAST else "<=", value,
                     reached.get(key),
                     badge(target_ok, "ok" if target_ok else "FAIL"), seen.get(key),
                     badge(output_ok, "ok" if output_ok else "FAIL") if output_ok is not None
                     else "not verified"])
        classes.append("pass" if target_ok and output_ok is not False else "fail")
    content: list[Any] = []
    if rows:
        content.append(table(["requirement", "", "asked", "targets reach (PPAS, reference)",
                              "targets", "released faces reach (predicted)", "released faces"],
                             rows, numeric=[2, 3, 5], row_classes=classes))
    else:
        content.append(note("No k, l or t was asked."))
    if "epsilon" in run.get("requirements", {}):
        epsilon = fmt(run["requirements"]["epsilon"])
        content.append(tag("p", f"Randomized response: epsilon {epsilon} per face over the "
                                "editable attributes."))
    content.append(tag("p", "The targets' classes are measured in the reference population; the "
                            "released faces' classes are their attributes as predicted from the "
                            "written photos (what an attacker reads), over the persons.",
                       class_="meta"))
    page.section("requirements", "Requirements", *content)
    if not verdicts:
        return None, None
    return all(v is not False for v in verdicts), outputs.get("requirements_met")


def _ppas(page: Page, run: dict) -> None:
    ppas = run.get("ppas") or {}
    qis = list(run.get("qi") or ppas.get("qi") or [])
    controlled = set(ppas.get("controlled", qis if not ppas.get("ppas") else []))
    editable = set(ppas.get("editable", []))
    rows = [[q, "controlled" if q in controlled else "generalised (no claim)",
             "yes" if q in editable else "no"] for q in qis]
    facts = {label: ppas[key] for key, label in _PPAS_FACTS.items() if key in ppas}
    content: list[Any] = [table(["quasi-identifier", "status", "generator edits it"], rows,
                                id="qi-table")]
    if ppas.get("generalised"):
        content.append(note("Generalised quasi-identifiers are not controlled: no requirement "
                            "could be met with them, so the certificates make no claim about "
                            "them: " + ", ".join(ppas["generalised"]), "warn"))
    if facts:
        content.append(definitions(facts))
    readings = ppas.get("readings") or {}
    if readings.get("confidence") is not None:
        content.append(definitions({
            "confidence threshold": readings["confidence"],
            "faces with an uncertain reading (never changed)":
                readings.get("faces_with_an_uncertain_reading"),
            **{f"uncertain {name}": count for name, count in
               (readings.get("uncertain") or {}).items()},
            **{f"{name} corrected by the person's other photos": count for name, count in
               (readings.get("corrected_by_person") or {}).items()}}))
    if ppas.get("guarantee"):
        content.append(tag("p", ppas["guarantee"], class_="meta"))
    if ppas.get("note"):
        content.append(note(ppas["note"]))
    page.section("ppas", "Targets (PPAS) and generalised attributes", *content)


def _generator(page: Page, run: dict) -> None:
    generator = run.get("generator") or {}
    params = generator.get("params") or {}
    facts: dict[str, Any] = {"generator": generator.get("name", "?")}
    facts.update({f"parameter {k}": json.dumps(v) if not isinstance(v, str) else v
                  for k, v in params.items()})
    persons = run.get("persons") or {}
    facts["persons"] = f"{persons.get('case', '?')} ({fmt(persons.get('n_persons'))} persons)"
    group = run.get(generator.get("name", ""), None)
    if isinstance(group, dict):
        facts.update({f"{generator.get('name')}: {k.replace('_', ' ')}": v
                      for k, v in group.items()})
    content: list[Any] = [definitions(facts)]
    if persons.get("detail"):
        content.append(tag("p", persons["detail"], class_="meta"))
    page.section("generator", "Generator and persons", *content)


def _outputs(page: Page, run: dict) -> None:
    outputs = run.get("outputs")
    if not outputs:
        page.section("outputs", "Verification of the released faces",
                     note("Not verified (the run used --no-verify)."))
        return
    met = outputs.get("requirements_met")
    facts = {"faces checked": outputs.get("faces"),
             "attributes checked": ", ".join(outputs.get("qi") or []) or "(none)",
             "faces showing their target": fmt(outputs.get("realised"), ".1%")}
    facts.update({f"{k} of the released faces": v for k, v in
                  (outputs.get("reached") or {}).items()})
    content: list[Any] = [tag("p", join([badge(met, None if met is not None else
                                                "NO REQUIREMENT"), " requirements on the "
                                         "released faces' predicted attributes"])),
                          definitions(facts)]
    if met is False:
        content.append(note("The released faces' predicted attributes do not meet the "
                            "requirements: the generator does not realise its targets well "
                            "enough. Generalise more (fewer --qi) or use a generator that edits "
                            "these attributes.", "bad"))
    leakage = run.get("leakage") or {}
    if leakage.get("faces"):
        content += [tag("h3", "Identity leakage (quick check)"), definitions({
            "recognizer": leakage.get("recognizer"),
            "faces still matched to their source": fmt(leakage.get("match_rate"), ".1%"),
            "threshold (false-accept rate)": f"{fmt(leakage.get('threshold'))} "
                                             f"({fmt(leakage.get('far'), 'g')})",
            "mean distance to the source": leakage.get("mean_distance"),
            "faces checked": leakage.get("faces")}),
            tag("p", prose("`privface evaluate ORIGINALS OUT` measures re-identification in "
                           "full (two recognizers, top-1 against a gallery, intervals)."),
                class_="meta")]
    perturbation = run.get("perturbation") or {}
    if perturbation:
        content += [tag("h3", "Adversarial perturbation (stage IV)"), definitions({
            "method": perturbation.get("method"),
            "budget": f"{fmt(perturbation.get('xi'), 'g')} (l_{perturbation.get('p')})",
            "largest change (grey levels)": perturbation.get("max_change_levels"),
            "faces the attribute model reads differently after it":
                fmt(perturbation.get("faces_read_differently"), ".1%"),
            **{f"{key} of the fooled reading": value for key, value in
               ((perturbation.get("outputs_released") or {}).get("reached") or {}).items()},
            "seeded": perturbation.get("seeded")}),
            tag("p", "The verification above reads the faces before the perturbation (what a "
                     "reader it does not fool sees); the fooled reading is what the attribute "
                     "model makes of the released files.", class_="meta")]
    page.section("outputs", "Verification of the released faces", *content)


def _release(page: Page, run: dict) -> None:
    """Release rates per predicted group: a requirement met by withholding one group's photos
    is not met."""
    release = run.get("release") or {}
    if not release.get("photos_with_a_face"):
        return
    rows = [[group, value, fmt(rate, ".1%")]
            for group, rates in (release.get("by_group") or {}).items()
            for value, rate in rates.items()]
    balanced = release.get("balanced")
    content: list[Any] = [
        tag("p", join([badge(balanced, "balanced" if balanced else "UNBALANCED"),
                       f" {release['released']:,} of {release['photos_with_a_face']:,} photos "
                       f"with a face released ({fmt(release.get('rate'), '.1%')}); the largest "
                       f"gap between groups is {fmt(release.get('max_gap_points'))} points"])),
        table(["predicted group", "value", "release rate"], rows, numeric=[2])]
    decision = run.get("verdict") or {}
    if decision.get("why"):
        content.append(note("; ".join(decision["why"]), "bad"))
    page.section("release", "Release rate per group", *content)


def _skipped(page: Page, run: dict) -> None:
    skipped = run.get("skipped") or []
    if not skipped:
        page.section("skipped", "Skipped photos", tag("p", "None: every photo was written."))
        return
    rows = [[s.get("file", "?"), s.get("reason", "?")] for s in skipped[:_SKIPPED_SHOWN]]
    more = len(skipped) - len(rows)
    page.section("skipped", f"Skipped photos ({len(skipped):,})",
                 table(["file", "reason"], rows, id="skipped-table"),
                 tag("p", f"... and {more:,} more (run.json has them all)") if more > 0 else "")


def _caption(certificate: dict) -> list[str]:
    faces = certificate.get("faces") or []
    lines = [f"{len(faces)} face{'s' if len(faces) != 1 else ''}"]
    changed = sorted({a for f in faces for a in (f.get("changed") or [])})
    if changed:
        lines.append("changed: " + ", ".join(changed))
    checks = [f["leakage"] for f in faces if isinstance(f.get("leakage"), dict)]
    matched = [c for c in checks if c.get("matches_source")]
    if checks:
        lines.append(f"SFace matches its source: {len(matched)} of {len(checks)} face(s)")
    groups = [f.get("ksame") for f in faces if isinstance(f.get("ksame"), dict)]
    if groups:
        lines.append("k-Same group of " + ", ".join(str(g.get("k")) for g in groups)
                     + " persons")
    return lines


def _leaks(certificate: dict) -> bool:
    """Whether the run's recognizer check still matched a face of this photo to its source."""
    return any(isinstance(f.get("leakage"), dict) and bool(f["leakage"].get("matches_source"))
               for f in certificate.get("faces") or [])


def render_photo_run(run_dir: str | Path, *, originals: str | Path | None = None,
                     thumbnails: int = 12) -> str:
    """A photo run's folder as one self-contained HTML page.

    Parameters
    ----------
    run_dir : path
        The ``--out`` folder of ``privface anonymize PHOTOS_DIR``.
    originals : path, optional
        The input photos, for the before/after grid.
    thumbnails : int
        How many written photos the grid shows (spread evenly over the names; 0: no grid).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "run.json").write_text(json.dumps({"schema": RUN_SCHEMA, "requirements":
    ...     {"k": 2}, "reached": {"k": 3}, "skipped": [{"file": "<b>.jpg", "reason": "no face"}],
    ...     "photos": {"input": 1, "written": 0}, "generator": {"name": "blur"}}))
    >>> html = render_photo_run(d)
    >>> "&lt;b&gt;.jpg" in html and "PASSED" in html
    True
    """
    folder = Path(run_dir)
    run = read_run(folder)
    certificates = read_certificates(folder)
    meta = [f"run folder: {folder}"]
    if originals is not None:
        meta.append(f"originals: {originals}")
    generator = run.get("generator") or {}
    meta.append(f"generator: {generator.get('name', '?')}; persons: "
                f"{(run.get('persons') or {}).get('case', '?')}")
    page = Page("privface anonymize: photo run", meta=meta)
    targets_ok, outputs_ok = _requirements(page, run)
    photos = run.get("photos") or {}
    written = photos.get("written", 0) + photos.get("already_done", 0)
    summary = (f"{written:,} of {photos.get('input', 0):,} photos written, "
               f"{photos.get('skipped', len(run.get('skipped') or [])):,} skipped")
    decision = run.get("verdict") or {}
    if decision.get("met") is False and targets_ok is not False:
        page.verdict(False, summary + "; the release does not meet the requirements (photo "
                                      "model v2): " + "; ".join(decision.get("why") or []))
    elif targets_ok is None:
        page.verdict(None, summary + "; no requirement asked")
    elif not targets_ok:
        page.verdict(False, summary + "; the targets do not meet the requirements")
    elif outputs_ok is False:
        page.verdict(False, summary + "; the targets meet the requirements, the released faces' "
                                      "predicted attributes do not")
    else:
        page.verdict(True, summary + "; the requirements hold" + (
            " for the targets and the released faces" if outputs_ok else
            " for the targets (released faces not verified)"))
    run_facts = {"photos in": photos.get("input"), "photos written": photos.get("written"),
                 "already done (resumed)": photos.get("already_done"),
                 "photos skipped": photos.get("skipped"), "faces": run.get("faces"),
                 "seconds": run.get("seconds"), "photos per second":
                 run.get("photos_per_second"), "resumed": run.get("resumed")}
    content: list[Any] = [definitions({k: v for k, v in run_facts.items() if v is not None})]
    if run.get("seeded"):
        content.append(note("Seeded run: reproducible, not for release (the randomised "
                            "response is private only while the seed is secret).", "warn"))
    page.section("run", "Run", *content)
    _ppas(page, run)
    _generator(page, run)
    _outputs(page, run)
    _release(page, run)
    _skipped(page, run)
    names = evenly(sorted(certificates), thumbnails)
    if names:
        before = Path(originals) if originals is not None else None
        pairs = [Pair(name, before / name if before is not None and (before / name).is_file()
                      else None, folder / name if (folder / name).is_file() else None,
                      _caption(certificates[name]),
                      "originals not given" if before is None else "not found",
                      alert=_leaks(certificates[name]))
                 for name in names]
        warning = note("This grid shows original faces next to their anonymized versions: keep "
                       "this report with the data holder, like the certificates; do not "
                       "publish it with the photos. Outlined in red: a face SFace still "
                       "matches to its source.", "warn") if before is not None else \
            note("Originals not given (`privface report RUN_DIR --originals PHOTOS_DIR`): "
                 "anonymized photos only.")
        page.section("thumbnails", f"Before and after ({len(names)} of {len(certificates):,} "
                                   "written photos)", warning, pair_grid(pairs))
    return page.render()
