"""StarGAN behind privface's generator protocol: aligned squares and target attributes in."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from privface.base.errors import InputError
from privface.attributes.alignment import FaceGeometry, square

from ..base import Capabilities, GenerationResult, check_faces
from .checkpoints import load_stargan_generator, shipped_generator_path
from .data import from_model_output, label_vectors, to_model_input
from .networks import RELEASED_ATTRIBUTES


class StarGANGenerator:
    """Sets attributes of aligned faces with a trained StarGAN generator.

    Faces are CelebA's central square resized to ``image_size`` (the pipeline aligns them with
    ``geometry``); the target attributes, read from ``target_attributes``, become the label
    vector (1 present, 0 absent). Weights are never downloaded: without ``checkpoint`` the
    weights shipped in the package (``generators/models/stargan_celeba128_v1-*.safetensors``)
    are used where the installed version has them; otherwise pass the release's
    ``200000-G.ckpt`` (trained at 128 or 256 px on five attributes), a ``{iter}-G.ckpt``
    written by ``privface train stargan`` with the sizes it was trained with, or one shard of
    an exported ``*.safetensors`` set.

    Parameters
    ----------
    checkpoint : path-like, optional
        The generator's state dict (default: the shipped weights, if any).
    image_size : int
        Side of the square faces (128 or 256 for the release).
    attributes : sequence of str
        CelebA attribute names, in the order of the model's label vector.
    conv_dim, repeat_num : int
        The generator's sizes (the release's: 64 and 6).
    batch_size : int
        Faces per forward pass.
    device : str
        Torch device.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from privface.generators.stargan import Generator
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "G.ckpt"
    >>> torch.save(Generator(conv_dim=4, repeat_num=1).state_dict(), p)
    >>> gan = StarGANGenerator(p, image_size=32, conv_dim=4, repeat_num=1)
    >>> gan.geometry, gan.editable[:2]
    (FaceGeometry('square32', 32x32), ('Black_Hair', 'Blond_Hair'))
    >>> target = pd.DataFrame([[1, -1, -1, 1, 1]], columns=list(gan.editable))
    >>> gan.generate(np.zeros((1, 32, 32, 3), np.uint8), None, target).faces.shape
    (1, 32, 32, 3)
    """

    name = "stargan"

    def __init__(self, checkpoint: str | os.PathLike | None = None, image_size: int = 128,
                 attributes: Sequence[str] = RELEASED_ATTRIBUTES, conv_dim: int = 64,
                 repeat_num: int = 6, batch_size: int = 16, device: str = "cpu") -> None:
        if checkpoint is None:
            checkpoint = shipped_generator_path()
        if checkpoint is None:
            raise InputError("StarGAN needs a checkpoint: no trained StarGAN weights ship with "
                             "this installation of privface (generators/models/"
                             "stargan_celeba128_v1-*.safetensors is missing), and privface "
                             "never downloads weights. Pass one with --checkpoint PATH (or "
                             "checkpoint=PATH): "
                             "the official 200000-G.ckpt (5 attributes, 128 or 256 px), a "
                             "{iter}-G.ckpt from `privface train stargan`, or one of its "
                             "exported *-00001-of-0000N.safetensors shards")
        if int(image_size) < 16 or int(image_size) % 4:
            raise InputError(f"image_size must be a multiple of 4, at least 16, got {image_size}")
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.attributes = tuple(attributes)
        if not self.attributes or len(set(self.attributes)) != len(self.attributes):
            raise InputError(f"attributes must be distinct and at least one, got {attributes}")
        self.checkpoint = checkpoint
        self.image_size, self.batch_size, self.device = int(image_size), int(batch_size), device
        self.geometry: FaceGeometry = square(self.image_size)
        self.editable: tuple[str, ...] = self.attributes
        self.model = load_stargan_generator(checkpoint, c_dim=len(self.attributes),
                                            conv_dim=conv_dim, repeat_num=repeat_num)
        self.model.to(device).eval()

    @property
    def capabilities(self) -> Capabilities:
        """Its square crop; it sets :attr:`attributes`."""
        # It recolours hair, which lies outside the face region: the whole crop goes back.
        return Capabilities(geometry=self.geometry, editable=self.editable, paste="crop")

    def generate(self, faces: np.ndarray, source_attributes: pd.DataFrame | None,
                 target_attributes: pd.DataFrame) -> GenerationResult:
        """Translate ``faces`` to ``target_attributes`` (``source_attributes`` is not needed).

        Parameters
        ----------
        faces : ndarray (n, image_size, image_size, 3) uint8
            Aligned faces in :attr:`geometry`.
        source_attributes : DataFrame or None
            Ignored: StarGAN conditions on the target only.
        target_attributes : DataFrame
            One row per face with a 1 / -1 column for each of :attr:`attributes`.

        Returns
        -------
        GenerationResult
            New faces, same shape and dtype.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from privface.generators.stargan import Generator
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "G.ckpt"
        >>> torch.save(Generator(conv_dim=4, c_dim=1, repeat_num=1).state_dict(), p)
        >>> gan = StarGANGenerator(p, 16, attributes=["Male"], conv_dim=4, repeat_num=1)
        >>> gan.generate(np.zeros((2, 16, 16, 3), np.uint8), None, pd.DataFrame({"Age": [1, 1]}))
        Traceback (most recent call last):
        ...
        privface.base.errors.InputError: target_attributes: no column 'Male' ...
        """
        faces = check_faces(faces)
        size = self.image_size
        if faces.shape[1:3] != (size, size):
            raise ValueError(f"StarGAN ({self.geometry.name}) needs {size} x {size} faces "
                             f"aligned with its geometry, got {faces.shape[2]} x "
                             f"{faces.shape[1]} (width x height)")
        if not isinstance(target_attributes, pd.DataFrame):
            raise ValueError("target_attributes must be a DataFrame with a 1 / -1 column for "
                             f"each of {', '.join(self.attributes)}, got "
                             f"{type(target_attributes).__name__}")
        if len(target_attributes) != len(faces):
            raise ValueError(f"target_attributes has {len(target_attributes)} row(s) for "
                             f"{len(faces)} face(s)")
        labels = label_vectors(target_attributes, self.attributes, source="target_attributes")
        out = np.empty_like(faces)
        with torch.inference_mode():
            for first in range(0, len(faces), self.batch_size):
                chunk = slice(first, first + self.batch_size)
                x = to_model_input(faces[chunk]).to(self.device)
                c = torch.from_numpy(labels[chunk]).to(self.device)
                out[chunk] = from_model_output(self.model(x, c))
        return GenerationResult(out)
