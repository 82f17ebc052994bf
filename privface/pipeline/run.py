"""``anonymize_photos``: the image pipeline (docs/design.md), from photos to private ones.

detect -> align -> predict attributes -> PPAS -> generate -> paste back -> check -> perturb ->
measure -> certify.

:class:`PhotoRun` is the run, one method per stage: :meth:`~PhotoRun.analyse` (faces,
attributes, persons) -> :meth:`~PhotoRun.select_targets` (PPAS: the saved plan) ->
:meth:`~PhotoRun.generate` -> :meth:`~PhotoRun.write_and_certify` -> :meth:`~PhotoRun.summarise`;
:func:`anonymize_photos` builds one and runs it. The records it writes are dataclasses of
:mod:`~.records` (:class:`~.records.PhotoCertificate`, :class:`~.records.RunSummary`), each with
the one ``to_json`` that writes its file.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privface.generators.base import GenerationResult
from privface.base.errors import InputError
from privface.base.files import atomic_write, lock_output
from privface.base.jsonenc import json_value

from privface.evaluation.leakage import summarise_leakage
from .outdir import (clear_outputs, finished_photos, fresh_partial,
                     previous_outputs, release)
from .records import (CERTIFICATES, REPORT, FaceCertificate, GroupSummary, PhotoCertificate,
                      PhotoCounts, RunSummary, perturbation_summary,
                      photo_perturbation, read_finished, release_rates, verdict,
                      worst_reached)
from .state import (Plan, describe_change, file_sha256, fingerprint, load_plan, load_written,
                    model_identity, photo_digests, save_plan, save_written, saved_identity)
from .targets import CONFIDENCE, DEFAULT_QIS, choose_targets, find_persons
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
    summary : RunSummary
        The run's report, written to ``OUT_DIR/run.json`` (``summary.to_dict()`` is its JSON).
    """

    out_dir: Path
    written: list[str]
    already_done: list[str]
    skipped: pd.DataFrame
    summary: RunSummary


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


