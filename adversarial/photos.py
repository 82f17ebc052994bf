"""Adding a perturbation to the faces of real photos, in the frame it was computed in.

A perturbation lives in an aligned *frame*: CelebA's aligned geometry (178 x 218; the eyes where
:data:`~privface.attributes.alignment.CELEBA` puts them) at whatever resolution the attacked model
reads it (109 x 89 for the attribute CNN). To perturb a face of a photo:

1. the face is detected and aligned as everywhere in privface (YuNet, dlib's 68 landmarks, the
   similarity transform on the eye centres), which gives the photo -> crop matrix;
2. the perturbation is **resized to the crop** (178 x 218, bilinear), not the crop to the
   perturbation: the photo keeps its own resolution, and bilinear interpolation takes convex
   combinations, so no value grows and the l_inf budget holds at every size;
3. the perturbation, not the perturbed crop, is warped back into the photo with the inverse of the
   matrix (:func:`cv2.warpAffine`, the same mapping as
   :func:`~privface.attributes.alignment.paste_back`) and added there. Pasting back a perturbed
   crop would also resample the untouched face (two interpolations: a blur the budget does not
   count); adding the warped perturbation changes the photo by the perturbation and nothing
   else. Faces that overlap add up, and the sum is clipped to the perturbation's own l_inf norm;
4. the change is rounded towards zero to whole grey levels and the photo clipped to 0..255
   (:func:`~privface.adversarial.tensors.add_quantized`).

So the released photo differs from the original by at most the perturbation's l_inf norm in every
pixel. An l_2 budget is a statement in the model's frame; in a photo the same perturbation's l_2
norm grows with the face's size. JPEG compression of the output changes the perturbation again
(write PNG to keep it exactly).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from privface.attributes.alignment import CELEBA, align_face, eye_transform, square
from privface.attributes.landmarks import eye_centres
from privface.base.errors import InputError
from privface.base.files import atomic_write, fsync_folder, lock_output
from privface.quality import QualityMeter

from .storage import SavedPerturbation, load_perturbation
from .tensors import add_quantized

RECORD_SCHEMA = "privface.perturb-photos/1"
RECORD = "perturb.json"


def frame_geometry(frame: dict | None):
    """The aligned geometry a saved perturbation's ``frame`` names (default CelebA's).

    Examples
    --------
    >>> frame_geometry({"geometry": "square128"})
    FaceGeometry('square128', 128x128)
    >>> frame_geometry(None)
    FaceGeometry('celeba', 178x218)
    """

    name = (frame or {}).get("geometry", "celeba")
    if name == "celeba":
        return CELEBA
    if isinstance(name, str) and name.startswith("square") and name[6:].isdigit():
        return square(int(name[6:]))
    raise InputError(f"unknown frame geometry {name!r}; expected 'celeba' or 'squareN'")


def resize_perturbation(perturbation: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``(3, h, w)`` perturbation as ``(height, width, 3)`` float32, bilinear.

    Examples
    --------
    >>> v = np.zeros((3, 2, 2), np.float32); v[0] = [[0.0, 0.04], [0.04, -0.04]]
    >>> out = resize_perturbation(v, 4, 4)
    >>> out.shape, float(np.abs(out).max()) <= 0.04
    ((4, 4, 3), True)
    """
    import cv2

    array = np.ascontiguousarray(np.moveaxis(np.asarray(perturbation, np.float32), 0, -1))
    if array.shape[:2] == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)


