"""``anonymize_photos``: the image pipeline of DESIGN.md, from a folder of photos to private ones.

detect -> align -> predict attributes -> PPAS -> generate -> paste back -> check -> perturb ->
measure -> certify.

Stage I (:func:`~privface.attributes.analyze_photos`) finds every face with its 68 landmarks and
40 attributes; the persons come from the identities or a recognizer; PPAS picks each face's target
attributes against the reference population; the generator makes the new faces in its own aligned
geometry. Each photo is then finished on its own (:mod:`~.writing`, in worker processes): the
faces are pasted back with a feathered edge, checked, perturbed (stage IV, optional), measured and
written; :mod:`~.records` writes a certificate per photo and the run's report. A photo is written
only when *every* face in it got a target: a released photo with one unprotected face would
defeat the purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from privface.generators.base import GenerationResult
from privface.privmetrics.errors import InputError
from privface.privmetrics.readers import atomic_write

from privface.evaluation.leakage import summarise_leakage
from .outdir import (clear_outputs, finished_photos, fresh_partial, lock_output,
                     previous_outputs, release)
from .records import (CERTIFICATES, REPORT, perturbation_summary, photo_certificate,
                      photo_perturbation, read_finished, run_summary)
from .state import (Plan, describe_change, file_sha256, fingerprint, load_plan, model_identity,
                    photo_digests, save_plan, saved_identity)
from .targets import DEFAULT_QIS, choose_targets, find_persons
from .verify import audit_outputs
from .writing import PhotoJob, PhotoOutcome, PhotoWriter, write_photos

_CHUNK = 8  # photos per task of a writing worker


@dataclass
class PhotoRunReport:
    """What :func:`anonymize_photos` did.

    Attributes
    ----------
    out_dir : Path
    written : list of str
        Photos written by this call.
    already_done : list of str
        Photos a previous run had finished (resume).
    skipped : DataFrame
        ``file`` and ``reason`` of every photo not written.
    summary : dict
        The JSON report written to ``OUT_DIR/run.json``.
    """

    out_dir: Path
    written: list[str]
    already_done: list[str]
    skipped: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _load_generator(generator, params: Mapping, k: int | None):
    from privface.generators.base import as_generator
    from privface.generators.registry import load_generator

    if not isinstance(generator, str):
        return as_generator(generator)
    params = dict(params)
    if generator == "ksame":
        params.setdefault("k", k if k is not None else 5)
    return load_generator(generator, **params)


def _identities(identities) -> pd.Series | None:
    if identities is None or isinstance(identities, pd.Series):
        return identities
    from privface.privmetrics.readers import read_celeba_identities

    return read_celeba_identities(identities)


def _reference(reference) -> pd.DataFrame | None:
    if reference is None or isinstance(reference, pd.DataFrame):
        return reference
    from privface.privmetrics.readers import read_celeba_attributes, read_table
    from privface.privmetrics.readers.celeba import is_celeba_attribute_file

    path = Path(reference)
    table = read_celeba_attributes(path) if is_celeba_attribute_file(path) else read_table(path)
    beside = path.parent / "identity_CelebA.txt"
    if "identity" not in table.columns and beside.exists():
        from privface.privmetrics.readers import join_identities, read_celeba_identities

        table = join_identities(table, read_celeba_identities(beside))
    return table


def _make_plan(paths: list[Path], generator, *, analyzer, identities, reference, qi, k, l, t,
               epsilon, seed, workers, on_photo, fp: str) -> Plan:
    from privface.attributes import analyze_photos
    from privface.attributes.analysis import FaceAnalyzer

    if analyzer is None:
        recognizer = None
        if identities is None:
            from privface.attributes.recognizers import SFaceRecognizer

            recognizer = SFaceRecognizer()
        analyzer = FaceAnalyzer(recognizer=recognizer)
    analysis = analyze_photos(paths, analyzer=analyzer, identities=identities, workers=workers,
                              on_photo=on_photo)
    faces = analysis.faces.reset_index(drop=True)
    attributes = list(analyzer.attribute_model.attributes)
    if len(faces) == 0:
        persons_case, persons_detail = "none", "no face found"
        persons = None
    else:
        persons = find_persons(faces, analysis.embeddings)
        persons_case, persons_detail = persons.case, persons.detail
    qis = list(qi) if qi else list(DEFAULT_QIS)
    editable = [q for q in qis if q in generator.capabilities.editable]
    info: dict = {"fingerprint": fp, "attributes": attributes,
                  "persons": {"case": persons_case, "detail": persons_detail}}
    if persons is None:
        info["ppas"] = {"ppas": False, "note": "no face found"}
        info["certificates"] = []
        return Plan(faces.assign(person=[], feasible=[], reason=[]), analysis.landmarks,
                    analysis.skipped, info)
    targets = choose_targets(faces, attributes, persons, qi=qis, editable=editable,
                             reference=reference, k=k, l=l, t=t, epsilon=epsilon, seed=seed)
    faces = faces.assign(person=persons.labels, feasible=targets.feasible,
                         reason=targets.reasons)
    for name in attributes:
        faces[f"target:{name}"] = targets.table[name].to_numpy()
    info["persons"]["n_persons"] = int(len(np.unique(persons.labels)))
    info["ppas"] = targets.summary
    info["certificates"] = targets.certificates
    # SFace's embeddings of the originals serve again for the leakage check (one SFace pass per
    # face fewer); another recognizer's would not compare with SFace's.
    sface = getattr(analyzer.recognizer, "name", None) == "sface"
    return Plan(faces, analysis.landmarks, analysis.skipped, info, analysis.landmarks5,
                analysis.embeddings if sface else None)


def _aligned(paths_by_name: Mapping[str, Path], faces: pd.DataFrame, landmarks: np.ndarray,
             geometry) -> tuple[np.ndarray, list[np.ndarray]]:
    """Aligned crops of the given faces (in order) and their photo -> crop matrices."""
    from privface.attributes.alignment import align_face
    from privface.attributes.images import load_image

    crops, matrices = [], []
    photo_name, photo = None, None
    for position, name in zip(faces.index, faces["file"]):
        if name != photo_name:
            photo_name, photo = name, load_image(paths_by_name[name])
        aligned = align_face(photo, landmarks[position], geometry)
        crops.append(aligned.image)
        matrices.append(aligned.matrix)
    empty = np.zeros((0, geometry.height, geometry.width, 3), np.uint8)
    return (np.stack(crops) if crops else empty), matrices


_NOT_SHOWN = ("withheld: the attribute model reads another class than the target off the "
              "anonymized face, so releasing it would break the certificate")
_UNREALISED = ("k-Same: no group of k persons whose average shows this face's target "
               "attributes (the attribute model reads another class off every candidate)")



def _unrealised(name: str) -> str:
    return (f"{name}: the generator reports that this face does not show its target "
            "attributes")


def _in_crop(points: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Landmarks (n, p, 2) in photo pixels, moved into each face's aligned crop."""
    if not len(points):
        return np.zeros((0, 68, 2))
    stacked = np.stack(matrices)  # (n, 2, 3)
    return np.einsum("nij,npj->npi", stacked[:, :, :2], points) + stacked[:, None, :, 2]