def _shows_class(model, controlled: Sequence[str], editable: Sequence[str] | None = None):
    """k-Same's ``accept``: does the attribute model read each average's class off it?

    Only the ``editable`` attributes are checked (default: all): the others (hair colour) lie
    outside the face region, and the written photo keeps the face's own.
    """
    checked = [q for q in controlled if editable is None or q in editable]
    columns = [list(model.attributes).index(q) for q in checked]
    within = [list(controlled).index(q) for q in checked]

    def accept(averages: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        if not columns or not len(averages):
            return np.ones(len(averages), bool)
        predicted = np.asarray(model.predict(list(averages)), np.int8)[:, columns]
        return (predicted == np.asarray(vectors)[:, within]).all(axis=1)

    return accept


def _group_persons(generator, persons: np.ndarray) -> int | None:
    """Persons per group of a group generator (k-Same: ``group_persons``, else its ``k``), for
    PPAS's balance of each class."""
    if hasattr(generator, "group_persons"):
        return generator.group_persons(len(pd.unique(np.asarray(persons))))
    return getattr(generator, "k", None)


def _probabilities(analyzer, analysis, qis: Sequence[str]) -> pd.DataFrame | None:
    """P(present) of each QI per face, from the analysis' scores (None when the attribute
    model gives no scores or probabilities: every reading then counts as certain)."""
    model = analyzer.attribute_model
    scores = getattr(analysis, "scores", None)
    if scores is None or not hasattr(model, "probability") or not len(scores):
        return None
    columns = [list(model.attributes).index(q) for q in qis]
    return pd.DataFrame(model.probability(scores)[:, columns], columns=list(qis))


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
                     verify: bool = True, withhold: bool = False, perturb=None, analyzer=None,
                     allow_collapse: bool = False, confidence: float = CONFIDENCE,
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
        The photo model v2 (docs/photo-pipeline.md): every released class holds faces of at
        least k (l) different persons; each controlled attribute's share among the released
        faces is within t of its share in the reference.
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
        among the skipped photos). Off by default: the release is audited on what the model
        reads off the written faces (``run.json``'s ``outputs``), and withholding photos the
        model misreads would drop some groups' photos more than others'.
    perturb : PhotoPerturber, optional
        Stage IV (:class:`~privface.adversarial.photos.PhotoPerturber`): a perturbation added to
        every face after paste-back. The check above judges the face before it (the generator's
        work); the attributes and leakage recorded are measured on the released file, and each
        certificate records the perturbation and its largest change.

    allow_collapse : bool
        Accept an assignment of targets that releases one class, or changes more than half of
        the controlled attributes per face on average (refused by default:
        :class:`~.targets.CollapseError`).
    confidence : float
        Readings of the attribute model less probable than this are uncertain, and PPAS never
        changes them (:func:`~.targets.read_attributes`).

    Returns
    -------
    PhotoRunReport

    Raises
    ------
    CollapseError
        Before any photo is written: no release meets the requirements, or only a collapsed
        one (and not ``allow_collapse``); the message gives the best reachable numbers.
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
    return PhotoRun(photos, out_dir, generator=generator, generator_params=generator_params,
                    k=k, l=l, t=t, epsilon=epsilon, seed=seed, qi=qi, reference=reference,
                    identities=identities, feather=feather, workers=workers, resume=resume,
                    verify=verify, withhold=withhold, perturb=perturb, analyzer=analyzer,
                    allow_collapse=allow_collapse, confidence=confidence,
                    on_photo=on_photo, on_write=on_write).run()


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
    privface.base.errors.InputError: ...is the input folder: the originals would be ...
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


class PhotoRun:
    """One photo run, stage by stage: analyse -> select targets -> generate -> write and certify
    -> summarise.

    :func:`anonymize_photos` builds one and calls :meth:`run`, which holds the output folder's
    lock for the whole run. Each stage is a method; what the stages share (the plan, the photos
    still to write, what was written, skipped and measured) lives on the object, so that no
    stage reaches into another's locals. The parameters are :func:`anonymize_photos`'s.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "photos"
    >>> folder.mkdir()
    >>> Image.new("RGB", (64, 64)).save(folder / "blank.png")
    >>> run = PhotoRun(folder, folder.parent / "out", generator="blur")
    >>> run.capabilities.uses_persons, run.run().summary.photos.skipped
    (False, 1)
    """

    def __init__(self, photos: str | os.PathLike, out_dir: str | os.PathLike, *,
                 generator="ksame", generator_params: Mapping | None = None,
                 k: int | None = None, l: int | None = None, t: float | None = None,
                 epsilon: float | None = None, seed: int | None = None,
                 qi: Sequence[str] | None = None, reference=None, identities=None,
                 feather: float = 0.06, workers: int = 1, resume: bool = True,
                 verify: bool = True, withhold: bool = False, perturb=None, analyzer=None,
                 allow_collapse: bool = False, confidence: float = CONFIDENCE,
                 on_photo: Callable[[Path], None] | None = None,
                 on_write: Callable[[str], None] | None = None) -> None:
        from privface.attributes.images import list_images

        self.started = time.perf_counter()
        self.source = Path(photos)
        self.paths = list_images(self.source)
        self.out = Path(out_dir)
        check_output_folder(self.source, self.out)
        params = dict(generator_params or {})
        self.generator = _load_generator(generator, params, k)
        if isinstance(generator, str) and generator == "ksame":
            params = {"k": self.generator.k, **params}
        self.generator_params = params
        self.capabilities = self.generator.capabilities
        self.identities = _identities(identities)
        self.reference = _reference(reference)
        self.qis = list(qi) if qi else list(DEFAULT_QIS)
        self.k, self.l, self.t, self.epsilon, self.seed = k, l, t, epsilon, seed
        self.feather, self.workers, self.resume = feather, workers, resume
        self.verify, self.withhold, self.perturb = verify, withhold, perturb
        self.analyzer, self.on_photo, self.on_write = analyzer, on_photo, on_write
        self.allow_collapse, self.confidence = allow_collapse, confidence
        self.settings = {"generator": self.generator.name, "params": params, "k": k, "l": l,
                         "t": t, "epsilon": epsilon, "seed": seed, "qi": self.qis,
                         "feather": feather, "photo_model": "v2",
                         "allow_collapse": allow_collapse, "confidence": confidence,
                         "reference": None if reference is None else str(reference),
                         "identities": None if identities is None else str(identities)}
        if perturb is not None:
            self.settings["perturb"] = perturb.record()  # once: a UAP's record hashes its values
        self.paths_by_name = {p.name: p for p in self.paths}
        # Filled in by the stages.
        self.plan: Plan | None = None
        self.resumed = False
        self.skipped: list[dict] = []
        self.done: list[str] = []
        self.todo: list[str] = []
        self.writable: list[str] = []
        self.written: list[str] = []
        self.notes: list[pd.DataFrame] = []
        self.waiting: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] = {}
        self.observed: dict[int, dict] = {}
        self.leaked: dict[int, dict] = {}
        self.before: dict[int, dict] = {}
        self.levels: dict[str, int] = {}
        # Per written photo: what the checks computed on its first face, for `privface evaluate`.
        self.written_faces: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> PhotoRunReport:
        """Every stage, with the output folder locked; the plan is reused when it can be."""
        with lock_output(self.out):
            fp = self.check_output()
            plan = load_plan(self.out, fp) if self.resume else None
            self.resumed = plan is not None
            if plan is None:
                plan = self.select_targets(*self.analyse(), fp)
                plan.info["identity"] = self.identity
                save_plan(plan, self.out)
            self.plan = plan
            self.prepare_writing()
            self.write_and_certify(self.generate())
            summary = self.summarise()
            shutil.rmtree(self.partial.parent, ignore_errors=True)
        return PhotoRunReport(self.out, self.written, self.done, self.skipped_frame, summary)

    def check_output(self) -> str:
        """The run's fingerprint, after refusing (or, without resume, clearing) the outputs of
        another run in the output folder."""
        names = [p.name for p in self.paths]
        self.identity = {"settings": self.settings,
                         "models": model_identity(self.generator_params),
                         "photos": photo_digests(self.paths),
                         "tables": {"identities": _table_digest(self.identities),
                                    "reference": _table_digest(self.reference)}}
        fp = fingerprint(self.identity)
        if self.resume:
            _identity_check(self.out, self.identity, fp, names)
        else:
            clear_outputs(self.out, names)
        return fp

    # -- stage 1: analyse ---------------------------------------------------------------------

    def analyse(self):
        """Faces, landmarks and attributes of every photo, and who is who.

        Returns the analysis (:func:`~privface.attributes.analyze_photos`), the persons (None
        when no face was found) and the analyzer that made them.
        """
        from privface.attributes import analyze_photos
        from privface.attributes.analysis import FaceAnalyzer

        analyzer = self.analyzer
        if analyzer is None:
            recognizer = None
            if self.identities is None:
                from privface.attributes.recognizers import SFaceRecognizer

                recognizer = SFaceRecognizer()
            analyzer = FaceAnalyzer(recognizer=recognizer)
        analysis = analyze_photos(self.paths, analyzer=analyzer, identities=self.identities,
                                  workers=self.workers, on_photo=self.on_photo)
        persons = None
        if len(analysis.faces):
            persons = find_persons(analysis.faces.reset_index(drop=True), analysis.embeddings)
        return analysis, persons, analyzer

    # -- stage 2: select targets --------------------------------------------------------------

    def select_targets(self, analysis, persons, analyzer, fp: str) -> Plan:
        """PPAS's target for every face: the plan (saved, so that a resumed run never draws
        the randomised response again)."""
        faces = analysis.faces.reset_index(drop=True)
        attributes = list(analyzer.attribute_model.attributes)
        info: dict = {"fingerprint": fp, "attributes": attributes}
        if persons is None:
            info["persons"] = {"case": "none", "detail": "no face found"}
            info["ppas"] = {"ppas": False, "note": "no face found"}
            info["certificates"] = []
            return Plan(faces.assign(person=[], feasible=[], reason=[]), analysis.landmarks,
                        analysis.skipped, info)
        info["persons"] = {"case": persons.case, "detail": persons.detail}
        editable = [q for q in self.qis if q in self.capabilities.editable]
        targets = choose_targets(faces, attributes, persons, qi=self.qis, editable=editable,
                                 reference=self.reference, k=self.k, l=self.l, t=self.t,
                                 epsilon=self.epsilon, seed=self.seed,
                                 probabilities=_probabilities(analyzer, analysis, self.qis),
                                 confidence=self.confidence,
                                 allow_collapse=self.allow_collapse,
                                 group_k=_group_persons(self.generator, persons.labels)
                                 if self.capabilities.uses_persons else None)
        faces = faces.assign(person=persons.labels, feasible=targets.feasible,
                             reason=targets.reasons)
        if targets.readings is not None:
            # What the faces show, as PPAS read them (pooled per person where surer): k-Same
            # groups faces by it. The model's own per-photo reading stays as ``model:<QI>``.
            for q in self.qis:
                faces[f"model:{q}"] = faces[q].to_numpy()
                faces[q] = targets.readings.values[q].to_numpy()
                faces[f"uncertain:{q}"] = targets.readings.uncertain[q].to_numpy()
        for name in attributes:
            faces[f"target:{name}"] = targets.table[name].to_numpy()
        info["persons"]["n_persons"] = int(len(np.unique(persons.labels)))
        info["ppas"] = targets.summary
        info["certificates"] = targets.certificates
        # SFace's embeddings of the originals serve again for the leakage check (one SFace pass
        # per face fewer); another recognizer's would not compare with SFace's.
        sface = getattr(analyzer.recognizer, "name", None) == "sface"
        return Plan(faces, analysis.landmarks, analysis.skipped, info, analysis.landmarks5,
                    analysis.embeddings if sface else None)

    # -- stage 3: generate --------------------------------------------------------------------

    def _sort_photos(self) -> None:
        """Which photos can be written (every face has a target), which a previous run
        finished, which remain."""
        faces = self.plan.faces
        self.skipped = [dict(r) for r in self.plan.skipped.to_dict("records")]
        photo_ok = faces.groupby("file", sort=False)["feasible"].all() if len(faces) else \
            pd.Series(dtype=bool)
        for name in photo_ok.index[~photo_ok.to_numpy()]:
            reasons = faces.loc[(faces["file"] == name) & ~faces["feasible"], "reason"]
            self.skipped.append({"file": name, "reason": f"no private target: {reasons.iloc[0]}"})
        self.writable = [name for name in photo_ok.index[photo_ok.to_numpy()]]
        # Done: in place with a certificate that records its bytes' SHA-256.
        self.done = finished_photos(self.out, self.writable) if self.resumed else []
        finished = set(self.done)
        self.todo = [name for name in self.writable if name not in finished]
        self.todo_names = set(self.todo)

    def prepare_writing(self) -> None:
        """Sort the photos, open the staging folder and set up the writer (stages 3 and 4)."""
        (self.out / CERTIFICATES).mkdir(parents=True, exist_ok=True)
        self._sort_photos()
        self.partial = fresh_partial(self.out)
        self.controlled = _controlled(self.plan, self.qis)
        self._prepare_writer()
        if self.resumed and self.writer.keep_readings:
            # Photos a previous run finished keep its records; any other record is stale.
            done = set(self.done)
            self.written_faces = {name: record for name, record in
                                  load_written(self.out).items() if name in done}

    def generate(self) -> Iterator[list[PhotoJob]]:
        """Generate batch by batch; yield the photos to finish, a few at a time.

        A group generator (``uses_persons``) gets every face at once; the others get batches of
        16 photos, so that memory stays bounded.
        """
        grouped = self.capabilities.uses_persons
        batches = [self.writable] if grouped else \
            [self.todo[i:i + 16] for i in range(0, len(self.todo), 16)]
        for batch in batches:
            if batch:
                yield from self._generate_batch(batch)

    def _prepare_writer(self) -> None:
        """What finishing a photo needs: the check's model and the attributes it holds."""
        if self.verify:
            self.observed, self.leaked, self.before, self.levels = read_finished(
                self.out, self.plan.faces, self.done)
        model = checker = None
        columns: list[int] = []
        sets = None
        if self.verify:
            model = self.analyzer.attribute_model if self.analyzer is not None else \
                _default_model()
            columns = [list(model.attributes).index(q) for q in self.controlled]
            # Only the attributes the generator sets are held to their targets: a baseline
            # (blur, pixelate) promises nothing about what a model reads off its output.
            sets = np.isin(self.controlled, self.capabilities.editable)
        if self.capabilities.uses_persons and self.capabilities.uses_landmarks:
            checker = model if model is not None else \
                self.analyzer.attribute_model if self.analyzer is not None else _default_model()
        self.checker = checker
        # `privface evaluate` reads with the shipped model: only its readings can serve there.
        self.writer = PhotoWriter(feather_px=self.feather * self.capabilities.geometry.width,
                                  model=model, columns=columns, sets=sets,
                                  withhold=self.withhold, perturber=self.perturb,
                                  paste=self.capabilities.paste,
                                  keep_readings=model is not None and model is _default_model())

    def _generate_batch(self, batch: list[str]) -> Iterator[list[PhotoJob]]:
        plan, faces, landmarks = self.plan, self.plan.faces, self.plan.landmarks
        attributes = plan.info["attributes"]
        rows = faces[faces["file"].isin(batch)]
        crops, matrices = _aligned(self.paths_by_name, rows, landmarks,
                                   self.capabilities.geometry)
        source_attributes = rows[attributes].reset_index(drop=True)
        target_attributes = rows[[f"target:{a}" for a in attributes]].set_axis(
            attributes, axis=1).reset_index(drop=True)
        if self.capabilities.uses_persons:
            # Groups form within the target classes over the controlled attributes the
            # generator realises (a generalised QI is "*"; one it does not edit, such as hair
            # colour outside k-Same's face region, stays the photo's own).
            grouped = [q for q in self.controlled if q in self.capabilities.editable]
            classes = target_attributes[grouped]
            options = {"persons": rows["person"].to_numpy()}
            if self.capabilities.uses_landmarks:
                options["landmarks"] = _in_crop(landmarks[rows.index], matrices)
                options["accept"] = _shows_class(self.checker, grouped)
            if self.capabilities.uses_readings:
                options["readings"] = source_attributes  # what each face shows, read
            # Groups form within the target classes: PPAS chose the targets so that each class
            # can be cut into groups of k different persons (photo model v2), and the few faces
            # it moved go into averages of the class they are to show.
            made = self.generator.generate(crops, None, classes, **options)
        else:
            made = self.generator.generate(crops, source_attributes, target_attributes)
        if not isinstance(made, GenerationResult):
            raise TypeError(f"generator {self.generator.name!r} returned "
                            f"{type(made).__name__}, not a GenerationResult")
        if made.shown is not None:
            self._retarget(rows.index, made.shown)
            rows = self.plan.faces.loc[rows.index]
        notes = None
        if made.notes is not None:
            notes = made.notes.set_axis(rows.index)
            self.notes.append(notes)
        if made.realised is not None:
            # A photo goes out only when every face shows its target: one that does not would
            # break the certificate for what is released.
            missed = rows.index[~np.asarray(made.realised, bool)]
            for name in rows.loc[missed, "file"].unique():
                if name in self.todo_names:
                    self.todo_names.discard(name)
                    self.skipped.append({"file": name, "reason": _UNREALISED
                                         if self.generator.name == "ksame"
                                         else _unrealised(self.generator.name)})
        slot = {position: i for i, position in enumerate(rows.index)}
        chunk: list[PhotoJob] = []
        for name, photo_rows in rows.groupby("file", sort=False):
            if name not in self.todo_names:
                continue
            at = [slot[position] for position in photo_rows.index]
            self.waiting[name] = (photo_rows, notes)
            chunk.append(PhotoJob(
                name, self.paths_by_name[name], self.partial / name,
                [made.faces[i] for i in at], [matrices[i] for i in at],
                landmarks[photo_rows.index],
                photo_rows[["x", "y", "width", "height"]].to_numpy(),
                photo_rows[[f"target:{q}" for q in self.controlled]].to_numpy(),
                None if plan.landmarks5 is None else plan.landmarks5[photo_rows.index],
                None if plan.embeddings is None else plan.embeddings[photo_rows.index]))
            if len(chunk) == _CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _retarget(self, index: pd.Index, shown: pd.DataFrame) -> None:
        """Record the class the generator made each face show where it differs from the plan's
        target (k-Same re-targets a face rather than leave it without an average of its
        class): the certificate then states what the face was made to show."""
        faces, claims = self.plan.faces, self.plan.info.get("certificates") or []
        columns = [f"target:{q}" for q in shown.columns]
        made = shown.to_numpy()
        differs = (faces.loc[index, columns].to_numpy() != made).any(axis=1)
        for position, values in zip(index[differs], made[differs]):  # the re-targeted few
            faces.loc[position, columns] = values
            if position < len(claims) and claims[position] is not None:
                claim = claims[position]
                shows = faces.loc[position, list(shown.columns)].to_numpy()
                claim["changed"] = [q for q, a, b in zip(shown.columns, values, shows) if a != b]
                claim["retargeted"] = True

    # -- stage 4: write and certify -----------------------------------------------------------

    def write_and_certify(self, jobs: Iterator[list[PhotoJob]]) -> None:
        """Finish the photos (in worker processes), certify each, then move it into place."""
        # Worker processes take seconds to start: a handful of photos is finished here.
        try:
            write_photos(self.writer, jobs,
                         workers=min(self.workers, -(-len(self.todo) // _CHUNK)),
                         on_outcome=self.certify)
        finally:
            # Also when interrupted: the records of the photos certified so far stay usable.
            save_written(self.out, self.written_faces)

    def certify(self, outcome: PhotoOutcome) -> None:
        """Write a finished photo's certificate, then move the photo into place (in this
        process, in order): a photo in OUT always has its certificate."""
        name = outcome.name
        photo_rows, notes = self.waiting.pop(name)
        if outcome.withheld:
            self.skipped.append({"file": name, "reason": _NOT_SHOWN})
            return
        positions = photo_rows.index
        if outcome.observed is not None:
            for position, values in zip(positions, outcome.observed):
                self.observed[position] = {q: int(v) for q, v in zip(self.controlled, values)}
            self.leaked.update(zip(positions, outcome.leakage))
        if outcome.generated is not None:
            for position, values in zip(positions, outcome.generated):
                self.before[position] = {q: int(v) for q, v in zip(self.controlled, values)}
        if outcome.max_change_levels is not None:
            self.levels[name] = outcome.max_change_levels
        sha256 = file_sha256(self.partial / name)
        kept = outcome.written
        if kept is not None and kept.sha256 == sha256:
            self.written_faces[name] = (kept.sha256, kept.sface, kept.labels)
        else:
            self.written_faces.pop(name, None)
        certificate = self.certificate(name, photo_rows, notes, sha256)
        text = certificate.to_json()
        atomic_write(self.out / CERTIFICATES / f"{name}.json",
                     lambda tmp, text=text: Path(tmp).write_text(text))
        release(self.partial / name, self.out / name)
        self.written.append(name)
        if self.on_write is not None:
            self.on_write(name)

    def certificate(self, name: str, rows: pd.DataFrame, notes: pd.DataFrame | None,
                    sha256: str) -> PhotoCertificate:
        """The certificate of one written photo (``rows``: its faces in the plan)."""
        claims = self.plan.info["certificates"]
        faces = []
        for position, row in rows.iterrows():  # the faces of one photo: a handful
            face = FaceCertificate.planned(row, claims[position] if claims else None, self.qis)
            face.output_attributes = self.observed.get(position)
            face.output_attributes_before_perturbation = self.before.get(position)
            face.leakage = self.leaked.get(position)
            if notes is not None and position in notes.index:
                face.notes = {key: json_value(value)
                              for key, value in notes.loc[position].items()}
            faces.append(face)
        return PhotoCertificate(
            name, sha256, self.generator.name, self.generator_params,
            self.plan.info["persons"]["case"], self.seed is not None, faces,
            photo_perturbation(self.settings.get("perturb"), self.levels.get(name)))

    # -- stage 5: summarise -------------------------------------------------------------------

    @property
    def skipped_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.skipped, columns=["file", "reason"])

    def summarise(self) -> RunSummary:
        """The run's report, audited on what was released, written to ``OUT/run.json``."""
        plan, faces = self.plan, self.plan.faces
        seconds = time.perf_counter() - self.started
        released = faces[faces["file"].isin(set(self.written) | set(self.done))]
        skipped = self.skipped_frame
        notes = pd.concat(self.notes) if self.notes else None
        summary = RunSummary(
            photos=PhotoCounts(len(self.paths), len(self.written), len(self.done), len(skipped)),
            faces=int(len(faces)), generator=self.generator.name,
            generator_params=self.generator_params,
            requirements={key: self.settings[key] for key in ("k", "l", "t", "epsilon")
                          if self.settings[key] is not None},
            qi=self.settings["qi"], persons=plan.info["persons"], ppas=plan.info.get("ppas"),
            reached=worst_reached(plan, released), seeded=self.seed is not None,
            resumed=self.resumed, seconds=round(seconds, 3),
            photos_per_second=round(len(self.written) / seconds, 3) if seconds > 0 else None,
            skipped=skipped.to_dict("records"),
            groups=None if notes is None else GroupSummary.from_notes(
                notes[notes.index.isin(released.index)]))
        if self.verify and len(faces):
            # The certificates' claim is about what the faces show. A perturbation is made to
            # fool the attribute model, so with one the claim is checked on the reading before it
            # (what a reader it does not fool sees); the fooled reading goes with the
            # perturbation below.
            summary.outputs = self._audit(released, self.before if self.perturb is not None
                                          else self.observed)
            if self.perturb is not None:
                summary.outputs["read"] = "before the perturbation"
            summary.leakage = summarise_leakage([self.leaked[i] for i in released.index
                                                 if i in self.leaked])
        summary.release = release_rates(faces, set(self.written) | set(self.done))
        summary.verdict = verdict(summary.outputs, (plan.info.get("ppas") or {}).get("planned"),
                                  summary.release, summary.requirements)
        if self.perturb is not None:
            summary.perturbation = perturbation_summary(self.settings["perturb"], released,
                                                        self.levels, self.observed, self.before)
            if self.verify and len(faces):
                summary.perturbation["outputs_released"] = self._audit(released, self.observed)
        text = summary.to_json()
        atomic_write(self.out / REPORT, lambda tmp: Path(tmp).write_text(text))
        return summary

    def _audit(self, released: pd.DataFrame, reading: Mapping[int, dict]) -> dict:
        """:func:`~.verify.audit_outputs` of one reading of the released faces."""
        controlled = self.controlled
        seen = released.index[released.index.isin(list(reading))]
        shares = (self.plan.info.get("ppas") or {}).get("reference_shares")
        return audit_outputs(
            pd.DataFrame([reading[i] for i in seen], columns=controlled),
            released.loc[seen, [f"target:{q}" for q in controlled]].set_axis(controlled, axis=1),
            released.loc[seen, "person"].to_numpy(), controlled,
            **{key: self.settings[key] for key in ("k", "l", "t")},
            reference_shares=shares)
