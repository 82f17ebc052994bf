"""Stage III with a diffusion model: the face region repainted from a prompt of target attributes.

:class:`DiffusersInpaintGenerator` loads a Stable Diffusion inpainting pipeline from a local
folder (one written by ``pipeline.save_pretrained(folder)``; privface never downloads weights),
masks the face region of each aligned crop (:func:`face_region`: the region every generator
replaces, drawn on CelebA's mean landmarks, widened by a feathering band), and repaints it from
a text prompt that describes the target attributes (:func:`attributes_to_prompt`). The
generated pixels are composited back: outside the feathered mask every pixel is the input's own,
so hair and background outside the band are untouched, and inside the band the new face fades
into the old surroundings.

The noise is the privacy: by default every face gets a fresh seed from the operating system's
entropy, so nobody can re-run the generator to reproduce (and then invert) an output. ``seed=``
is a reproducibility option for experiments; it is kept on the generator (``.seed``) so that the
run report can say it was used.

Needs the ``generators`` extra (``pip install "privface[generators]"``: torch, diffusers,
transformers); importing this module does not, only building a generator does.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.attributes.alignment import FaceGeometry, square
from privface.attributes.face_region import face_mask, template_landmarks

from .base import Capabilities, GenerationResult, check_faces
from .prompts import (DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT_TEMPLATE, EXPRESSIBLE_ATTRIBUTES,
                      FACE_REGION_ATTRIBUTES, attributes_to_negative_prompt, attributes_to_prompt,
                      attributes_to_subject)

__all__ = ["DEFAULT_NEGATIVE_PROMPT", "DEFAULT_PROMPT_TEMPLATE", "EXPRESSIBLE_ATTRIBUTES",
           "FACE_REGION_ATTRIBUTES", "DiffusersInpaintGenerator", "attributes_to_negative_prompt",
           "attributes_to_prompt", "attributes_to_subject", "face_masks", "face_region"]

INSTALL_HINT = 'pip install "privface[generators]"'

def face_region(size: int) -> np.ndarray:
    """The face region of a ``size`` x ``size`` aligned crop, as the inpainting mask's core.

    The region k-Same and the baselines replace (:func:`~privface.attributes.face_region.face_mask`)
    drawn on CelebA's mean landmarks, widened by ``size / 24`` pixels so that it covers the
    region of a face whose own landmarks differ from the mean (the pipeline then keeps only
    that face's own region).

    Examples
    --------
    >>> region = face_region(64)
    >>> bool(region[40, 32]), bool(region[2, 2]), bool(region[0, 32])  # cheek, corner, top
    (True, False, False)
    """
    import cv2

    core = face_mask(template_landmarks(size, size), (size, size)) > 0
    margin = max(1, round(size / 24))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.dilate(core.astype(np.uint8), kernel) > 0


def face_masks(size: int, feather: float) -> tuple[np.ndarray, np.ndarray]:
    """The region to repaint and the blending weights for a ``size`` x ``size`` aligned crop.

    The weight is 1 on the face region (:func:`face_region`) and falls linearly to 0 over
    ``feather`` pixels outside it; the repainted region is where the weight is above 0, so that
    every pixel that gets any weight is a generated one.

    Parameters
    ----------
    size : int
        Side of the square crop in pixels.
    feather : float
        Width of the blending band in pixels; 0 gives a hard edge.

    Returns
    -------
    mask : ndarray (size, size) bool
        The pixels the pipeline repaints.
    alpha : ndarray (size, size) float32
        Weight of the generated pixel in the output; exactly 0 outside ``mask``.

    Examples
    --------
    >>> mask, alpha = face_masks(64, 4)
    >>> float(alpha[40, 32]), float(alpha[0, 0]), bool(mask[0, 0])
    (1.0, 0.0, False)
    >>> bool(((alpha > 0) == mask).all()), bool((mask >= face_region(64)).all())
    (True, True)
    """
    from scipy.ndimage import distance_transform_edt

    if not feather >= 0:
        raise ValueError(f"feather must be at least 0 pixels, got {feather}")
    region = face_region(size)
    if feather == 0:
        return region.copy(), region.astype(np.float32)
    outside = distance_transform_edt(~region)  # distance to the region, 0 on it
    alpha = np.clip(1.0 - outside / float(feather), 0.0, 1.0).astype(np.float32)
    return alpha > 0, alpha


def _require_backend():
    try:
        import diffusers
        import torch
    except ImportError as error:  # the extra is optional: say how to get it
        raise ImportError(f"the diffusers generator needs torch, diffusers and transformers "
                          f"({INSTALL_HINT}): {error}") from error
    return torch, diffusers


class DiffusersInpaintGenerator:
    """Repaints the face of aligned crops with a local diffusers inpainting pipeline.

    Each face's target attributes become its prompt (:func:`attributes_to_prompt`) and negative
    prompt (:func:`attributes_to_negative_prompt`); the pipeline repaints :attr:`mask` (the face
    region widened by ``feather`` pixels) and the result is blended into the input with
    :attr:`alpha`, so pixels outside :attr:`mask` are the input's exactly.

    Parameters
    ----------
    model_dir : path-like
        A folder written by ``pipeline.save_pretrained`` (with ``model_index.json``), e.g. a
        Stable Diffusion inpainting model. Only local files are read.
    size : int, optional
        Side of the square faces (:attr:`geometry` is ``square(size)``); a multiple of 8.
        Default: what the pipeline was trained at (``unet.config.sample_size`` times the VAE's
        scale factor, 512 for Stable Diffusion 1.5 / 2 inpainting).
    steps : int
        Denoising steps.
    guidance_scale : float
        Classifier-free guidance; higher follows the prompt more closely. 1 or less turns the
        negative prompt off.
    strength : float
        In (0, 1]; 1 repaints from pure noise (nothing of the identity survives in the mask),
        lower keeps more of the original face's structure.
    prompt_template : str
        Text around the attribute description; must contain ``{subject}``.
    negative_prompt : str
        Negative prompt for every face (per-face absent attributes are added to it).
    seed : int, optional
        Makes the output reproducible: two generators with the same seed give identical faces
        for identical calls. Default None: every face's noise comes from the operating system's
        entropy, which is what protects privacy; use a seed only for experiments.
    device : str
        Torch device; the pipeline runs in float32.
    feather : float, optional
        Width in pixels of the band outside the face region over which the generated face fades
        into the input. Default: ``size / 32`` (16 pixels at 512).
    batch_size : int
        Faces per pipeline call; each face's noise depends on the seed and its position in the
        call only, not on the batching.

    Attributes
    ----------
    pipeline : diffusers.DiffusionPipeline
        The loaded pipeline.
    last_prompts, last_negative_prompts : list of str
        The prompts of the last :meth:`generate` call, one per face (for the run report).

    Examples
    --------
    >>> DiffusersInpaintGenerator("no/such/folder")
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: no diffusers pipeline folder at no/such/folder ...
    >>> gen = DiffusersInpaintGenerator("models/sd-inpainting", steps=30)  # doctest: +SKIP
    >>> gen.geometry  # doctest: +SKIP
    FaceGeometry('square512', 512x512)
    >>> target = pd.DataFrame({"Male": [-1], "Smiling": [1]})  # doctest: +SKIP
    >>> gen.generate(faces, None, target).faces.shape  # doctest: +SKIP
    (1, 512, 512, 3)
    """

    name = "diffusers"

    def __init__(self, model_dir: str | os.PathLike, *, size: int | None = None,
                 steps: int = 25, guidance_scale: float = 7.5, strength: float = 1.0,
                 prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
                 negative_prompt: str = DEFAULT_NEGATIVE_PROMPT, seed: int | None = None,
                 device: str = "cpu", feather: float | None = None,
                 batch_size: int = 8) -> None:
        # Cheap checks first, so that a typo fails before a multi-gigabyte load.
        if int(steps) < 1:
            raise InputError(f"steps must be at least 1, got {steps}")
        if not float(guidance_scale) >= 0:
            raise InputError(f"guidance_scale must be at least 0, got {guidance_scale}")
        if not 0 < float(strength) <= 1:
            raise InputError(f"strength must be in (0, 1], got {strength}")
        if int(int(steps) * float(strength)) < 1:  # diffusers runs steps * strength of them
            raise InputError(f"steps * strength must be at least 1 denoising step, got "
                             f"{steps} * {strength}")
        if "{subject}" not in prompt_template:
            raise InputError(f"prompt_template must contain {{subject}}, got {prompt_template!r}")
        if seed is not None and (isinstance(seed, bool) or int(seed) != seed or seed < 0):
            raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
        if feather is not None and not float(feather) >= 0:
            raise InputError(f"feather must be at least 0 pixels, got {feather}")
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if size is not None:
            _check_size(size)
        folder = Path(model_dir).expanduser()
        if not folder.is_dir():
            raise InputError(f"no diffusers pipeline folder at {model_dir} (privface never "
                             "downloads weights: save a pipeline there with "
                             "pipeline.save_pretrained(folder))")
        index_file = folder / "model_index.json"
        if not index_file.is_file():
            raise InputError(f"{model_dir} is not a diffusers pipeline folder: it has no "
                             "model_index.json (write one with pipeline.save_pretrained)")
        try:
            components = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{index_file} is not readable JSON: {error}") from error

        self.model_dir = folder
        self.steps, self.guidance_scale = int(steps), float(guidance_scale)
        self.strength = float(strength)
        self.prompt_template, self.negative_prompt = prompt_template, negative_prompt
        self.seed: int | None = None if seed is None else int(seed)
        self.device, self.batch_size = device, int(batch_size)
        # One stream per generator: successive calls get fresh noise, yet a new generator with
        # the same seed replays them. Without a seed, secrets draws from the OS per face.
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)
        self.last_prompts: list[str] = []
        self.last_negative_prompts: list[str] = []

        torch, diffusers = _require_backend()
        options: dict[str, Any] = {"local_files_only": True}
        if isinstance(components, dict) and "safety_checker" in components:
            # The checker blacks out images it flags and needs an extra model; faces are not its
            # concern here, and skipping it keeps the load small.
            options.update(safety_checker=None, requires_safety_checker=False)
        try:
            pipeline = diffusers.AutoPipelineForInpainting.from_pretrained(str(folder),
                                                                           **options)
        except (OSError, ValueError) as error:
            raise InputError(f"cannot load a diffusers inpainting pipeline from {model_dir}: "
                             f"{error}") from error
        # float32 on purpose: half precision is slow or unsupported on CPUs.
        pipeline = pipeline.to(torch.device(device), torch.float32)
        # privface reports its own progress; a bar per call would flood the log.
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline = pipeline

        if size is None:
            size = _native_size(pipeline, model_dir)
        self.size = int(size)
        self.feather = float(self.size / 32 if feather is None else feather)
        self.geometry: FaceGeometry = square(self.size)
        self.editable: tuple[str, ...] = FACE_REGION_ATTRIBUTES
        self.mask, self.alpha = face_masks(self.size, self.feather)

    @property
    def capabilities(self) -> Capabilities:
        """Its square crop; it sets the attributes a prompt can say about a face."""
        # Pasted into each face's own region as generated: the prompt sets the skin's colour.
        return Capabilities(geometry=self.geometry, editable=self.editable, paste="face")

    def __repr__(self) -> str:
        return (f"DiffusersInpaintGenerator({str(self.model_dir)!r}, size={self.size}, "
                f"steps={self.steps}, seed={self.seed})")

    def _seeds(self, n: int) -> list[int]:
        if self._rng is None:
            return [secrets.randbits(63) for _ in range(n)]
        return [int(s) for s in self._rng.integers(0, 2 ** 63, size=n, dtype=np.uint64)]

    def generate(self, faces: np.ndarray, source_attributes: pd.DataFrame | None,
                 target_attributes: pd.DataFrame | None) -> GenerationResult:
        """Repaint the face of each crop to look like its row of ``target_attributes``.

        Parameters
        ----------
        faces : ndarray (n, size, size, 3) uint8
            Aligned faces in :attr:`geometry`.
        source_attributes : DataFrame or None
            Ignored: the prompt describes the target only.
        target_attributes : DataFrame or None
            One row per face, CelebA attribute names as columns, 1 / -1; columns the prompt
            cannot express are ignored. None repaints every face as "a person".

        Returns
        -------
        GenerationResult
            New faces, same shape and dtype; pixels outside :attr:`mask` (its ``regions``) are
            the input's.

        Examples
        --------
        >>> gen = DiffusersInpaintGenerator("models/sd-inpainting")  # doctest: +SKIP
        >>> faces = np.zeros((2, gen.size, gen.size, 3), np.uint8)  # doctest: +SKIP
        >>> out = gen.generate(faces, None, pd.DataFrame({"Male": [1, -1]}))  # doctest: +SKIP
        >>> gen.last_prompts[1]  # doctest: +SKIP
        'a photo of a woman, natural face, high quality'
        """
        torch, _ = _require_backend()
        faces = check_faces(faces)
        n, size = len(faces), self.size
        if faces.shape[1:3] != (size, size):
            raise ValueError(f"the diffusers generator ({self.geometry.name}) needs {size} x "
                             f"{size} faces aligned with its geometry, got {faces.shape[2]} x "
                             f"{faces.shape[1]} (width x height)")
        rows = _target_rows(target_attributes, n)
        prompts = [attributes_to_prompt(row, self.prompt_template) for row in rows]
        negatives = [attributes_to_negative_prompt(row, self.negative_prompt) for row in rows]
        self.last_prompts, self.last_negative_prompts = prompts, negatives
        regions = np.broadcast_to(self.mask, (n, size, size))
        if n == 0:
            return GenerationResult(faces.copy(), regions=regions)

        seeds = self._seeds(n)
        images = faces.astype(np.float32) / 255.0  # a new array: the input stays untouched
        masks = np.broadcast_to(self.mask[None, :, :, None].astype(np.float32),
                                (n, size, size, 1)).copy()
        generated = np.empty((n, size, size, 3), np.float32)
        with torch.inference_mode():
            for first in range(0, n, self.batch_size):
                chunk = slice(first, first + self.batch_size)
                # One torch.Generator per face (on the CPU, as diffusers advises for
                # reproducibility across devices): its noise does not depend on the batching.
                generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds[chunk]]
                result = self.pipeline(
                    prompt=prompts[chunk], negative_prompt=negatives[chunk],
                    image=images[chunk], mask_image=masks[chunk], height=size, width=size,
                    num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
                    strength=self.strength, generator=generators, output_type="np")
                generated[chunk] = np.asarray(result.images, dtype=np.float32)
        new = np.clip(np.rint(generated * 255.0), 0, 255)
        alpha = self.alpha[None, :, :, None]
        blended = np.rint(alpha * new + (1.0 - alpha) * faces).astype(np.uint8)
        # Bit-exact outside the mask, whatever floating point does with weight 0.
        return GenerationResult(np.where(self.mask[None, :, :, None], blended, faces),
                                regions=regions)


def _check_size(size: int) -> None:
    if isinstance(size, bool) or int(size) != size or size < 16 or size % 8:
        raise InputError(f"size must be a multiple of 8, at least 16 pixels, got {size}")


def _native_size(pipeline, model_dir) -> int:
    """The image side the pipeline was trained at: the UNet's latent side times the VAE's scale."""
    unet = getattr(pipeline, "unet", None)
    sample = getattr(getattr(unet, "config", None), "sample_size", None)
    if isinstance(sample, (list, tuple)) and len(set(sample)) == 1:
        sample = sample[0]
    factor = getattr(pipeline, "vae_scale_factor", None)
    if not isinstance(sample, int) or not isinstance(factor, int):
        raise InputError(f"cannot tell the image size of the pipeline in {model_dir}; "
                         "pass size=")
    _check_size(sample * factor)
    return sample * factor


def _target_rows(target_attributes: pd.DataFrame | None, n: int) -> list[dict | None]:
    if target_attributes is None:
        return [None] * n
    if not isinstance(target_attributes, pd.DataFrame):
        raise ValueError("target_attributes must be a DataFrame with CelebA attribute names as "
                         f"columns (1 / -1), got {type(target_attributes).__name__}")
    if len(target_attributes) != n:
        raise ValueError(f"target_attributes has {len(target_attributes)} row(s) for {n} "
                         "face(s)")
    return target_attributes.to_dict("records")
