"""The generator plug-in interface: what a face generator declares, takes and returns.

Every generator of stage III, built in or from a plug-in, is an object with

- ``name`` (str): how the certificates and ``run.json`` name it;
- ``capabilities`` (:class:`Capabilities`): what the pipeline must know to drive it (the crop
  geometry, the attributes it can set, whether it wants the persons and the landmarks);
- ``generate(faces, source_attributes, target_attributes, **options)`` returning a
  :class:`GenerationResult`.

Faces are aligned RGB crops (``(n, height, width, 3)`` uint8, in ``capabilities.geometry``);
attributes are pandas DataFrames with one row per face, CelebA's attribute names as columns and
CelebA's 1 / -1 coding. A generator reads the columns it needs (a missing one is a ValueError
naming it). A generator that ignores attributes (the blur, pixelate and mask baselines) accepts
them anyway, so that the pipeline can swap generators without knowing which kind it holds. The
pipeline passes the keyword options only when the capabilities ask for them:

- ``uses_persons``: ``persons=`` (a person label per face) and the whole run in one call
  (a group generator needs every face at once); otherwise batches of photos;
- ``uses_landmarks`` (with ``uses_persons``): ``landmarks=`` (``(n, 68, 2)``, crop pixels) and
  ``accept=`` (``accept(faces, class_vectors) -> bool per face``: does the attribute model read
  each class off each face).
- ``uses_readings`` (with ``uses_persons``): ``readings=`` (what each face shows: every
  attribute the attribute model reads, CelebA's coding), so that a group generator can put alike
  faces together (k-Same: faces of one expression in an average).

Plug-ins written for privface 0.1 (no ``capabilities``, ``generate`` returning a bare array,
``geometry`` and ``editable`` as plain attributes) still work through :func:`as_generator`, the one
place that adapts them; that form is deprecated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from privface.attributes.alignment import CELEBA, FaceGeometry


PASTE_MODES = ("blend", "face", "crop")


@dataclass(frozen=True)
class Capabilities:
    """What a generator declares to the pipeline (every field has the default of a plain one).

    Attributes
    ----------
    geometry : FaceGeometry
        The aligned crop the generator wants (default CelebA's 178 x 218), e.g. ``square(128)``
        for StarGAN's released models.
    editable : tuple of str
        The attributes the generator can set to a target (default none). PPAS only changes
        these; the others keep the face's own values, and only these are held to their targets
        when the run checks its outputs.
    uses_persons : bool
        The generator takes ``persons=`` and needs every face of the run in one call.
    uses_landmarks : bool
        The generator takes ``landmarks=`` and ``accept=`` (only read with ``uses_persons``).
    uses_readings : bool
        The generator takes ``readings=``, every attribute read off each face (only read with
        ``uses_persons``).
    paste : {"blend", "face", "crop"}
        How the pipeline puts a new face into its photo. ``"blend"`` (the default, for a new
        face): inside the face region only (:mod:`privface.attributes.face_region`), its colour
        and light matched to the original's and blended with a Laplacian pyramid. ``"face"``:
        inside the face region, as generated, with a feathered edge (the blur, pixelate and mask
        baselines, whose colours are the point). ``"crop"``: the whole aligned crop with a
        feathered edge (a generator that edits hair, which lies outside the face region).
        Outside what is pasted the photo is untouched, bit for bit.

    Examples
    --------
    >>> Capabilities().geometry.name, Capabilities().editable, Capabilities().uses_persons
    ('celeba', (), False)
    """

    geometry: FaceGeometry = CELEBA
    editable: tuple[str, ...] = ()
    uses_persons: bool = False
    uses_landmarks: bool = False
    uses_readings: bool = False
    paste: str = "blend"

    def __post_init__(self) -> None:
        object.__setattr__(self, "editable", tuple(self.editable))
        if self.paste not in PASTE_MODES:
            raise ValueError(f"paste must be one of {PASTE_MODES}, got {self.paste!r}")


@dataclass(frozen=True)
class GenerationResult:
    """What :meth:`Generator.generate` returns.

    Attributes
    ----------
    faces : ndarray
        The new faces, same shape and dtype as the input (``(n, height, width, 3)`` uint8).
    realised : ndarray of bool (n,), optional
        Per face, whether the output shows its target attributes as far as the generator knows
        (k-Same: its average passed the ``accept`` check). None: the generator does not say.
        The pipeline does not write a photo with a face that is not realised.
    regions : ndarray of bool (n, height, width), optional
        The pixels each face replaces; elsewhere the output is the input's. None: the whole
        aligned crop.
    notes : DataFrame, optional
        One row per face of what the generator did (k-Same: ``group``, ``k``, ``group_size``,
        ``class_merged``, ``realised``, ``own_group``); each photo's certificate records its
        faces' rows under the generator's name.
    shown : DataFrame, optional
        The target attributes each face was finally made to show, where the generator had to
        choose another class than asked (k-Same re-targets a face whose class has no usable
        average to the nearest class that has one, rather than leave it unrealised); the
        pipeline records the change. None: every face got what was asked or is not realised.

    Examples
    --------
    >>> result = GenerationResult(np.zeros((2, 4, 4, 3), np.uint8))
    >>> result.faces.shape, result.realised, result.regions, result.notes
    ((2, 4, 4, 3), None, None, None)
    """

    faces: np.ndarray
    realised: np.ndarray | None = None
    regions: np.ndarray | None = None
    notes: pd.DataFrame | None = None
    shown: pd.DataFrame | None = None


@runtime_checkable
class Generator(Protocol):
    """What the pipeline needs from a face generator.

    Examples
    --------
    >>> class Identity:
    ...     name = "identity"
    ...     capabilities = Capabilities()
    ...     def generate(self, faces, source_attributes, target_attributes):
    ...         return GenerationResult(faces.copy())
    >>> isinstance(Identity(), Generator)
    True
    """

    name: str
    capabilities: Capabilities

    def generate(self, faces: np.ndarray, source_attributes: pd.DataFrame | None,
                 target_attributes: pd.DataFrame | None) -> GenerationResult:
        """New faces and what the generator knows about them."""


class _LegacyGenerator:
    """A privface 0.1 generator behind the current interface (see :func:`as_generator`)."""

    def __init__(self, generator) -> None:
        self.wrapped = generator
        self.name = generator.name
        # The only place the old optional attributes are read.
        self.capabilities = Capabilities(
            geometry=getattr(generator, "geometry", None) or CELEBA,
            editable=tuple(getattr(generator, "editable", ())),
            uses_persons=bool(getattr(generator, "uses_persons", False)),
            uses_landmarks=bool(getattr(generator, "uses_landmarks", False)))

    def generate(self, faces, source_attributes=None, target_attributes=None, **options
                 ) -> GenerationResult:
        made = self.wrapped.generate(faces, source_attributes, target_attributes, **options)
        return made if isinstance(made, GenerationResult) else GenerationResult(np.asarray(made))

    def __getattr__(self, name: str):
        # The plug-in's own parameters (``gen.strength``) stay readable through the adapter.
        if name == "wrapped":
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return f"legacy({self.wrapped!r})"


def as_generator(generator) -> Generator:
    """The generator itself when it declares :class:`Capabilities`, else a deprecated adapter.

    A generator without ``capabilities`` is read the privface 0.1 way (deprecated; declare
    ``capabilities`` and return a :class:`GenerationResult` instead): its ``geometry``,
    ``editable``, ``uses_persons`` and ``uses_landmarks`` attributes, if any, become its
    capabilities, and a bare array from ``generate`` becomes ``GenerationResult(faces)``. A
    :class:`DeprecationWarning` says so.

    Raises
    ------
    TypeError
        The object has no ``name`` or no ``generate`` method.

    Examples
    --------
    >>> import warnings
    >>> class Old:
    ...     name = "old"
    ...     editable = ("Smiling",)
    ...     def generate(self, faces, source_attributes, target_attributes):
    ...         return faces.copy()
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     gen = as_generator(Old())
    >>> gen.capabilities.editable, type(gen.generate(np.zeros((1, 4, 4, 3), np.uint8))).__name__
    (('Smiling',), 'GenerationResult')
    """
    if not isinstance(getattr(generator, "name", None), str) or \
            not callable(getattr(generator, "generate", None)):
        raise TypeError(f"{generator!r} does not follow the Generator protocol (a name and a "
                        "generate(faces, source_attributes, target_attributes) method)")
    if isinstance(getattr(generator, "capabilities", None), Capabilities):
        return generator
    warnings.warn(f"generator {generator.name!r} declares no `capabilities` (privface 0.1's "
                  "plug-in interface, deprecated): declare "
                  "privface.generators.base.Capabilities and return a GenerationResult",
                  DeprecationWarning, stacklevel=2)
    return _LegacyGenerator(generator)


def check_faces(faces: np.ndarray) -> np.ndarray:
    """Validate a batch of aligned faces: ``(n, height, width, 3)`` uint8.

    Examples
    --------
    >>> check_faces(np.zeros((2, 8, 8, 3), np.uint8)).shape
    (2, 8, 8, 3)
    >>> check_faces(np.zeros((8, 8, 3), np.uint8))
    Traceback (most recent call last):
    ...
    ValueError: faces must be an (n, height, width, 3) uint8 array, got shape (8, 8, 3) uint8
    """
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.shape[-1] != 3 or faces.dtype != np.uint8:
        raise ValueError("faces must be an (n, height, width, 3) uint8 array, got shape "
                         f"{faces.shape} {faces.dtype}")
    return faces
