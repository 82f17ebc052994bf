"""The generator protocol: aligned faces, their attributes and target attributes in, faces out.

Every generator of stage III, built in or from a plug-in, is an object with a ``name`` and a
``generate`` method. Faces are aligned RGB crops (``(n, height, width, 3)`` uint8, CelebA's
geometry or one of its squares); attributes are pandas DataFrames with one row per face, CelebA's
attribute names as columns and CelebA's 1 / -1 coding. A generator reads the columns it needs
(a missing one is a ValueError naming it). A generator that ignores attributes (the blur,
pixelate and mask baselines) accepts them anyway, so that the pipeline can swap generators
without knowing which kind it holds.

Two optional attributes tell the pipeline more (read with ``getattr`` and these defaults):

- ``geometry`` (:class:`~privface.attributes.alignment.FaceGeometry`, default CelebA's 178 x 218):
  the aligned crop the generator wants, e.g. ``square(128)`` for StarGAN's released models.
- ``editable`` (tuple of attribute names, default ``()``): the attributes the generator can set
  to a target. PPAS only changes these; the others keep the face's own values.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Generator(Protocol):
    """What the pipeline needs from a face generator.

    Examples
    --------
    >>> class Identity:
    ...     name = "identity"
    ...     def generate(self, faces, source_attributes, target_attributes):
    ...         return faces.copy()
    >>> isinstance(Identity(), Generator)
    True
    """

    name: str

    def generate(self, faces: np.ndarray, source_attributes: np.ndarray,
                 target_attributes: np.ndarray) -> np.ndarray:
        """New faces, same shape and dtype as ``faces``."""


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
