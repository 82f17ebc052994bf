"""The paper's baselines (AnonymousNet, Table 1): blur, pixelate and mask the face.

They change no attribute on purpose and need no weights; they are what a stronger generator must
beat on leakage at a given image quality. Each strength parameter is in pixels of the aligned crop,
so the same setting means the same thing for every photo. Each works on the whole crop, and the
pipeline pastes the result into the face region only (``Capabilities(paste="face")``: the region
k-Same replaces, drawn from the face's landmarks, with a feathered edge and no colour matching),
so that every generator of Table 1 changes the same pixels.
"""

from __future__ import annotations

import numpy as np

from privface.base.errors import InputError
from .base import Capabilities, GenerationResult, check_faces


def face_ellipse(height: int, width: int) -> np.ndarray:
    """Boolean mask of the face in an aligned crop (CelebA's geometry or its squares).

    The ellipse covers brows to chin and cheek to cheek: measured on CelebA's template, the eyes
    sit at 51.5% of the height and 39% / 61% of the width of a 178 x 218 crop.

    Examples
    --------
    >>> mask = face_ellipse(218, 178)
    >>> bool(mask[120, 89]), bool(mask[5, 5])
    (True, False)
    """
    rows, cols = np.mgrid[0:height, 0:width]
    # Proportions of CelebA's aligned crop; squares are its central square, so rescale rows.
    if abs(height / width - 218 / 178) < 0.05:
        centre_y, radius_y = 0.60 * height, 0.30 * height
    else:
        centre_y, radius_y = 0.62 * height, 0.37 * height
    centre_x, radius_x = 0.5 * width, 0.30 * width
    return ((rows - centre_y) / radius_y) ** 2 + ((cols - centre_x) / radius_x) ** 2 <= 1.0


class BlurGenerator:
    """Gaussian blur of the aligned crop (the pipeline keeps the face region's part).

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian in pixels.

    Examples
    --------
    >>> faces = np.zeros((1, 32, 32, 3), np.uint8); faces[0, 16, 16] = 255
    >>> out = BlurGenerator(sigma=2).generate(faces, None, None).faces
    >>> int(out[0, 16, 16, 0]) < 255, out.shape
    (True, (1, 32, 32, 3))
    """

    name = "blur"
    # Sets no attribute; pasted into the face region as it is (no colour matching).
    capabilities = Capabilities(paste="face")

    def __init__(self, sigma: float = 8.0) -> None:
        if not sigma > 0:
            raise InputError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def generate(self, faces: np.ndarray, source_attributes=None, target_attributes=None
                 ) -> GenerationResult:
        import cv2

        faces = check_faces(faces)
        return GenerationResult(np.stack([
            cv2.GaussianBlur(face, (0, 0), self.sigma, borderType=cv2.BORDER_REFLECT_101)
            for face in faces]))


class PixelateGenerator:
    """Pixelation: the crop is averaged over square blocks, then shown at its size again.

    Parameters
    ----------
    block : int
        Block side in pixels.

    Examples
    --------
    >>> faces = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(1, 16, 16, 3)
    >>> out = PixelateGenerator(block=4).generate(faces, None, None).faces
    >>> bool((out[0, :4, :4] == out[0, 0, 0]).all())
    True
    """

    name = "pixelate"
    capabilities = Capabilities(paste="face")

    def __init__(self, block: int = 12) -> None:
        if int(block) < 1:
            raise InputError(f"block must be at least 1 pixel, got {block}")
        self.block = int(block)

    def generate(self, faces: np.ndarray, source_attributes=None, target_attributes=None
                 ) -> GenerationResult:
        faces = check_faces(faces)
        n, height, width, _ = faces.shape
        b = self.block
        # Pad to whole blocks by repeating the edge, average each block, then expand and crop.
        pad_h, pad_w = -height % b, -width % b
        padded = np.pad(faces, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        blocks = padded.reshape(n, (height + pad_h) // b, b, (width + pad_w) // b, b, 3)
        means = np.rint(blocks.astype(np.float32).mean(axis=(2, 4))).astype(np.uint8)
        expanded = np.repeat(np.repeat(means, b, axis=1), b, axis=2)
        return GenerationResult(np.ascontiguousarray(expanded[:, :height, :width]))


class MaskGenerator:
    """Covers the face with a solid colour.

    The whole aligned crop is filled; the pipeline pastes it into the face region drawn from
    each face's own landmarks (:mod:`privface.attributes.face_region`), the region every
    generator replaces, so that the mask covers exactly what k-Same replaces (Table 1 compares
    like with like). :func:`face_ellipse` is the region of a crop without landmarks.

    Parameters
    ----------
    color : tuple of int
        RGB fill.

    Examples
    --------
    >>> faces = np.full((1, 218, 178, 3), 200, np.uint8)
    >>> result = MaskGenerator(color=(0, 0, 0)).generate(faces, None, None)
    >>> result.faces[0, 120, 89].tolist(), result.faces[0, 2, 2].tolist()
    ([0, 0, 0], [0, 0, 0])
    >>> result.regions is None, MaskGenerator.capabilities.paste
    (True, 'face')
    """

    name = "mask"
    capabilities = Capabilities(paste="face")

    def __init__(self, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
            raise InputError(f"color must be three values in 0..255, got {color}")
        self.color = tuple(int(c) for c in color)

    def generate(self, faces: np.ndarray, source_attributes=None, target_attributes=None
                 ) -> GenerationResult:
        faces = check_faces(faces)
        out = np.empty_like(faces)
        out[...] = self.color
        return GenerationResult(out)
