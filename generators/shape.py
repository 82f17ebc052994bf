"""Warping aligned faces onto a common shape (thin-plate splines on their landmarks).

Aligning on the eyes alone leaves every face with its own nose, mouth and jaw positions. An
average of such faces is a blend of ghosts, and when it is pasted back into one member's photo an
attacker who aligns it on that member's landmarks finds that member's share sharp and the others'
blurred: the average then leans towards the member (k-Same's 1/k bound breaks). Warping every
face of a group onto the group's mean shape before averaging (the shape normalisation of
k-Same-M, Gross et al. 2005) makes the members' shares coincide, so the average shows one face
with the group's mean geometry and no member's own.

The warp is a thin-plate spline through the landmarks, pinned at the crop's border so that the
background stays put. It is evaluated on a coarse grid and resized (the spline is smooth), then
applied with one ``cv2.remap`` per face.
"""

from __future__ import annotations

import numpy as np

from .base import check_faces

# Border points that map onto themselves: the spline bends the face, not the frame.
_BORDER_POINTS_PER_SIDE = 4

#: Faces whose sampling maps :func:`warp_to_shapes` holds at once (5 MB for CelebA's crop, which
#: the allocator reuses; 128 faces, 40 MB of fresh memory a block, were 5-15% slower).
WARP_BLOCK = 16
#: Faces per kernel block in :func:`thin_plate_maps`.
KERNEL_BLOCK = 16


def _kernel(squared: np.ndarray) -> np.ndarray:
    """The thin-plate kernel U(r) = r^2 log r, written in r^2 (0 at r = 0)."""
    # r^2 log r -> 0 as r -> 0; the tiny floor keeps log finite without a second pass.
    return 0.5 * squared * np.log(np.maximum(squared, np.finfo(squared.dtype).tiny))


def _border(width: int, height: int) -> np.ndarray:
    steps = np.linspace(0.0, 1.0, _BORDER_POINTS_PER_SIDE + 1)[:-1]
    x, y = width - 1.0, height - 1.0
    sides = [np.stack([steps * x, np.zeros_like(steps)], 1),
             np.stack([np.full_like(steps, x), steps * y], 1),
             np.stack([x - steps * x, np.full_like(steps, y)], 1),
             np.stack([np.zeros_like(steps), y - steps * y], 1)]
    return np.concatenate(sides)


