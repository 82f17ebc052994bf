"""The face region: the part of a photo a generator may replace, and pasting a face into it.

The region is a polygon drawn from the 68 landmarks: the jaw line (points 0-16) closed over the
forehead by the eyebrows (17-26) lifted towards the hairline by a fraction of the eye-to-chin
distance. Everything outside it (hair, ears, neck, clothes, background) belongs to the photo and
is never touched: a generator's pixels there would be someone else's hair or background (a
k-Same average of whole crops), which shows as a ghost. :func:`below_hairline` cuts the
forehead of a region at the face's own hairline (where its colour stops being the cheeks'), so
that an average of faces takes no one's fringe.

:func:`paste_face` puts a generated face back into its photo inside that region only. It matches
the face's colour and light to the original's region (mean and spread per channel in Lab: six
numbers, nothing of the original's identity), then blends it with a Laplacian pyramid under a
feathered mask that is 0 on the region's edge, so the seam is invisible and every pixel outside
the region is the photo's own, bit for bit. A face cut by the photo's border is clipped to the
photo; no pixel outside the photo is ever drawn, so no padding band can appear.
"""

from __future__ import annotations

import numpy as np

from .landmarks import eye_centres

# The region's size: the brows are lifted by FOREHEAD times the eye-to-chin distance, and the
# outline is scaled by 1 + GROW about the nose tip. The jaw line and brows alone (GROW 0,
# FOREHEAD 0.3: up to CelebA's mean hairline) leave the face's silhouette, hairline and the sides
# of the head, and with them SFace re-identified 81% and dlib 32% of the persons at k = 5
# against a gallery holding their own photos. Growing the region brings both down until GROW
# 0.4 (SFace 0.27, dlib 0.18; PSNR 21.2, SSIM 0.79); beyond it SFace stays at 0.24-0.27 and only
# the quality falls (benchmarks/face_region_curve.py, benchmarks/README.md "The face region").
# What is left above 1/k comes from the photo's own surroundings, which a gallery holding the
# very photo matches; k-Same therefore averages 2k persons in this region (its ``margin``).
FOREHEAD = 0.6
GROW = 0.4