def perturb_photo(photo: np.ndarray, matrices: Sequence[np.ndarray],
                  perturbations: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Add a perturbation to each aligned face of a photo; returns a new uint8 photo.

    Parameters
    ----------
    photo : ndarray (H, W, 3), uint8
    matrices : sequence of ndarray (2, 3)
        Photo -> crop matrices, one per face (``align_face(...).matrix``).
    perturbations : ndarray (h, w, 3) or a sequence of them, float
        In [0, 1] units, at the crop's size: one for every face (universal) or one per face.

    Examples
    --------
    >>> photo = np.full((40, 40, 3), 100, np.uint8)
    >>> m = np.array([[1.0, 0.0, -10.0], [0.0, 1.0, -10.0]])  # crop = photo[10:30, 10:30]
    >>> out = perturb_photo(photo, [m], np.full((20, 20, 3), 0.04, np.float32))
    >>> int(out[20, 20, 0]), int(out[2, 2, 0])
    (110, 100)
    """
    import cv2

    photo = np.asarray(photo)
    height, width = photo.shape[:2]
    if isinstance(perturbations, np.ndarray) and perturbations.ndim == 3:
        perturbations = [perturbations] * len(matrices)
    if len(perturbations) != len(matrices):
        raise ValueError(f"expected one perturbation per face ({len(matrices)}), got "
                         f"{len(perturbations)}")
    if not len(matrices):
        return photo.copy()
    total = np.zeros((height, width, 3), np.float32)
    bound = 0.0
    for matrix, delta in zip(matrices, perturbations):
        delta = np.ascontiguousarray(delta, dtype=np.float32)
        bound = max(bound, float(np.abs(delta).max()))
        total += cv2.warpAffine(delta, np.asarray(matrix, np.float64), (width, height),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Overlapping faces add up; clip the sum to the largest single change.
    return add_quantized(photo, np.clip(total, -bound, bound))


def perturb_faces(photo: np.ndarray, landmarks: Sequence[np.ndarray],
                  saved: SavedPerturbation) -> np.ndarray:
    """Add a saved universal perturbation to the faces with these 68-point landmarks.

    What the photo pipeline calls after paste-back: each face is aligned to the perturbation's
    frame geometry from its landmarks, and :func:`perturb_photo` does the rest.

    Examples
    --------
    >>> photo = np.full((300, 300, 3), 100, np.uint8)
    >>> points = np.zeros((68, 2)); points[36:42] = (120, 150); points[42:48] = (180, 150)
    >>> v = np.full((3, 109, 89), 0.02, np.float32)
    >>> out = perturb_faces(photo, [points], SavedPerturbation(v, {"xi": 0.02, "p": "inf"}))
    >>> int(out[150, 150, 0]), int(out[5, 5, 0])
    (105, 100)
    """

    geometry = frame_geometry(saved.header.get("frame"))
    matrices = [eye_transform(*eye_centres(points), geometry) for points in landmarks]
    delta = resize_perturbation(saved.perturbation, geometry.height, geometry.width)
    return perturb_photo(photo, matrices, delta)


def attack_faces(photo: np.ndarray, landmarks: Sequence[np.ndarray], *, method: str,
                 xi: float, p="inf", target=None, steps: int = 10,
                 seed: int | None = None) -> np.ndarray:
    """A per-image attack (``fgsm``, ``pgd`` or ``gauss``) on each face of a photo.

    Each face is aligned to CelebA's geometry at full size (178 x 218), attacked there (the
    ``target``, e.g. :func:`~privface.adversarial.models.attribute_classifier` with
    ``frame_size=(218, 178)``, reads the crop through its own resize), and the perturbation is
    added to the photo as in :func:`perturb_photo`. ``gauss`` needs no target.

    Examples
    --------
    >>> photo = np.full((300, 300, 3), 100, np.uint8)
    >>> points = np.zeros((68, 2)); points[36:42] = (120, 150); points[42:48] = (180, 150)
    >>> out = attack_faces(photo, [points], method="gauss", xi=0.04, seed=0)
    >>> int(np.abs(out.astype(int) - photo).max()) <= 10, int(out[5, 5, 0])
    (True, 100)
    """

    # imported on use: it loads torch
    from .attacks import fgsm, gaussian_noise, pgd
    from .tensors import to_tensor

    if method not in ("fgsm", "pgd", "gauss"):
        raise ValueError(f"method must be fgsm, pgd or gauss, got {method!r}")
    if method != "gauss" and target is None:
        raise ValueError(f"{method} needs a target model to attack")
    if not len(landmarks):
        return np.asarray(photo).copy()
    aligned = [align_face(photo, points, CELEBA) for points in landmarks]
    x = to_tensor(np.stack([a.image for a in aligned]))
    if method == "gauss":
        out = gaussian_noise(x, xi=xi, p=p, seed=seed)
    elif method == "fgsm":
        out = fgsm(target, x, xi=xi, p=p)
    else:
        out = pgd(target, x, xi=xi, p=p, steps=steps, seed=seed)
    deltas = (out - x).permute(0, 2, 3, 1).numpy()
    return perturb_photo(photo, [a.matrix for a in aligned], list(deltas))


METHODS = ("uap", "fgsm", "pgd", "gauss")


class PhotoPerturber:
    """One perturbation method, ready to apply to photo after photo: what ``--perturb`` needs.

    Parameters
    ----------
    method : {"uap", "fgsm", "pgd", "gauss"}
    xi : float, optional
        The budget; for ``uap`` it comes from the file (a different ``xi`` is an error).
    p : 2 or inf
    uap : path or SavedPerturbation, optional
        The universal perturbation (``method="uap"``).
    target : Classifier, optional
        What FGSM and PGD attack; default the shipped attribute CNN
        (:func:`~privface.adversarial.models.attribute_classifier`, its default attributes) read
        in the full-size aligned frame.
    steps : int
        PGD's steps.
    seed : int, optional
        For PGD's start and the noise; OS entropy when None (recorded).

    Examples
    --------
    >>> perturber = PhotoPerturber("gauss", xi=0.02, seed=1)
    >>> photo = np.full((300, 300, 3), 100, np.uint8)
    >>> points = np.zeros((68, 2)); points[36:42] = (120, 150); points[42:48] = (180, 150)
    >>> int(np.abs(perturber(photo, [points]).astype(int) - photo).max()) <= 5
    True
    >>> perturber.record()["method"], perturber.record()["seeded"]
    ('gauss', True)
    """

    def __init__(self, method: str, *, xi: float | None = None, p="inf", uap=None,
                 target=None, steps: int = 10, seed: int | None = None) -> None:
        # imported on use: it loads torch
        from .norms import p_name

        if method not in METHODS:
            raise InputError(f"--perturb must be one of {', '.join(METHODS)}, got {method!r}")
        self.method, self.steps, self.seed = method, int(steps), seed
        self._calls = 0
        self.saved = None
        if method == "uap":
            if uap is None:
                raise InputError("--perturb uap needs the perturbation file (from privface "
                                 "perturb train)")
            self.saved = uap if isinstance(uap, SavedPerturbation) else load_perturbation(uap)
            if xi is not None and not np.isclose(float(xi), self.saved.xi, rtol=0, atol=1e-12):
                raise InputError(f"--xi {xi} differs from the perturbation's own budget "
                                 f"{self.saved.xi}; leave --xi out with --perturb uap")
            self.xi, self.p = self.saved.xi, self.saved.p
            return
        if xi is None:
            raise InputError(f"--perturb {method} needs a budget (--xi)")
        try:
            norm = p_name(p)
        except ValueError as error:  # check_p's message, for the option the user gave
            raise InputError(f"--perturb-norm: {error}") from None
        self.xi, self.p = float(xi), norm
        self.target = target
        if method in ("fgsm", "pgd") and target is None:
            # imported on use: it loads torch
            from .models import attribute_classifier

            self.target = attribute_classifier(frame_size=(CELEBA.height, CELEBA.width))

    def __call__(self, photo: np.ndarray, landmarks: Sequence[np.ndarray], *,
                 key: str | None = None) -> np.ndarray:
        """The photo with every face (given by its 68 landmarks) perturbed; a new array.

        ``key`` (the photo's name) makes a seeded run repeat photo for photo whatever the order
        or the process a photo is perturbed in; unseeded, every call draws from OS entropy.
        """
        if self.saved is not None:
            return perturb_faces(photo, landmarks, self.saved)
        return attack_faces(photo, landmarks, method=self.method, xi=self.xi, p=self.p,
                            target=self.target, steps=self.steps, seed=self._photo_seed(key))

    def _photo_seed(self, key: str | None) -> int | None:
        if self.seed is None:
            return None  # OS entropy: copies of this object in worker processes never repeat
        if key is None:  # no name: successive calls still get different noise
            self._calls += 1
            key = f"#{self._calls}"
        sequence = np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(key.encode()),))
        return int(sequence.generate_state(1, np.uint64)[0] >> 2)

    def record(self) -> dict:
        """What a certificate says about the perturbation (JSON-ready)."""
        if self.saved is not None:
            return perturbation_record(self.saved)
        out = {"method": self.method, "xi": self.xi, "p": self.p,
               "seeded": self.seed is not None, "seed": self.seed}
        if self.method == "pgd":
            out["steps"] = self.steps
        if self.method in ("fgsm", "pgd"):
            out["model"] = self.target.describe()
        return out


@dataclass
class PerturbRun:
    """What :func:`perturb_photos` did.

    Attributes
    ----------
    written : list of str
        Photos written.
    skipped : list of dict
        ``file`` and ``reason`` of every photo not written.
    record : dict
        The JSON record written to ``OUT_DIR/perturb.json``.
    """

    written: list[str]
    skipped: list[dict]
    record: dict = field(default_factory=dict)


def perturbation_record(saved: SavedPerturbation) -> dict:
    """What a certificate says about a universal perturbation (JSON-ready).

    Examples
    --------
    >>> saved = SavedPerturbation(np.zeros((3, 2, 2), np.float32), {"xi": 0.04, "p": "inf"})
    >>> record = perturbation_record(saved)
    >>> record["method"], record["xi"], record["sha256"][:8]
    ('uap', 0.04, '17b0761f')
    """
    header = saved.header
    params = header.get("params", {})
    return {"method": "uap", "file": None if saved.path is None else saved.path.name,
            "sha256": saved.sha256(), "xi": saved.xi, "p": saved.p,
            "frame": header.get("frame"), "shape": list(saved.perturbation.shape),
            "seeded": params.get("seeded"), "model": header.get("model"),
            "fooling_rate_train": header.get("fooling_rate")}


def perturb_photos(saved: SavedPerturbation, photos: str | os.PathLike, out_dir: str | os.PathLike,
                   *, suffix: str | None = None, analyzer=None,
                   on_photo: Callable[[str], None] | None = None) -> PerturbRun:
    """Add a saved perturbation to every face of every photo of a folder.

    Parameters
    ----------
    saved : SavedPerturbation
        From :func:`~privface.adversarial.storage.load_perturbation`.
    photos : path
        A folder of photos.
    out_dir : path
        Where the perturbed photos (same names) and ``perturb.json`` go; created if needed. The
        run holds a lock on it, finishes every photo in a staging folder inside it, and then
        releases them: first the earlier run's ``perturb.json`` and the photos it lists that
        this run does not rewrite are removed, then the photos are moved in, then the new record
        is written. So ``OUT`` never holds a record that does not describe the photos beside it;
        an interrupted run leaves the folder as it was (or, if stopped while releasing, photos
        without a record).
    suffix : str, optional
        Write the photos with this suffix (``.png``: lossless, keeps the perturbation exactly)
        instead of their own.
    analyzer : FaceAnalyzer, optional
        Detection and landmarks (default: YuNet and dlib).
    on_photo : callable, optional
        Called with each photo's name once it is done.

    Returns
    -------
    PerturbRun
        Photos without a face or unreadable are skipped with the reason, never written.
    """
    # imported on use: it loads Pillow
    from privface.attributes.images import list_images

    started = time.perf_counter()
    geometry = frame_geometry(saved.header.get("frame"))
    source, out = Path(photos), Path(out_dir)
    paths = list_images(source)
    if not paths:
        raise InputError("the folder holds no photos (expected .jpg, .png, .bmp, .webp or .tif "
                         "files)", file=str(source))
    if source.resolve() == out.resolve():
        raise InputError("the output folder must differ from the photo folder (photos would be "
                         "overwritten)", file=str(out))
    with lock_output(out):
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
        try:
            run = _perturb_into(saved, paths, staging, suffix, analyzer, geometry, on_photo)
            run.record["seconds"] = round(time.perf_counter() - started, 3)
            _release(run, staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        text = json.dumps(run.record, indent=1) + "\n"
        atomic_write(out / RECORD, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return run


def _release(run: PerturbRun, staging: Path, out: Path) -> None:
    """Remove what the earlier run's record describes, then move this run's photos in."""
    old = out / RECORD
    listed: list[str] = []
    if old.is_file():
        try:
            listed = [row["file"] for row in json.loads(old.read_text())["written"]]
        except (ValueError, KeyError, TypeError):  # not a record of ours: leave its files alone
            listed = []
        old.unlink()
    keep = set(run.written)
    for name in listed:
        target = out / Path(name).name  # a record names files in OUT, never a path elsewhere
        if name not in keep and target.is_file():
            target.unlink()
    for name in run.written:
        os.replace(staging / name, out / name)
    fsync_folder(out)  # the photos' renames reach the disk before the record's


def _perturb_into(saved: SavedPerturbation, paths: list[Path], out: Path, suffix: str | None,
                  analyzer, geometry, on_photo) -> PerturbRun:
    """Perturb every photo into ``out`` (the staging folder); the record lacks its timing."""
    # imported on use: it loads Pillow
    from privface.attributes.analysis import FaceAnalyzer
    from privface.attributes.images import ImageError, load_image, save_image

    analyzer = analyzer or FaceAnalyzer(geometry=geometry)
    delta = resize_perturbation(saved.perturbation, geometry.height, geometry.width)
    meter = QualityMeter()
    written, skipped, rows = [], [], []
    for path in paths:
        name = path.name if suffix is None else path.with_suffix(suffix).name
        try:
            image = load_image(path)
            faces = analyzer.faces(image)
        except ImageError as error:
            skipped.append({"file": path.name, "reason": error.message})
            continue
        except ValueError as error:  # degenerate landmarks
            skipped.append({"file": path.name, "reason": f"cannot align a face: {error}"})
            continue
        if not faces:
            skipped.append({"file": path.name, "reason": "no face found"})
            continue
        changed = perturb_photo(image, [f.aligned.matrix for f in faces], delta)
        save_image(changed, out / name)
        meter.add(image, changed)
        levels = int(np.abs(changed.astype(np.int16) - image).max())
        rows.append({"file": name, "source": path.name, "faces": len(faces),
                     "max_change_levels": levels})
        written.append(name)
        if on_photo is not None:
            on_photo(path.name)
    scores = meter.scores()
    for row, psnr, ssim in zip(rows, scores.psnr, scores.ssim):
        row.update(psnr=round(float(psnr), 3), ssim=round(float(ssim), 5))
    record = {"schema": RECORD_SCHEMA, "perturbation": perturbation_record(saved),
              "photos": {"input": len(paths), "written": len(written), "skipped": len(skipped)},
              "quality": scores.summary(), "written": rows, "skipped": skipped}
    return PerturbRun(written, skipped, record)