def thin_plate_maps(landmarks: np.ndarray, shapes: np.ndarray, width: int, height: int, *,
                    step: int = 4, smoothing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sampling maps that move each face's ``landmarks`` onto ``shapes``.

    Parameters
    ----------
    landmarks : ndarray (n, p, 2)
        Where the points are in each face (x, y in crop pixels).
    shapes : ndarray (n, p, 2)
        Where they should be in the warped face.
    width, height : int
        Crop size.
    step : int
        Grid spacing, in pixels, at which the spline is evaluated before it is resized.
    smoothing : float
        Regulariser of the spline (crop pixels squared); it keeps the system solvable when two
        landmarks coincide.

    Returns
    -------
    map_x, map_y : ndarray (n, height, width) float32
        For ``cv2.remap``: output pixel (y, x) samples the face at (map_y, map_x).

    Examples
    --------
    >>> points = np.array([[[10.0, 10.0], [30.0, 12.0], [20.0, 30.0]]])
    >>> map_x, map_y = thin_plate_maps(points, points + [2.0, 0.0], 40, 40)
    >>> bool(abs(map_x[0, 12, 32] - 30) < 0.5 and abs(map_y[0, 12, 32] - 12) < 0.5)  # 32 <- 30
    True
    >>> bool(abs(map_x[0, 0, 0]) < 0.5)  # the border stays where it was
    True
    """
    import cv2

    landmarks = np.asarray(landmarks, np.float64)
    shapes = np.asarray(shapes, np.float64)
    if landmarks.shape != shapes.shape or landmarks.ndim != 3 or landmarks.shape[2] != 2:
        raise ValueError(f"landmarks and shapes must both be (n, points, 2), got "
                         f"{landmarks.shape} and {shapes.shape}")
    n = len(landmarks)
    border = _border(width, height)
    centres = np.concatenate([shapes, np.broadcast_to(border, (n,) + border.shape)], axis=1)
    values = np.concatenate([landmarks, np.broadcast_to(border, (n,) + border.shape)], axis=1)
    m = centres.shape[1]
    # Solve for each face's spline: [[K + s I, P], [P^T, 0]] [w; a] = [values; 0].
    squared = ((centres[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(axis=3)
    system = np.zeros((n, m + 3, m + 3))
    system[:, :m, :m] = _kernel(squared) + smoothing * np.eye(m)
    affine = np.concatenate([np.ones((n, m, 1)), centres], axis=2)
    system[:, :m, m:] = affine
    system[:, m:, :m] = affine.transpose(0, 2, 1)
    rhs = np.zeros((n, m + 3, 2))
    rhs[:, :m] = values
    coefficients = np.linalg.solve(system, rhs)

    # The coarse grid sits where cv2.resize samples it from, so resizing lines the maps up.
    grid_w, grid_h = max(2, -(-width // step)), max(2, -(-height // step))
    gx = (np.arange(grid_w) + 0.5) * width / grid_w - 0.5
    gy = (np.arange(grid_h) + 0.5) * height / grid_h - 0.5
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = np.empty((n, height, width), np.float32)
    map_y = np.empty((n, height, width), np.float32)
    # Faces per (faces x grid x centres) kernel block: 16 keep it near 13 MB of float32, which
    # the allocator reuses; blocks of 128 (100 MB) took fresh memory from the system on every
    # block and cost 4x the CPU (0.45 against 2.0 CPU-s for 256 CelebA faces). Every face's
    # products are its own, so the maps are the same.
    chunk = KERNEL_BLOCK
    grid32 = grid.astype(np.float32)
    for first in range(0, n, chunk):
        c = centres[first:first + chunk].astype(np.float32)
        # |g - c|^2 = |g|^2 - 2 g.c + |c|^2, as one batched product (no (faces, grid, centres,
        # 2) difference array).
        squared = ((grid32 ** 2).sum(1)[None, :, None] - 2.0 * grid32[None] @ c.transpose(0, 2, 1)
                   + (c ** 2).sum(2)[:, None, :])
        kernel = _kernel(np.maximum(squared, 0.0))
        w = coefficients[first:first + chunk].astype(np.float32)
        coarse = kernel @ w[:, :m] + w[:, m:m + 1] + grid32[None] @ w[:, m + 1:]
        # Resize the displacement, not the map: it is ~0 at the border, so the resize's edge
        # clamping costs nothing there, and the identity part stays exact.
        shift = (coarse - grid32[None]).reshape(len(c), grid_h, grid_w, 2)
        for i, field in enumerate(shift, start=first):  # one resize per face (OpenCV, in C)
            full = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
            map_x[i], map_y[i] = full[..., 0] + xs, full[..., 1] + ys
    return map_x, map_y


def warp_to_shapes(faces: np.ndarray, landmarks: np.ndarray, shapes: np.ndarray, *,
                   step: int = 4) -> np.ndarray:
    """Warp each face so that its landmarks land on the given shape.

    Parameters
    ----------
    faces : ndarray (n, height, width, 3) uint8
        Aligned faces.
    landmarks : ndarray (n, p, 2)
        Their landmarks in crop pixels (68 points, or any fixed set).
    shapes : ndarray (n, p, 2)
        The target positions of those landmarks, face by face.

    Returns
    -------
    ndarray (n, height, width, 3) uint8

    Examples
    --------
    >>> face = np.zeros((1, 40, 40, 3), np.uint8); face[0, 12, 30] = 255
    >>> points = np.array([[[10.0, 10.0], [30.0, 12.0], [20.0, 30.0]]])
    >>> out = warp_to_shapes(face, points, points + [2.0, 0.0])
    >>> [int(v) for v in np.unravel_index(out[0, ..., 0].argmax(), (40, 40))]  # moved right
    [12, 32]
    """
    import cv2

    faces = check_faces(faces)
    if len(faces) != len(landmarks):
        raise ValueError(f"{len(landmarks)} landmark sets for {len(faces)} faces")
    out = np.empty_like(faces)
    if not len(faces):
        return out
    height, width = faces.shape[1:3]
    # The maps are 8 bytes per pixel per face (1.9 GB for 6,000 CelebA crops, the largest part of
    # a photo run's peak memory): made for a block of faces at a time. Each face's spline is its
    # own, so the output is the same as with every map at once.
    for first in range(0, len(faces), WARP_BLOCK):
        last = min(first + WARP_BLOCK, len(faces))
        map_x, map_y = thin_plate_maps(landmarks[first:last], shapes[first:last], width,
                                       height, step=step)
        for i in range(first, last):  # one remap per face (OpenCV, in C)
            out[i] = cv2.remap(faces[i], map_x[i - first], map_y[i - first], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
    return out
