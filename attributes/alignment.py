"""Aligning faces to a fixed geometry and pasting them back into their photo.

A similarity transform (rotation, uniform scale, translation) maps the two eye centres onto their
positions in a template. The default template is CelebA's aligned-and-cropped geometry (178 x 218),
so that a face from any photo looks like the images the attribute model was trained on; the square
geometries (128, 256) are CelebA's central 178 x 178 crop resized, the input of StarGAN's released
models. The same 2 x 3 matrix, inverted, pastes a generated face back into the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmarks import eye_centres

# Mean eye centres of CelebA's aligned images (178 x 218), measured with this package's detector
# and landmarks on the shared 200-identity set (benchmarks/bench_faces.py prints them again).
CELEBA_LEFT_EYE = (70.2, 112.2)
CELEBA_RIGHT_EYE = (107.5, 112.2)


@dataclass(frozen=True)
class FaceGeometry:
    """Where the eyes go in an aligned crop of ``width`` x ``height`` pixels.

    Examples
    --------
    >>> CELEBA.width, CELEBA.height
    (178, 218)
    >>> square(128).left_eye
    (50.48..., 66.30...)
    """

    name: str
    width: int
    height: int
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]

    def __repr__(self) -> str:
        return f"FaceGeometry({self.name!r}, {self.width}x{self.height})"


CELEBA = FaceGeometry("celeba", 178, 218, CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE)


def square(size: int) -> FaceGeometry:
    """CelebA's central square (rows 20-198 of 218) resized to ``size`` x ``size``.

    Examples
    --------
    >>> square(256)
    FaceGeometry('square256', 256x256)
    """
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    factor = size / 178.0

    def place(eye: tuple[float, float]) -> tuple[float, float]:
        return (eye[0] * factor, (eye[1] - 20.0) * factor)

    return FaceGeometry(f"square{size}", size, size, place(CELEBA_LEFT_EYE),
                        place(CELEBA_RIGHT_EYE))


def eye_transform(left_eye, right_eye, geometry: FaceGeometry = CELEBA) -> np.ndarray:
    """The 2 x 3 similarity matrix taking the photo's eye centres onto the template's.

    Examples
    --------
    >>> m = eye_transform((10, 10), (20, 10), FaceGeometry("t", 40, 40, (10, 10), (30, 10)))
    >>> (np.round(m, 6) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
    [[2.0, 0.0, -10.0], [0.0, 2.0, -10.0]]
    """
    src = np.asarray(right_eye, float) - np.asarray(left_eye, float)
    dst = np.asarray(geometry.right_eye, float) - np.asarray(geometry.left_eye, float)
    norm = float(np.hypot(*src))
    if norm < 1e-6:
        raise ValueError("the two eye centres coincide; cannot align this face")
    # Complex division gives scale * rotation in one step: dst = z * src.
    z = complex(*dst) / complex(*src)
    a, b = z.real, z.imag
    rotation = np.array([[a, -b], [b, a]])
    shift = np.asarray(geometry.left_eye, float) - rotation @ np.asarray(left_eye, float)
    return np.hstack([rotation, shift[:, None]])


@dataclass
class AlignedFace:
    """An aligned crop and the matrix that made it (photo coordinates -> crop coordinates)."""

    image: np.ndarray
    matrix: np.ndarray
    geometry: FaceGeometry


def align_face(image: np.ndarray, landmarks68: np.ndarray,
               geometry: FaceGeometry = CELEBA) -> AlignedFace:
    """Crop a face to ``geometry`` with a similarity transform on its eye centres.

    Parts of the crop outside the photo are filled by reflecting the border, as in CelebA.

    Examples
    --------
    >>> photo = np.zeros((300, 300, 3), np.uint8)
    >>> points = np.zeros((68, 2)); points[36:42] = (120, 150); points[42:48] = (180, 150)
    >>> align_face(photo, points).image.shape
    (218, 178, 3)
    """
    import cv2

    left, right = eye_centres(landmarks68)
    matrix = eye_transform(left, right, geometry)
    crop = cv2.warpAffine(image, matrix, (geometry.width, geometry.height),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return AlignedFace(crop, matrix, geometry)


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2 x 3 affine matrix.

    Examples
    --------
    >>> m = np.array([[2.0, 0.0, 4.0], [0.0, 2.0, 6.0]])
    >>> (invert_transform(m) + 0.0).tolist()
    [[0.5, 0.0, -2.0], [0.0, 0.5, -3.0]]
    """
    import cv2

    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def paste_back(photo: np.ndarray, face: np.ndarray, matrix: np.ndarray, *,
               feather: float = 0.0, margin: int = 0, region: np.ndarray | None = None
               ) -> np.ndarray:
    """Put an aligned (possibly edited) face back into its photo.

    Parameters
    ----------
    photo : ndarray (H, W, 3)
        The original photo; it is not modified.
    face : ndarray (h, w, 3)
        The aligned face, same size as the crop ``matrix`` produced.
    matrix : ndarray (2, 3)
        The photo -> crop matrix from :func:`align_face`.
    feather : float
        Width in crop pixels of a smooth fade at the crop's edge (0: a hard edge).
    margin : int
        Crop pixels at each edge left out of the paste (the reflected border, say).
    region : ndarray (h, w) of bool, optional
        Paste only these crop pixels (a face ellipse, say); default: the whole crop. The
        feather fades in from the region's edge.

    Returns
    -------
    ndarray
        A new photo; pixels outside the pasted crop are the original's exactly.

    Examples
    --------
    >>> photo = np.full((50, 50, 3), 7, np.uint8)
    >>> m = np.array([[1.0, 0, -10], [0, 1.0, -10]])
    >>> out = paste_back(photo, np.full((20, 20, 3), 200, np.uint8), m)
    >>> int(out[15, 15, 0]), int(out[5, 5, 0])
    (200, 7)
    """
    import cv2

    height, width = photo.shape[:2]
    h, w = face.shape[:2]
    mask = np.zeros((h, w), np.float32)
    mask[margin:h - margin, margin:w - margin] = 1.0
    if region is not None:
        if region.shape != (h, w):
            raise ValueError(f"region must be {(h, w)}, got {region.shape}")
        mask *= region.astype(np.float32)
    if feather > 0:
        # Distance to the mask's edge, ramped to 1 over `feather` pixels: a smooth seam. The
        # one-pixel zero pad makes the crop's own border count as outside; without it a mask
        # with no margin has no zero pixel, and the fade vanishes.
        padded = np.pad((mask > 0).astype(np.uint8), 1)
        inside = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        mask = np.clip(inside / float(feather), 0.0, 1.0).astype(np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    # Replicate the face's edge, not black: photo pixels that the crop covers only in part get
    # a fractional alpha, and blending them with a face faded to black would draw a dark rim.
    warped = cv2.warpAffine(face, matrix, (width, height), flags=flags,
                            borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, matrix, (width, height), flags=flags,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    blended = photo.astype(np.float32) * (1.0 - alpha) + warped.astype(np.float32) * alpha
    out = np.clip(np.rint(blended), 0, 255).astype(photo.dtype)
    return out