# CelebA attributes that lie (mostly) outside the face region: a generator that replaces the
# region only cannot set them, and the photo keeps the face's own.
OUTSIDE_FACE_ATTRIBUTES = (
    "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Receding_Hairline",
    "Sideburns", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Necklace", "Wearing_Necktie")

# How far (Lab, 0-255 scale, lightness counted half) a forehead pixel's colour may be from the
# cheeks' and still count as skin in :func:`below_hairline`: dark, red, grey and most blond hair
# lie beyond it, a forehead in other light within it (checked by eye on 16 CelebA faces).
HAIRLINE_TOLERANCE = 20.0
# Where the forehead begins for :func:`below_hairline`: the brows lifted by this fraction of
# the eye-to-chin distance, clear of the brows themselves.
HAIRLINE_FROM = 0.1

# Eye-to-chin distance (photo pixels) below which a face carries no identity a recognizer can
# use: benchmarks/small_faces.py shrank 120 CelebA probes of 40 persons to a given size and
# matched them against full-size photos of the same persons, with the full-size landmarks
# scaled down. Top-1 at 4 px was 0.058 (SFace) and 0.025 (dlib), chance 0.025 (95% bound 0.05);
# at 6 px SFace found 0.217, at 8 px 0.45. Below 5 px the face region is blurred instead.
SMALL_FACE_PX = 5.0

# Mean 68 landmarks of CelebA's aligned crops (178 x 218, :data:`~.alignment.CELEBA`), measured
# with this package's detector and dlib on every 20th photo of the shared 200-identity set (300
# photos). The template of a face region when no landmarks of the face itself are at hand (the
# diffusers backend's inpainting mask).
CELEBA_MEAN_LANDMARKS = np.array([
    [48.0, 110.4], [48.4, 123.0], [49.5, 135.4], [51.7, 147.6], [55.8, 158.9], [62.5, 168.2],
    [70.7, 175.8], [79.4, 182.5], [89.0, 184.2], [98.8, 182.5], [107.9, 176.1], [116.5, 168.6],
    [123.5, 159.2], [127.7, 147.9], [129.8, 135.4], [130.9, 122.7], [131.5, 109.8],
    [54.7, 102.9], [60.4, 98.7], [67.3, 98.3], [74.4, 100.0], [81.2, 103.4], [95.6, 103.2],
    [102.7, 99.7], [110.0, 98.1], [117.3, 98.6], [123.4, 102.8], [88.4, 111.7], [88.4, 119.5],
    [88.3, 127.3], [88.2, 135.2], [80.4, 140.2], [84.3, 141.9], [88.4, 143.4], [92.7, 141.9],
    [96.6, 140.3], [63.1, 112.0], [67.7, 109.4], [72.9, 109.5], [77.6, 113.6], [72.5, 114.4],
    [67.4, 114.3], [100.1, 113.6], [104.7, 109.5], [110.0, 109.4], [114.8, 112.1],
    [110.4, 114.3], [105.1, 114.4], [71.7, 152.7], [78.1, 150.5], [84.2, 149.4], [88.6, 150.7],
    [93.0, 149.5], [99.3, 150.6], [106.3, 152.7], [99.7, 160.0], [93.4, 162.9], [88.7, 163.4],
    [83.9, 162.8], [77.9, 159.8], [74.2, 153.3], [84.1, 153.5], [88.7, 154.0], [93.1, 153.5],
    [103.7, 153.3], [93.2, 156.5], [88.6, 157.1], [84.0, 156.5]])


def template_landmarks(width: int, height: int) -> np.ndarray:
    """:data:`CELEBA_MEAN_LANDMARKS` in CelebA's crop (178 x 218) or one of its squares.

    Squares are CelebA's central 178 x 178 (rows 20-198) resized, as in
    :func:`~.alignment.square`.

    Examples
    --------
    >>> template_landmarks(178, 218)[8].round(1).tolist()  # the chin
    [89.0, 184.2]
    >>> template_landmarks(128, 128)[8].round(1).tolist()
    [64.0, 118.1]
    """
    points = CELEBA_MEAN_LANDMARKS.copy()
    if (width, height) == (178, 218):
        return points
    if width != height:
        raise ValueError(f"no template for a {width} x {height} crop (CelebA's 178 x 218 or a "
                         "square)")
    points[:, 1] -= 20.0
    return points * (width / 178.0)


def _check_landmarks(landmarks68: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks68, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected 68 finite landmarks of shape (68, 2), got {points.shape}")
    return points


def face_polygon(landmarks68: np.ndarray, *, forehead: float | None = None,
                 grow: float | None = None) -> np.ndarray:
    """The face region's outline: the jaw line, then the lifted brows from right to left.

    Parameters
    ----------
    landmarks68 : ndarray (68, 2)
        dlib's 68 points (x, y).
    forehead : float, optional
        How far the brows are lifted, as a fraction of the eye-to-chin distance, along the
        face's own up direction (so a tilted face gets a tilted forehead); default
        :data:`FOREHEAD`.
    grow : float, optional
        The outline is scaled by ``1 + grow`` about the nose tip (point 30), so that the region
        also takes the face's silhouette, the sides of the head and the hairline, which a
        recognizer reads as well as the face; default :data:`GROW`.

    Returns
    -------
    ndarray (27, 2)

    Examples
    --------
    >>> outline = face_polygon(CELEBA_MEAN_LANDMARKS, forehead=0.3, grow=0.0)
    >>> outline.shape, round(float(outline[:, 1].min()))  # the forehead's top, near the hairline
    ((27, 2), 77)
    """
    points = _check_landmarks(landmarks68)
    # Read at call time, so that one setting (a benchmark's) reaches every caller.
    forehead = FOREHEAD if forehead is None else forehead
    grow = GROW if grow is None else grow
    left, right = eye_centres(points)
    eyes = (left + right) / 2.0
    up = eyes - points[8]  # chin -> eyes
    lift = float(forehead) * up
    brows = points[26:16:-1] + lift
    outline = np.concatenate([points[0:17], brows])
    centre = points[30]  # the nose tip
    return centre + (outline - centre) * (1.0 + float(grow))


def face_mask(landmarks68: np.ndarray, shape: tuple[int, int], *, forehead: float | None = None,
              grow: float | None = None, feather: float = 0.0) -> np.ndarray:
    """The face region as a float32 mask of an image of ``shape`` (height, width).

    Works in any geometry: landmarks in photo pixels give the photo's mask, landmarks in an
    aligned crop's pixels give the crop's. Parts of the region outside the image are clipped.

    Parameters
    ----------
    landmarks68 : ndarray (68, 2)
        The face's landmarks in the image's pixels.
    shape : (int, int)
        Height and width of the image.
    forehead, grow : float
        See :func:`face_polygon`.
    feather : float
        Width in pixels of a ramp *inside* the region from 0 on its edge to 1; 0 gives a hard
        0 / 1 mask. Outside the region the mask is 0 either way.

    Returns
    -------
    ndarray (height, width) float32, in [0, 1]

    Examples
    --------
    >>> mask = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178))
    >>> float(mask[140, 89]), float(mask[140, 5]), float(mask[5, 89])  # cheek, side, top
    (1.0, 0.0, 0.0)
    >>> soft = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178), feather=8)
    >>> bool(0 < soft[140, 38] < 1), bool((soft <= mask).all())
    (True, True)
    """
    import cv2

    height, width = int(shape[0]), int(shape[1])
    outline = face_polygon(landmarks68, forehead=forehead, grow=grow)
    binary = np.zeros((height, width), np.uint8)
    # Sub-pixel vertices (4 fractional bits) so that the outline does not jitter by a pixel.
    cv2.fillPoly(binary, [np.rint(outline * 16).astype(np.int32)], 1, lineType=cv2.LINE_8,
                 shift=4)
    return _feathered(binary, feather)


def _feathered(binary: np.ndarray, feather: float) -> np.ndarray:
    """A 0 / 1 uint8 mask ramped from 0 on its edge to 1 ``feather`` pixels inside."""
    import cv2

    if not feather > 0:
        return binary.astype(np.float32)
    # Padded with its own border values: where the region is cut by the image's border, that
    # border is no edge, so a face cut by the photo's border stays opaque up to it.
    padded = np.pad(binary, 1, mode="edge")
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip(inside / float(feather), 0.0, 1.0).astype(np.float32)


def crop_face_mask(landmarks68: np.ndarray, matrix: np.ndarray, shape: tuple[int, int], *,
                   forehead: float | None = None, grow: float | None = None, feather: float = 0.0
                   ) -> np.ndarray:
    """The face region in an aligned crop, from the face's landmarks in its photo.

    Parameters
    ----------
    landmarks68 : ndarray (68, 2)
        Landmarks in photo pixels.
    matrix : ndarray (2, 3)
        The photo -> crop matrix (:func:`~.alignment.align_face`).
    shape : (int, int)
        The crop's height and width.

    Examples
    --------
    >>> m = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # a photo at twice the crop's size
    >>> mask = crop_face_mask(CELEBA_MEAN_LANDMARKS * 2, m, (218, 178))
    >>> bool((mask == face_mask(CELEBA_MEAN_LANDMARKS, (218, 178))).all())
    True
    """
    points = _check_landmarks(landmarks68)
    matrix = np.asarray(matrix, np.float64)
    return face_mask(points @ matrix[:, :2].T + matrix[:, 2], shape, forehead=forehead,
                     grow=grow, feather=feather)


def below_hairline(image: np.ndarray, landmarks68: np.ndarray, mask: np.ndarray, *,
                   tolerance: float = HAIRLINE_TOLERANCE) -> np.ndarray:
    """``mask`` without what lies above the face's hairline: the forehead up to its first hair.

    The region's forehead is drawn from the brows, so on a face with bangs or a low hairline it
    takes hair. Above the brows (lifted by a tenth of the eye-to-chin distance, clear of the
    brows themselves) a pixel counts as skin when its Lab colour is within ``tolerance`` of the
    median of the cheeks and nose (lightness counted half: the forehead is often lit
    differently); each column of the forehead is kept from the brows up to its first pixel that
    is not skin. Columns cut short by a wrinkle or a highlight are evened out with their
    neighbours, so the line follows the hair, not single pixels; then the line itself is smoothed
    across the columns (a Gaussian of 6% of the eye-to-chin distance), so that a stepped fringe
    gives a smooth curve, not blocks where an average meets it.

    Parameters
    ----------
    image : ndarray (h, w, 3) uint8
        RGB image, in the geometry of the landmarks (a photo or an aligned crop).
    landmarks68 : ndarray (68, 2)
    mask : ndarray (h, w) bool
        The region to cut, e.g. ``face_mask(landmarks68, shape, grow=0.0) > 0``.

    Returns
    -------
    ndarray (h, w) bool

    Examples
    --------
    >>> face = np.full((218, 178, 3), 170, np.uint8)
    >>> face[:88] = 30  # dark hair down to row 88, the region reaching up to row 55
    >>> mask = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178), grow=0.0) > 0
    >>> cut = below_hairline(face, CELEBA_MEAN_LANDMARKS, mask)
    >>> int(np.flatnonzero(mask.any(1))[0]), int(np.flatnonzero(cut.any(1))[0])
    (55, 88)
    """
    import cv2

    points = _check_landmarks(landmarks68)
    mask = np.asarray(mask, bool)
    shape = mask.shape
    brows = face_mask(points, shape, forehead=HAIRLINE_FROM, grow=0.0) > 0
    forehead = mask & ~brows
    if not forehead.any():
        return mask.copy()
    lab = cv2.cvtColor(np.ascontiguousarray(image, np.uint8), cv2.COLOR_RGB2LAB)
    lab = lab.astype(np.float32)
    cheeks = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(cheeks, np.rint(points[[2, 29, 14, 12, 54, 33, 48, 4]]).astype(np.int32),
                       1)
    if not cheeks.any():
        return mask.copy()
    difference = lab - np.median(lab[cheeks > 0], axis=0)
    difference[..., 0] *= 0.5
    skin = np.linalg.norm(difference, axis=2) < float(tolerance)
    skin = cv2.medianBlur(skin.astype(np.uint8), 5) > 0  # single pixels: pores, moles, noise
    keep = (skin | ~forehead).astype(np.uint8)
    keep = np.logical_and.accumulate(keep[::-1] > 0, axis=0)[::-1]
    # A column cut short among long ones (a wrinkle) and a long one among short ones (a parting
    # in the hair) follow their neighbours; then each column again stops at its first gap.
    width = max(3, int(round(0.12 * eye_to_chin(points)))) | 1
    row = np.ones((1, width), np.uint8)
    keep = cv2.morphologyEx(keep.astype(np.uint8), cv2.MORPH_CLOSE, row)
    keep = cv2.morphologyEx(keep, cv2.MORPH_OPEN, row) > 0
    keep |= ~forehead
    keep = np.logical_and.accumulate(keep[::-1], axis=0)[::-1]
    return mask & _smooth_line(keep, forehead, width / 2.0)


def _smooth_line(keep: np.ndarray, forehead: np.ndarray, sigma: float) -> np.ndarray:
    """``keep`` (each column kept from the bottom up to a row) with that line smoothed across
    the forehead's columns: a Gaussian of the rows, so that the steps the column-wise cut leaves
    (as wide as its kernel) do not show as blocks where an average meets a fringe."""
    from scipy.ndimage import gaussian_filter1d

    columns = np.flatnonzero(forehead.any(axis=0))
    if len(columns) < 2:
        return keep
    span = slice(columns[0], columns[-1] + 1)
    # The first kept row of each column, no higher than the forehead's own top there (columns
    # the forehead misses take their neighbours' line).
    first = np.argmax(keep[:, span], axis=0).astype(np.float64)
    inside = forehead[:, span]
    present = inside.any(axis=0)
    top = np.where(present, np.argmax(inside, axis=0), -1)
    bottom = np.where(present, inside.shape[0] - 1 - np.argmax(inside[::-1], axis=0), -1)
    first = np.maximum(first, top)
    # Columns with no skin left, at either end of the forehead (hair over a temple, where the
    # brows' outline tapers upwards), keep their cut: their line is the brows', high up, and
    # would lift the next columns' line over their hair.
    bare = (first > bottom) | ~present
    ends = np.logical_and.accumulate(bare) | np.logical_and.accumulate(bare[::-1])[::-1]
    used = present & ~ends
    if used.sum() < 2:
        return keep
    line = np.interp(np.arange(len(first)), np.flatnonzero(used), first[used])
    line = np.where(ends, first, np.ceil(gaussian_filter1d(line, sigma, mode="nearest") - 0.5))
    out = keep.copy()
    rows = np.arange(keep.shape[0])[:, None]
    out[:, span] = (rows >= line[None, :]) | ~inside
    return np.logical_and.accumulate(out[::-1], axis=0)[::-1]


def match_colour(face: np.ndarray, reference: np.ndarray, mask: np.ndarray, *,
                 spread: bool = True) -> np.ndarray:
    """``face`` with the mean and spread of ``reference`` in Lab, measured where ``mask`` > 0.

    Six numbers of the reference go into the face (the mean and standard deviation of L, a and
    b over the region): its skin tone and light, not its shape. The spread ratio is bounded to
    [0.5, 2] so that a flat region (a mask, a blur) cannot blow up noise.

    Parameters
    ----------
    spread : bool
        Also match the spread; False moves the mean only (three numbers). Scaling a soft
        average's spread up to a real face's exaggerates what structure it has left (dark
        eye "make-up", cheek spots), so k-Same matches its averages' means only.

    Examples
    --------
    >>> face = np.full((4, 4, 3), 100, np.uint8)
    >>> reference = np.full((4, 4, 3), (180, 120, 90), np.uint8)
    >>> match_colour(face, reference, np.ones((4, 4)))[0, 0].tolist()
    [180, 120, 90]
    >>> face[:2] = 60  # two tones: their contrast is halved (the bound) or kept
    >>> [int(np.ptp(match_colour(face, reference, np.ones((4, 4)), spread=s)[..., 1]))
    ...  for s in (True, False)]
    [21, 43]
    """
    import cv2

    inside = np.asarray(mask) > 0
    if not inside.any():
        return face.copy()
    lab_face = cv2.cvtColor(face.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab_ref = cv2.cvtColor(reference.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    mean_face, std_face = lab_face[inside].mean(0), lab_face[inside].std(0)
    mean_ref, std_ref = lab_ref[inside].mean(0), lab_ref[inside].std(0)
    ratio = np.clip(std_ref / np.maximum(std_face, 1e-3), 0.5, 2.0)
    ratio = np.where((std_face > 1e-3) & spread, ratio, 1.0)
    moved = (lab_face - mean_face) * ratio + mean_ref
    rgb = cv2.cvtColor(moved.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def match_shading(face: np.ndarray, reference: np.ndarray, mask: np.ndarray,
                  sigma: float) -> np.ndarray:
    """``face`` with the low frequencies of ``reference`` inside ``mask``: its light, not its shape.

    Both images are low-passed by a Gaussian of ``sigma`` pixels restricted to the mask
    (normalised convolution, so the region's edge does not pull in what lies outside it), and
    the difference of the two is added to ``face``. At a sigma of a fifth of the region's size
    or more this carries the photo's lighting (a side lit brighter, a shadow under the chin)
    and none of the features a recognizer reads (eyes, nose and mouth are a few pixels wide).
    The correction also reaches a band of about ``sigma`` pixels around the mask, where it
    fades out, so that a face blended past its mask has no step.

    Examples
    --------
    >>> face = np.full((40, 40, 3), 120, np.uint8)
    >>> reference = np.tile(np.linspace(80, 160, 40, dtype=np.float32)[None, :, None],
    ...                     (40, 1, 3)).astype(np.uint8)  # lit from the right
    >>> mask = np.zeros((40, 40), bool); mask[5:35, 5:35] = True
    >>> shaded = match_shading(face, reference, mask, sigma=4.0)
    >>> int(shaded[20, 8, 0]) < 120 < int(shaded[20, 31, 0])  # darker left, lighter right
    True
    >>> bool((match_shading(face, face, mask, sigma=4.0) == face).all())  # same light: unchanged
    True
    """
    import cv2

    if face.shape != reference.shape or face.shape[:2] != np.shape(mask):
        raise ValueError(f"face {face.shape}, reference {reference.shape} and mask "
                         f"{np.shape(mask)} must have one size")
    inside = (np.asarray(mask) > 0).astype(np.float32)
    if sigma <= 0 or not inside.any():
        return face.copy()
    weight = cv2.GaussianBlur(inside, (0, 0), sigma)

    def low(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image.astype(np.float32) * inside[..., None], (0, 0), sigma)

    reach = weight > 1e-3
    difference = np.zeros(face.shape, np.float32)
    difference[reach] = (low(reference)[reach] - low(face)[reach]) / weight[reach][:, None]
    # Outside the mask the difference fades with the mask's own blur (which is 0.5 at its edge).
    fade = np.clip(2.0 * weight, 0.0, 1.0)[..., None]
    return np.clip(np.rint(face + fade * difference), 0, 255).astype(np.uint8)


def eye_to_chin(landmarks68: np.ndarray) -> float:
    """Distance from the eyes' midpoint to the chin (point 8): the face's size in pixels.

    Examples
    --------
    >>> round(eye_to_chin(CELEBA_MEAN_LANDMARKS), 1)
    72.0
    """
    points = _check_landmarks(landmarks68)
    return float(np.hypot(*(np.mean(eye_centres(points), axis=0) - points[8])))


def blur_region(photo: np.ndarray, landmarks68: np.ndarray, *, forehead: float | None = None,
                grow: float | None = None) -> np.ndarray:
    """The photo with the face region blurred (a Gaussian of half the eye-to-chin distance).

    What a face too small to carry identity (:data:`SMALL_FACE_PX`) gets instead of a new face:
    at a few pixels a generated face is a visible tile and protects nothing more.

    Examples
    --------
    >>> photo = np.zeros((40, 40, 3), np.uint8); photo[::2] = 255
    >>> points = CELEBA_MEAN_LANDMARKS / 18 + [15, 12]  # 4 px from the eyes to the chin
    >>> out = blur_region(photo, points)
    >>> int(out[21, 20, 0]) not in (0, 255), bool((out[:5] == photo[:5]).all())
    (True, True)
    """
    import cv2

    points = _check_landmarks(landmarks68)
    sigma = max(0.5 * eye_to_chin(points), 1.0)
    height, width = photo.shape[:2]
    pad = int(np.ceil(3 * sigma)) + 2
    outline = face_polygon(points, forehead=forehead, grow=grow)
    x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(outline.max(0)).astype(int) + pad, [width, height])
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    part = photo[y0:y1, x0:x1]
    blurred = cv2.GaussianBlur(part, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    region = face_mask(points - [x0, y0], part.shape[:2], forehead=forehead, grow=grow) > 0
    out[y0:y1, x0:x1] = np.where(region[..., None], blurred, part)
    return out


def _pyramid_blend(difference: np.ndarray, weight: np.ndarray, levels: int) -> np.ndarray:
    """Multi-band blend of ``difference`` (new - old, float32) under ``weight``: each band of
    the difference is weighted by the mask blurred to that band's scale (Burt and Adelson)."""
    import cv2

    gaussians, weights = [difference], [weight]
    for _ in range(levels):
        if min(gaussians[-1].shape[:2]) < 4:
            break
        gaussians.append(cv2.pyrDown(gaussians[-1]))
        weights.append(cv2.pyrDown(weights[-1]))
    out = gaussians[-1] * weights[-1][..., None]
    for level in range(len(gaussians) - 2, -1, -1):
        size = gaussians[level].shape[1::-1]
        band = gaussians[level] - cv2.pyrUp(gaussians[level + 1], dstsize=size)
        out = cv2.pyrUp(out, dstsize=size) + band * weights[level][..., None]
    return out


def paste_face(photo: np.ndarray, face: np.ndarray, matrix: np.ndarray, landmarks68: np.ndarray,
               *, forehead: float | None = None, grow: float | None = None, feather: float = 10.0,
               colour: bool = True, blend: str = "pyramid") -> np.ndarray:
    """Put an aligned face back into its photo, inside the face region only.

    Parameters
    ----------
    photo : ndarray (H, W, 3) uint8
        The original photo; it is not modified.
    face : ndarray (h, w, 3) uint8
        The aligned face (the crop ``matrix`` made, edited).
    matrix : ndarray (2, 3)
        The photo -> crop matrix.
    landmarks68 : ndarray (68, 2)
        The original face's landmarks in photo pixels: the region is drawn from them.
    forehead, grow : float
        See :func:`face_polygon`.
    feather : float
        Width of the blend inside the region's edge, in aligned-crop pixels (like
        :func:`~.alignment.paste_back`'s; in the photo it scales with the face).
    colour : bool
        Match the face's colour and light to the original region first (:func:`match_colour`);
        off for the baselines, whose colours are the point (a solid mask).
    blend : {"pyramid", "alpha"}
        Laplacian-pyramid blend (low frequencies fade over a wide band, detail over a narrow
        one) or a plain feathered alpha blend.

    Returns
    -------
    ndarray (H, W, 3) uint8
        A new photo; every pixel outside the face region is the original's, bit for bit.

    Examples
    --------
    >>> photo = np.full((218, 178, 3), 40, np.uint8)
    >>> identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> face = np.full((218, 178, 3), 200, np.uint8)
    >>> out = paste_face(photo, face, identity, CELEBA_MEAN_LANDMARKS, colour=False,
    ...                  blend="alpha")
    >>> int(out[150, 89, 0]), int(out[20, 20, 0])  # inside the region, outside it
    (200, 40)
    """
    import cv2

    if blend not in ("pyramid", "alpha"):
        raise ValueError(f"blend must be 'pyramid' or 'alpha', got {blend!r}")
    points = _check_landmarks(landmarks68)
    height, width = photo.shape[:2]
    outline = face_polygon(points, forehead=forehead, grow=grow)
    x0, y0 = np.floor(outline.min(0)).astype(int) - 2
    x1, y1 = np.ceil(outline.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the photo
        return out
    roi_h, roi_w = y1 - y0, x1 - x0
    original = photo[y0:y1, x0:x1]
    # Work in the region's bounding box only: a face is a small part of a large photo.
    local = np.asarray(matrix, np.float64).copy()
    local[:, 2] += local[:, :2] @ np.array([x0, y0], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(face, local, (roi_w, roi_h), flags=flags,
                            borderMode=cv2.BORDER_REPLICATE)
    # Photo pixels the crop does not cover (a face larger than the crop) keep the original.
    h, w = face.shape[:2]
    covered = cv2.warpAffine(np.ones((h, w), np.uint8), local, (roi_w, roi_h), flags=flags
                             | cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    region = face_mask(points - [x0, y0], (roi_h, roi_w), forehead=forehead, grow=grow)
    binary = ((region > 0) & (covered > 0)).astype(np.uint8)
    if not binary.any():
        return out
    distance = eye_to_chin(points)
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))
    weight = _feathered(binary, max(feather / max(scale, 1e-6), 1.0))
    if colour:
        # Measured on the inner part: the rim's pixels straddle hair and background.
        warped = match_colour(warped, original, weight >= 0.5)
    difference = np.where(binary[..., None] > 0, warped.astype(np.float32)
                          - original.astype(np.float32), 0.0).astype(np.float32)
    if blend == "pyramid":
        levels = int(np.clip(np.log2(max(distance, 1.0) / 4.0), 1, 5))
        change = _pyramid_blend(difference, weight, levels) * np.minimum(weight * 2.0, 1.0)[
            ..., None]
    else:
        change = difference * weight[..., None]
    blended = np.clip(np.rint(original.astype(np.float32) + change), 0, 255).astype(photo.dtype)
    # Bit for bit outside the region, whatever the pyramid spread there.
    out[y0:y1, x0:x1] = np.where(binary[..., None] > 0, blended, original)
    return out
