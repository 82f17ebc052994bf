"""``privface anonymize PHOTOS_DIR``: the image pipeline behind the anonymize command."""

from __future__ import annotations

# The commands import the metrics engine, the face parts and the reports when they run, not at
# the top: `privface --help` then starts without scipy, POT, torch or OpenCV.

import contextlib
import os
from pathlib import Path

import typer

from privface.base.errors import InputError

from .common import EXIT_FAILED, EXIT_OK, fail_input, stderr


def parse_params(values: list[str] | None) -> dict:
    """``--param name=value`` options as a dict; numbers become numbers, true/false booleans.

    Examples
    --------
    >>> parse_params(["sigma=4", "color=0,0,0", "name=x", "region=true", "fit=False"])
    {'sigma': 4, 'color': (0, 0, 0), 'name': 'x', 'region': True, 'fit': False}
    """
    out: dict = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--param expects NAME=VALUE, got {item!r}")

        def number(text: str):
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            for kind in (int, float):
                try:
                    return kind(text)
                except ValueError:
                    pass
            return text

        parts = [number(p.strip()) for p in value.split(",")]
        out[name.strip()] = tuple(parts) if len(parts) > 1 else parts[0]
    return out


def _perturber(method: str | None, *, xi: float | None, uap: Path | None, norm: str,
               seed: int | None):
    """The ``--perturb`` options as a PhotoPerturber (None without one); bad ones are errors."""
    if method is None:
        given = [name for name, value in (("--xi", xi), ("--uap", uap)) if value is not None]
        if given:
            raise InputError(f"{', '.join(given)} only apply with --perturb")
        return None
    if uap is not None and method != "uap":
        raise InputError(f"--uap only applies with --perturb uap, not {method}")
    from privface.adversarial.photos import PhotoPerturber

    return PhotoPerturber(method, xi=xi, p=norm, uap=uap, seed=seed)


def check_report_path(report: Path, folder: Path, out: Path, inputs: list[Path | None]) -> None:
    """Refuse an HTML report path that the run writes or reads (before any work).

    A file the run writes into ``out`` (a photo, ``run.json``, anything under ``certificates/``,
    the plan or the staging folder), an input photo, or another input file; a path is the same
    as another when it resolves to it (links) or names the same device and inode (hard links).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_report_path(folder / "report.html", folder / "photos", folder / "out", [])
    >>> check_report_path(folder / "out" / "run.json", folder / "photos", folder / "out", [])
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: ...--report would overwrite a file this run writes...
    """
    from privface.base.files import LOCK
    from privface.pipeline.outdir import PARTIAL
    from privface.pipeline.records import CERTIFICATES, REPORT
    from privface.pipeline.state import STATE_DIR

    resolved, target = report.resolve(), out.resolve()
    photos = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    owned = {target / name for name in (REPORT, LOCK)} | {target / p.name for p in photos}
    inside = [target / name for name in (CERTIFICATES, PARTIAL, STATE_DIR)]
    if resolved in owned or resolved == target or any(
            folder_ in resolved.parents for folder_ in inside):
        raise InputError("--report would overwrite a file this run writes into --out; choose "
                         "a path outside it (or another name)", file=str(report))
    for given in photos + [p for p in inputs if p is not None]:
        same = resolved == given.resolve()
        if not same and report.exists() and given.exists():
            same = report.samefile(given)
        if same:
            raise InputError(f"--report would overwrite the input {str(given)!r}; choose "
                             "another path", file=str(report))


def _interrupted(out: Path, code: int) -> typer.Exit:
    """One line on what an interrupted run leaves, and the exit status that says why."""
    from privface.pipeline.outdir import count_released

    how = "Ctrl-C" if code == 130 else "SIGTERM"
    stderr.print(f"privface anonymize: stopped by {how}; {count_released(out):,} photo(s) are "
                 f"finished in {out}, each with its certificate; run the same command again to "
                 "resume")
    return typer.Exit(code)