def _shows_class(model, controlled: Sequence[str]):
    """k-Same's ``accept``: does the attribute model read each average's class off it?"""
    columns = [list(model.attributes).index(q) for q in controlled]

    def accept(averages: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        if not columns or not len(averages):
            return np.ones(len(averages), bool)
        predicted = np.asarray(model.predict(list(averages)), np.int8)[:, columns]
        return (predicted == np.asarray(vectors)).all(axis=1)

    return accept


def _default_model():
    from privface.attributes.model import load_default_model

    return load_default_model()


def _controlled(plan: Plan, qis: Sequence[str]) -> list[str]:
    """The QIs PPAS chose targets for (all of them when PPAS did not run)."""
    ppas = plan.info.get("ppas") or {}
    return list(ppas.get("controlled", qis)) if ppas.get("ppas") else list(qis)


def anonymize_photos(photos: str | os.PathLike, out_dir: str | os.PathLike, *,
                     generator="ksame", generator_params: Mapping | None = None,
                     k: int | None = None, l: int | None = None, t: float | None = None,
                     epsilon: float | None = None, seed: int | None = None,
                     qi: Sequence[str] | None = None, reference=None, identities=None,
                     feather: float = 0.06, workers: int = 1, resume: bool = True,
                     verify: bool = True, withhold: bool = True, perturb=None, analyzer=None,
                     on_photo: Callable[[Path], None] | None = None,
                     on_write: Callable[[str], None] | None = None) -> PhotoRunReport:
    """Anonymize every face of a folder of photos and certify each photo.

    Parameters
    ----------
    photos : path
        Folder of photos.
    out_dir : path
        Where the photos (same names), ``certificates/NAME.json`` and ``run.json`` go. It must
        not be the input folder.
    generator : str or Generator
        ``"ksame"`` (default), ``"stargan"``, ``"blur"``, ``"pixelate"``, ``"mask"``,
        ``"diffusers"``, a plug-in's name, or a generator object.
    generator_params : mapping, optional
        Keyword parameters of the generator (``k`` of k-Same defaults to ``k``, else 5).
    k, l, t : optional
        PPAS requirements on each face's target class in the reference (l and t over persons).
    epsilon : float, optional
        Randomised-response budget per face over the editable attributes.
    seed : int, optional
        Seeds PPAS's noise, for reproducibility only (the certificates say so); default: OS
        entropy. (A ``perturb`` with noise has its own seed.)
    qi : sequence of str, optional
        Attributes that define the classes; default :data:`~.targets.DEFAULT_QIS`.
    reference : DataFrame or path, optional
        The reference population; default: the input photos themselves.
    identities : Series or path, optional
        Identity per file name (CelebA's identity file); default: persons found by SFace.
    feather : float
        Width of the blended seam, as a fraction of the aligned crop's width.
    workers : int
        Processes for face analysis and for finishing the photos (paste back, check, perturb,
        measure, write); the output is the same with any number.
    resume : bool
        Reuse the plan saved in ``out_dir`` and skip the photos it finished. The plan must have
        the same fingerprint (settings, models and the SHA-256 of every input photo): otherwise
        an InputError names what changed. False (``--restart``) first removes every output of a
        previous run from ``out_dir``.
    verify : bool
        Predict the controlled attributes of every written face (as an attacker would) and
        audit them with the persons (:mod:`~.verify`); the report says whether the requirements
        hold for what was released. About 60 ms per face on one core.
    withhold : bool
        With ``verify``: do not write a photo in which the model reads, for an attribute the
        generator sets, another value than the target off an anonymized face (it is listed
        among the skipped photos), so that what is released shows the classes the certificates
        describe.
    perturb : PhotoPerturber, optional
        Stage IV (:class:`~privface.adversarial.photos.PhotoPerturber`): a perturbation added to
        every face after paste-back. The check above judges the face before it (the generator's
        work); the attributes and leakage recorded are measured on the released file, and each
        certificate records the perturbation and its largest change.

    Returns
    -------
    PhotoRunReport

    Raises
    ------
    InputError
        Before any work: ``out_dir`` is a file, the input folder or inside it; another run holds
        ``out_dir`` (the message names its PID); ``out_dir`` holds a run with another
        fingerprint, or outputs with no plan, and ``resume`` is True.

    Notes
    -----
    Photos are finished in ``out_dir/.partial`` and each moves into place only after its
    certificate (which records the photo's SHA-256) is written: whatever stops the run, every
    photo in ``out_dir`` has a certificate that describes it (docs/files.md).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "photos"
    >>> folder.mkdir()
    >>> Image.new("RGB", (64, 64)).save(folder / "blank.png")
    >>> report = anonymize_photos(folder, folder.parent / "out", generator="blur")
    >>> report.written, report.skipped.to_dict("records")
    ([], [{'file': 'blank.png', 'reason': 'no face found'}])
    """
    from privface.attributes.images import list_images

    started = time.perf_counter()
    source = Path(photos)
    paths = list_images(source)
    out = Path(out_dir)
    check_output_folder(source, out)
    generator_params = dict(generator_params or {})
    gen = _load_generator(generator, generator_params, k)
    if isinstance(generator, str) and generator == "ksame":
        generator_params = {"k": gen.k, **generator_params}
    identity_series = _identities(identities)
    reference_table = _reference(reference)
    qis = list(qi) if qi else list(DEFAULT_QIS)
    settings = {"generator": gen.name, "params": generator_params, "k": k, "l": l, "t": t,
                "epsilon": epsilon, "seed": seed, "qi": qis, "feather": feather,
                "reference": None if reference is None else str(reference),
                "identities": None if identities is None else str(identities)}
    if perturb is not None:
        settings["perturb"] = perturb.record()  # once: a UAP's record hashes its values
    with lock_output(out):
        return _locked_run(
            out, paths, gen, generator_params, settings, qis, identity_series, reference_table,
            analyzer=analyzer, k=k, l=l, t=t, epsilon=epsilon, seed=seed, feather=feather,
            workers=workers, resume=resume, verify=verify, withhold=withhold, perturb=perturb,
            on_photo=on_photo, on_write=on_write, started=started)


def check_output_folder(source: Path, out: Path) -> None:
    """Refuse an output folder that is a file, the input folder or inside it (before any work).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_output_folder(folder / "photos", folder / "out")
    >>> check_output_folder(folder, folder / "out" / "..")
    Traceback (most recent call last):
    ...
    privface.privmetrics.errors.InputError: ...is the input folder: the originals would be ...
    """
    if out.exists() and not out.is_dir():
        raise InputError("--out names an existing file, not a folder: photos, certificates and "
                         "run.json go into a folder; choose another --out", file=str(out))
    inputs, target = source.resolve(), out.resolve()
    if target == inputs:
        raise InputError("the output folder is the input folder: the originals would be "
                         "overwritten; choose another --out", file=str(out))
    if inputs in target.parents:
        raise InputError(f"the output folder is inside the input folder {str(source)!r}; "
                         "choose an --out outside it", file=str(out))


def _identity_check(out: Path, identity: dict, fp: str, names: list[str]) -> None:
    """Refuse to resume into a folder whose outputs another run (or version) made."""
    saved = saved_identity(out)
    restart = ("run with --restart to remove its outputs and start again (resume=False), or "
               "choose another --out")
    if saved is None:
        found = previous_outputs(out, names)
        if found:
            more = f" and {len(found) - 3} more" if len(found) > 3 else ""
            raise InputError(f"the output folder holds outputs ({', '.join(found[:3])}{more}) "
                             f"but no saved plan to check them against; {restart}",
                             file=str(out))
    elif not saved:
        raise InputError("the output folder holds a run of an earlier privface that did not "
                         f"record the input photos' SHA-256; {restart}", file=str(out))
    elif fingerprint(saved) != fp:
        raise InputError("the output folder holds a run with other settings, models or photos "
                         f"({describe_change(saved, identity)}); {restart}", file=str(out))


def _table_digest(table) -> str | None:
    """SHA-256 of a table's (or Series') index and values: the identities' and reference's
    content belong to a run's identity, whatever file they came from."""
    if table is None:
        return None
    hashed = pd.util.hash_pandas_object(table, index=True).to_numpy()
    names = json.dumps([str(c) for c in getattr(table, "columns", [table.name])])
    return hashlib.sha256(names.encode() + hashed.tobytes()).hexdigest()


def _locked_run(out: Path, paths: list[Path], gen, generator_params: dict, settings: dict,
                qis: list[str], identity_series, reference_table, *, analyzer, k, l, t, epsilon,
                seed, feather, workers, resume, verify, withhold, perturb, on_photo, on_write,
                started) -> PhotoRunReport:
    """:func:`anonymize_photos` once the output folder is locked."""
    names = [p.name for p in paths]
    identity = {"settings": settings, "models": model_identity(generator_params),
                "photos": photo_digests(paths),
                "tables": {"identities": _table_digest(identity_series),
                           "reference": _table_digest(reference_table)}}
    fp = fingerprint(identity)
    if resume:
        _identity_check(out, identity, fp, names)
    else:
        clear_outputs(out, names)
    plan = load_plan(out, fp) if resume else None
    resumed = plan is not None
    if plan is None:
        plan = _make_plan(paths, gen, analyzer=analyzer, identities=identity_series,
                          reference=reference_table, qi=qis, k=k, l=l, t=t, epsilon=epsilon,
                          seed=seed, workers=workers, on_photo=on_photo, fp=fp)
        plan.info["identity"] = identity
        save_plan(plan, out)
    certificates_dir = out / CERTIFICATES
    certificates_dir.mkdir(parents=True, exist_ok=True)
    faces, landmarks = plan.faces, plan.landmarks
    paths_by_name = {p.name: p for p in paths}

    skipped = [dict(r) for r in plan.skipped.to_dict("records")]
    photo_ok = faces.groupby("file", sort=False)["feasible"].all() if len(faces) else \
        pd.Series(dtype=bool)
    for name in photo_ok.index[~photo_ok.to_numpy()]:
        reasons = faces.loc[(faces["file"] == name) & ~faces["feasible"], "reason"]
        skipped.append({"file": name, "reason": f"no private target: {reasons.iloc[0]}"})
    writable = [name for name in photo_ok.index[photo_ok.to_numpy()]]
    # Done: in place with a certificate that records its bytes' SHA-256.
    done = finished_photos(out, writable) if resumed else []
    partial = fresh_partial(out)
    finished = set(done)
    todo = [name for name in writable if name not in finished]
    todo_names = set(todo)

    attributes = plan.info["attributes"]
    capabilities = gen.capabilities
    geometry = capabilities.geometry
    # k-Same and other group generators need every face at once; the others go in batches of
    # photos, so that memory stays bounded.
    grouped = capabilities.uses_persons
    batches = [writable] if grouped else [todo[i:i + 16] for i in range(0, len(todo), 16)]
    extras = []
    written: list[str] = []
    controlled = _controlled(plan, qis)
    observed, leaked, before, levels = read_finished(out, faces, done) if verify else \
        ({}, {}, {}, {})
    model = checker = None
    columns: list[int] = []
    sets = None
    if verify:
        model = analyzer.attribute_model if analyzer is not None else _default_model()
        columns = [list(model.attributes).index(q) for q in controlled]
        # Only the attributes the generator sets are held to their targets: a baseline (blur,
        # pixelate) promises nothing about what a model reads off its output.
        sets = np.isin(controlled, capabilities.editable)
    if grouped and capabilities.uses_landmarks:
        checker = model if model is not None else \
            analyzer.attribute_model if analyzer is not None else _default_model()
    writer = PhotoWriter(feather_px=feather * geometry.width, model=model, columns=columns,
                         sets=sets, withhold=withhold, perturber=perturb)
    waiting: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] = {}

    def jobs():
        """Generate batch by batch; yield the photos to finish, a few at a time."""
        for batch in batches:
            if not batch:
                continue
            rows = faces[faces["file"].isin(batch)]
            crops, matrices = _aligned(paths_by_name, rows, landmarks, geometry)
            source_attributes = rows[attributes].reset_index(drop=True)
            target_attributes = rows[[f"target:{a}" for a in attributes]].set_axis(
                attributes, axis=1).reset_index(drop=True)
            if grouped:
                # Groups form within classes of the controlled QIs only: a generalised QI is "*".
                classes = target_attributes[controlled]
                options = {"persons": rows["person"].to_numpy()}
                if capabilities.uses_landmarks:
                    options["landmarks"] = _in_crop(landmarks[rows.index], matrices)
                    options["accept"] = _shows_class(checker, controlled)
                made = gen.generate(crops, source_attributes[controlled], classes, **options)
            else:
                made = gen.generate(crops, source_attributes, target_attributes)
            if not isinstance(made, GenerationResult):
                raise TypeError(f"generator {gen.name!r} returned {type(made).__name__}, not a "
                                "GenerationResult")
            extra = None
            if made.notes is not None:
                extra = made.notes.set_axis(rows.index)
                extras.append(extra)
            if made.realised is not None:
                # A photo goes out only when every face shows its target: one that does
                # not would break the certificate for what is released.
                missed = rows.index[~np.asarray(made.realised, bool)]
                for name in rows.loc[missed, "file"].unique():
                    if name in todo_names:
                        todo_names.discard(name)
                        skipped.append({"file": name, "reason": _UNREALISED
                                        if gen.name == "ksame" else _unrealised(gen.name)})
            made = made.faces
            slot = {position: i for i, position in enumerate(rows.index)}
            chunk: list[PhotoJob] = []
            for name, photo_rows in rows.groupby("file", sort=False):
                if name not in todo_names:
                    continue
                at = [slot[position] for position in photo_rows.index]
                waiting[name] = (photo_rows, extra)
                chunk.append(PhotoJob(
                    name, paths_by_name[name], partial / name, [made[i] for i in at],
                    [matrices[i] for i in at], landmarks[photo_rows.index],
                    photo_rows[["x", "y", "width", "height"]].to_numpy(),
                    photo_rows[[f"target:{q}" for q in controlled]].to_numpy(),
                    None if plan.landmarks5 is None else plan.landmarks5[photo_rows.index],
                    None if plan.embeddings is None else plan.embeddings[photo_rows.index]))
                if len(chunk) == _CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    def finish(outcome: PhotoOutcome) -> None:
        """Write a finished photo's certificate, then move the photo into place (in this
        process, in order): a photo in OUT always has its certificate."""
        name = outcome.name
        photo_rows, extra = waiting.pop(name)
        if outcome.withheld:
            skipped.append({"file": name, "reason": _NOT_SHOWN})
            return
        positions = photo_rows.index
        if outcome.observed is not None:
            for position, values in zip(positions, outcome.observed):
                observed[position] = {q: int(v) for q, v in zip(controlled, values)}
            leaked.update(zip(positions, outcome.leakage))
        if outcome.generated is not None:
            for position, values in zip(positions, outcome.generated):
                before[position] = {q: int(v) for q, v in zip(controlled, values)}
        if outcome.max_change_levels is not None:
            levels[name] = outcome.max_change_levels
        certificate = photo_certificate(name, photo_rows, plan, gen, generator_params, qis,
                                        extra, seed, observed, leaked, before,
                                        photo_perturbation(settings.get("perturb"),
                                                           levels.get(name)),
                                        sha256=file_sha256(partial / name))
        text = json.dumps(certificate, indent=1) + "\n"
        atomic_write(certificates_dir / f"{name}.json",
                     lambda tmp, text=text: Path(tmp).write_text(text))
        release(partial / name, out / name)
        written.append(name)
        if on_write is not None:
            on_write(name)

    # Worker processes take seconds to start: a handful of photos is finished here.
    write_photos(writer, jobs(), workers=min(workers, -(-len(todo) // _CHUNK)),
                 on_outcome=finish)

    skipped_frame = pd.DataFrame(skipped, columns=["file", "reason"])
    summary = run_summary(plan, gen, generator_params, settings, written, done, skipped_frame,
                       extras, resumed, time.perf_counter() - started, len(paths))
    released = faces[faces["file"].isin(set(written) | set(done))]
    requirements = {key: settings[key] for key in ("k", "l", "t")}

    def audit_reading(reading: Mapping[int, dict]) -> dict:
        seen = released.index[released.index.isin(list(reading))]
        return audit_outputs(
            pd.DataFrame([reading[i] for i in seen], columns=controlled),
            released.loc[seen, [f"target:{q}" for q in controlled]].set_axis(controlled, axis=1),
            released.loc[seen, "person"].to_numpy(), controlled, **requirements)

    if verify and len(faces):
        # The certificates' claim is about what the faces show. A perturbation is made to fool
        # the attribute model, so with one the claim is checked on the reading before it (what a
        # reader it does not fool sees); the fooled reading goes with the perturbation below.
        summary["outputs"] = audit_reading(before if perturb is not None else observed)
        if perturb is not None:
            summary["outputs"]["read"] = "before the perturbation"
        summary["leakage"] = summarise_leakage([leaked[i] for i in released.index
                                                if i in leaked])
    if perturb is not None:
        summary["perturbation"] = perturbation_summary(settings["perturb"], released, levels,
                                                       observed, before)
        if verify and len(faces):
            summary["perturbation"]["outputs_released"] = audit_reading(observed)
    text = json.dumps(summary, indent=1) + "\n"
    atomic_write(out / REPORT, lambda tmp: Path(tmp).write_text(text))
    shutil.rmtree(partial.parent, ignore_errors=True)
    return PhotoRunReport(out, written, done, skipped_frame, summary)