def run_photos(folder: Path, *, out: Path | None, generator: str, params: list[str] | None,
               checkpoint: Path | None, model_dir: Path | None, k, l, t, epsilon, seed,
               qi: list[str], reference: Path | None, identities: Path | None,
               workers: int | None, resume: bool, verify: bool = True,
               withhold: bool = False, allow_collapse: bool = False,
               confidence: float = 0.8, html_report: Path | None = None,
               perturb: str | None = None, xi: float | None = None, uap: Path | None = None,
               perturb_norm: str = "inf") -> None:
    """Run :func:`privface.pipeline.anonymize_photos` with progress bars and a summary."""
    from .common import require_faces_extra

    target = out if out is not None else Path(f"{folder.name}.anonymized")
    try:
        require_faces_extra()
        if html_report is not None:
            from privface.reports import require_matplotlib

            require_matplotlib()  # before the run: a missing extra fails fast
        from privface.pipeline import anonymize_photos

        generator_params = parse_params(params)
        if checkpoint is not None:
            generator_params["checkpoint"] = str(checkpoint)
        if model_dir is not None:
            generator_params["model_dir"] = str(model_dir)
        perturber = _perturber(perturb, xi=xi, uap=uap, norm=perturb_norm, seed=seed)
        if html_report is not None:
            check_report_path(html_report, folder, target, [identities, reference, uap,
                                                            checkpoint])
        n_photos = sum(1 for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0
        with contextlib.ExitStack() as stack:
            on_photo = on_write = None
            if stderr.is_terminal:
                from rich.progress import Progress

                bar = stack.enter_context(Progress(console=stderr, transient=True))
                analysing = bar.add_task("Finding faces and attributes", total=n_photos)
                writing = bar.add_task("Generating and writing photos", total=n_photos)
                on_photo = lambda _: bar.advance(analysing)  # noqa: E731
                on_write = lambda _: bar.advance(writing)  # noqa: E731
            report = anonymize_photos(
                folder, target, generator=generator, generator_params=generator_params,
                k=k, l=l, t=t, epsilon=epsilon, seed=seed, qi=qi or None, reference=reference,
                identities=identities, workers=workers or os.cpu_count() or 1, resume=resume,
                verify=verify, withhold=withhold, perturb=perturber, on_photo=on_photo,
                allow_collapse=allow_collapse, confidence=confidence,
                on_write=on_write)
    except (InputError, OSError) as exc:
        raise fail_input(exc) from None
    except KeyboardInterrupt:
        raise _interrupted(target, 130) from None
    except SystemExit as exc:  # privface.cli.main turns SIGTERM into SystemExit(143)
        if exc.code == 143:
            raise _interrupted(target, 143) from None
        raise
    summary = report.summary
    reached = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                        for key, value in summary.reached.items() if value is not None)
    stderr.print(
        f"privface anonymize: wrote {len(report.written):,} photo(s) to {report.out_dir} "
        f"({summary.photos_per_second} photos/s), certificates in "
        f"{report.out_dir / 'certificates'}, report {report.out_dir / 'run.json'}")
    if report.already_done:
        stderr.print(f"  {len(report.already_done):,} photo(s) were already done (resumed)")
    stderr.print(f"  generator {summary.generator}; persons: "
                 f"{summary.persons['case']}" + (f"; reached {reached}" if reached else "")
                 + ("; seeded (reproducible, not for release)" if summary.seeded else ""))
    groups = summary.groups
    if groups is not None:
        label = "k-Same" if summary.generator == "ksame" else summary.generator
        stderr.print(f"  {label}: {groups.groups:,} groups, k >= {groups.k_min} different "
                     f"persons per group (mean {groups.k_mean}), "
                     f"{groups.faces_in_merged_classes:,} face(s) in merged attribute classes")
    ppas = summary.ppas or {}
    if ppas.get("ppas"):
        readings = ppas.get("readings") or {}
        uncertain = readings.get("faces_with_an_uncertain_reading")
        generalised = ppas.get("generalised") or []
        stderr.print(f"  targets (photo model v2): {ppas.get('mean_changed', 0):.3g} attribute(s) "
                     f"changed per face on average ({ppas.get('faces_changed', 0):,} face(s) "
                     f"changed), {(ppas.get('planned') or {}).get('n_classes')} class(es) planned"
                     + (f"; {uncertain:,} face(s) with an uncertain reading, never changed"
                        if uncertain else "")
                     + (f"; generalised (no claim): {', '.join(generalised)}"
                        if generalised else ""))
    outputs = summary.outputs
    if outputs and outputs.get("faces"):
        seen = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                         for key, value in outputs["reached"].items() if value is not None)
        how = " (read before the perturbation)" if outputs.get("read") else ""
        stderr.print(f"  released faces, attributes predicted as an attacker would{how}: "
                     f"{outputs['realised']:.1%} show their target; over "
                     f"{', '.join(outputs['qi']) or 'no attribute'}: {seen} (model v2; "
                     f"identity-t of the first version {outputs.get('identity_t')})")
    release = summary.release or {}
    if release.get("photos_with_a_face"):
        groups = "; ".join(f"{name} " + ", ".join(f"{value}: {rate:.1%}"
                                                   for value, rate in rates.items())
                           for name, rates in release["by_group"].items())
        stderr.print(f"  released {release['released']:,} of {release['photos_with_a_face']:,} "
                     f"photos with a face ({release['rate']:.1%}); per predicted group: {groups}")
    decision = summary.verdict or {}
    if decision.get("met") is not None:
        if decision["met"]:
            stderr.print("  requirements met (photo model v2, judged on "
                         f"{decision['judged_on']})")
        else:
            stderr.print("  [bold]requirements NOT met[/bold] (photo model v2, judged on "
                         f"{decision['judged_on']}): " + "; ".join(decision["why"])
                         + ". run.json has the numbers.")
    perturbation = summary.perturbation
    if perturbation:
        changed = perturbation.get("faces_read_differently")
        stderr.print(f"  perturbation {perturbation['method']} (xi={perturbation['xi']:g}, "
                     f"l_{perturbation['p']}): at most {perturbation['max_change_levels']} grey "
                     "level(s) per pixel" + ("" if changed is None else
                                             f"; the attribute model reads {changed:.1%} of the "
                                             "faces differently after it"))
        fooled = perturbation.get("outputs_released")
        if fooled and fooled.get("faces"):
            reached = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else
                                f"{key}={value}" for key, value in fooled["reached"].items())
            stderr.print(f"    what the fooled model reads off the released files: "
                         f"{fooled['realised']:.1%} show their target; {reached}")
    leakage = summary.leakage
    if leakage and leakage.get("faces"):
        stderr.print(f"  identity leakage: SFace still matches {leakage['match_rate']:.1%} of the "
                     f"released faces to their source (FAR {leakage['far']:g}); "
                     "`privface evaluate` measures re-identification in full")
    skipped = report.skipped
    if len(skipped):
        stderr.print(f"  skipped {len(skipped):,} photo(s), not written:")
        for reason, group in skipped.groupby("reason", sort=False):
            files = ", ".join(group["file"].head(5))
            more = f" and {len(group) - 5:,} more" if len(group) > 5 else ""
            stderr.print(f"    {reason}: {len(group):,} ({files}{more})")
    if html_report is not None:
        from privface.reports import render_photo_run, write_html

        try:
            write_html(html_report, render_photo_run(report.out_dir, originals=folder))
        except InputError as exc:
            raise fail_input(exc) from None
        stderr.print(f"  HTML report {html_report} (it shows original faces: keep it with the "
                     "data holder)")
    raise typer.Exit(EXIT_FAILED if decision.get("met") is False else EXIT_OK)
