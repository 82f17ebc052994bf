"""Face geometry: the eye transform, the templates, aligning a face and pasting it back."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privface.attributes.alignment import (CELEBA, CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE,
                                           FaceGeometry, align_face, eye_transform,
                                           invert_transform, paste_back, square)
from privface.attributes.landmarks import eye_centres

GEOMETRIES = [CELEBA, square(128), square(256), square(16)]


def apply(matrix: np.ndarray, points) -> np.ndarray:
    """Points ``(n, 2)`` through a 2 x 3 affine matrix."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    return points @ matrix[:, :2].T + matrix[:, 2]


def homogeneous(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def landmarks_with_eyes(left, right) -> np.ndarray:
    """68 points whose eye centres are ``left`` and ``right`` (the rest do not matter here)."""
    points = np.zeros((68, 2))
    points[36:42] = left
    points[42:48] = right
    return points


def crop_coordinates(matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """Where every photo pixel lands in the crop: ``(height, width, 2)`` of (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs, ys], axis=-1).astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]


def smooth_texture(shape, sigma: float, seed: int) -> np.ndarray:
    """Random texture, blurred so that resampling it twice costs little."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 90, shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), sigma), 0, 255).astype(np.uint8)


# --- templates --------------------------------------------------------------------------------


def test_celeba_geometry():
    assert (CELEBA.width, CELEBA.height) == (178, 218)
    assert CELEBA.left_eye == CELEBA_LEFT_EYE and CELEBA.right_eye == CELEBA_RIGHT_EYE
    # Eyes level and the face centred: the image-left eye on the left, mirror-symmetric about
    # the middle column within a pixel.
    assert CELEBA.left_eye[1] == CELEBA.right_eye[1]
    assert CELEBA.left_eye[0] < CELEBA.right_eye[0]
    assert abs((CELEBA.left_eye[0] + CELEBA.right_eye[0]) / 2 - 178 / 2) < 1.0


@pytest.mark.parametrize("size", [16, 128, 178, 256, 1024])
def test_square_geometry_is_celeba_central_square_resized(size):
    geometry = square(size)
    assert (geometry.width, geometry.height) == (size, size)
    assert geometry.name == f"square{size}"
    factor = size / 178
    for mine, celeba in [(geometry.left_eye, CELEBA_LEFT_EYE),
                         (geometry.right_eye, CELEBA_RIGHT_EYE)]:
        assert mine == pytest.approx((celeba[0] * factor, (celeba[1] - 20) * factor))
    # The eye distance scales with the size; the eyes sit in the same relative place.
    assert geometry.right_eye[0] - geometry.left_eye[0] == pytest.approx(
        (CELEBA_RIGHT_EYE[0] - CELEBA_LEFT_EYE[0]) * factor)


def test_square_of_178_is_the_central_crop_of_celeba():
    # Aligning to square(178) equals aligning to CELEBA and cutting rows 20-198.
    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, (400, 360, 3), dtype=np.uint8)
    points = landmarks_with_eyes((150.3, 190.8), (221.7, 180.2))
    full = align_face(photo, points, CELEBA).image
    squared = align_face(photo, points, square(178)).image
    assert squared.shape == (178, 178, 3)
    assert np.abs(squared.astype(int) - full[20:198].astype(int)).max() <= 1


def test_square_refuses_tiny_sizes():
    with pytest.raises(ValueError):
        square(15)


# --- the eye transform ------------------------------------------------------------------------

coordinates = st.floats(-500, 3000, allow_nan=False)


@given(x=coordinates, y=coordinates, distance=st.floats(2.0, 800.0),
       angle=st.floats(-math.pi, math.pi), geometry=st.sampled_from(GEOMETRIES))
def test_eye_transform_maps_eyes_onto_the_template(x, y, distance, angle, geometry):
    left = np.array([x, y])
    right = left + distance * np.array([math.cos(angle), math.sin(angle)])
    matrix = eye_transform(left, right, geometry)
    mapped = apply(matrix, [left, right])
    assert np.allclose(mapped, [geometry.left_eye, geometry.right_eye], atol=1e-6)
    # A similarity: rotation times one scale, no shear or reflection.
    (a, b), (c, d) = matrix[:, :2]
    assert a == pytest.approx(d, abs=1e-12) and b == pytest.approx(-c, abs=1e-12)
    template = math.dist(geometry.left_eye, geometry.right_eye)
    assert math.hypot(a, c) == pytest.approx(template / distance, rel=1e-9)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_eye_transform_needs_two_distinct_eyes():
    with pytest.raises(ValueError, match="coincide"):
        eye_transform((10.0, 10.0), (10.0, 10.0))


def test_align_face_at_the_template_is_the_identity():
    # A CelebA-sized photo whose eyes are already on the template comes back pixel for pixel:
    # no half-pixel shift in the conventions.
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    aligned = align_face(photo, landmarks_with_eyes(CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE))
    assert np.allclose(aligned.matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    assert (aligned.image == photo).all()
    assert aligned.geometry is CELEBA


def test_align_face_puts_eye_features_on_the_template():
    # Two bright dots at the photo's eye centres end up at the template's eye positions.
    photo = np.zeros((500, 600, 3), np.uint8)
    left, right = np.array([230.0, 260.0]), np.array([330.0, 230.0])
    for eye in (left, right):
        ys, xs = np.mgrid[0:500, 0:600]
        photo[(xs - eye[0]) ** 2 + (ys - eye[1]) ** 2 <= 16] = 255
    crop = align_face(photo, landmarks_with_eyes(left, right), CELEBA).image[..., 0].astype(float)
    for template in (CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE):
        x0, y0 = int(template[0]), int(template[1])
        window = crop[y0 - 10:y0 + 11, x0 - 10:x0 + 11]
        ys, xs = np.mgrid[y0 - 10:y0 + 11, x0 - 10:x0 + 11]
        centre = ((xs * window).sum() / window.sum(), (ys * window).sum() / window.sum())
        assert np.allclose(centre, template, atol=0.3), (centre, template)


def test_align_face_checks_landmark_shape():
    with pytest.raises(ValueError, match="68"):
        align_face(np.zeros((10, 10, 3), np.uint8), np.zeros((5, 2)))


# --- inverse ----------------------------------------------------------------------------------


@given(angle=st.floats(-math.pi, math.pi), scale=st.floats(0.05, 20.0),
       tx=st.floats(-2000, 2000), ty=st.floats(-2000, 2000), shear=st.floats(-0.5, 0.5))
def test_invert_transform_composes_to_identity(angle, scale, tx, ty, shear):
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)],
                                 [math.sin(angle), math.cos(angle)]])
    linear = rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    matrix = np.hstack([linear, [[tx], [ty]]])
    inverse = invert_transform(matrix)
    assert inverse.shape == (2, 3)
    for product in (homogeneous(matrix) @ homogeneous(inverse),
                    homogeneous(inverse) @ homogeneous(matrix)):
        assert np.allclose(product, np.eye(3), atol=1e-9 * max(1.0, abs(tx) + abs(ty)))


# --- pasting back -----------------------------------------------------------------------------


def _round_trip(photo: np.ndarray, left, right, geometry=CELEBA):
    aligned = align_face(photo, landmarks_with_eyes(left, right), geometry)
    h, w = photo.shape[:2]
    where = crop_coordinates(aligned.matrix, h, w)
    # Inside: every bilinear tap lands in the crop; outside: none does.
    inside = ((where[..., 0] >= 1) & (where[..., 0] <= geometry.width - 2)
              & (where[..., 1] >= 1) & (where[..., 1] <= geometry.height - 2))
    outside = ((where[..., 0] <= -1) | (where[..., 0] >= geometry.width)
               | (where[..., 1] <= -1) | (where[..., 1] >= geometry.height))
    return aligned, inside, outside


def test_paste_back_round_trip_on_texture():
    # The crop is 1 / 0.6 times the photo's scale: upsampled, then downsampled by the paste.
    photo = smooth_texture((420, 500, 3), sigma=3.0, seed=11)
    left, right = (200.0, 210.0), (222.4 + 0.3, 201.0)  # ~24 px apart, slightly rotated
    aligned, inside, outside = _round_trip(photo, left, right)
    out = paste_back(photo, aligned.image, aligned.matrix)
    error = np.abs(out.astype(int) - photo.astype(int))
    assert inside.sum() > 10_000
    assert error[inside].mean() < 1.0 and np.percentile(error[inside], 99) <= 4
    assert (out[outside] == photo[outside]).all()


@pytest.mark.realdata
def test_paste_back_round_trip_on_a_real_face(celeba_dir, face_tools):
    import cv2

    from privface.attributes.images import load_image

    detector, predictor = face_tools
    face = load_image(celeba_dir / "img_align_celeba_200ids" / "000058.jpg")
    small = cv2.resize(face, (107, 131), interpolation=cv2.INTER_AREA)  # 0.6 x
    photo = smooth_texture((360, 420, 3), sigma=2.0, seed=12)
    photo[110:241, 150:257] = small
    detections = detector.detect(photo)
    assert len(detections) == 1
    points = predictor.predict(photo, detections[0])
    aligned = align_face(photo, points, CELEBA)
    h, w = photo.shape[:2]
    where = crop_coordinates(aligned.matrix, h, w)
    inside = ((where[..., 0] >= 1) & (where[..., 0] <= 176)
              & (where[..., 1] >= 1) & (where[..., 1] <= 216))
    outside = ((where[..., 0] <= -1) | (where[..., 0] >= 178)
               | (where[..., 1] <= -1) | (where[..., 1] >= 218))
    # The face region: the small face itself, all inside the pasted crop.
    face_region = np.zeros((h, w), bool)
    face_region[110:241, 150:257] = True
    assert inside[face_region].all()

    out = paste_back(photo, aligned.image, aligned.matrix)
    error = np.abs(out.astype(int) - photo.astype(int))
    # Bilinear there and back blurs a little (about 1.7 grey levels on average); a paste off by
    # half a photo pixel would cost about 5: the tolerance tells the two apart.
    shifted = aligned.matrix.copy()
    shifted[0, 2] += 0.5 * math.hypot(shifted[0, 0], shifted[1, 0])
    misplaced = np.abs(paste_back(photo, aligned.image, shifted).astype(int) - photo.astype(int))
    assert error[face_region].mean() < 0.5 * misplaced[face_region].mean()
    assert error[face_region].mean() < 2.5, error[face_region].mean()
    assert np.percentile(error[face_region], 99) <= 20
    assert error[inside].mean() < 2.5

    # An edited face changes the pasted region and nothing outside it, to the bit.
    edited = paste_back(photo, 255 - aligned.image, aligned.matrix)
    assert (edited[outside] == photo[outside]).all()
    assert np.abs(edited[face_region].astype(int) - photo[face_region].astype(int)).mean() > 50


def test_paste_back_does_not_modify_the_photo():
    photo = smooth_texture((100, 120, 3), 2.0, 1)
    before = photo.copy()
    out = paste_back(photo, np.zeros((40, 30, 3), np.uint8), eye_transform(
        (40, 50), (60, 50), FaceGeometry("t", 30, 40, (10, 15), (20, 15))), feather=4)
    assert (photo == before).all() and out is not photo and out.dtype == photo.dtype


def test_paste_back_edge_has_no_dark_rim():
    # Pasting a face of the photo's own colour changes nothing, even along a seam that cuts
    # pixels in parts (rotation and a fractional shift): no dark or light rim at the edge.
    photo = np.full((200, 220, 3), 180, np.uint8)
    face = np.full((80, 70, 3), 180, np.uint8)
    geometry = FaceGeometry("t", 70, 80, (25.0, 30.0), (45.0, 30.0))
    matrix = eye_transform((100.3, 90.7), (131.1, 95.2), geometry)
    for feather in (0.0, 5.0):
        out = paste_back(photo, face, matrix, feather=feather)
        assert np.abs(out.astype(int) - 180).max() <= 1, feather


def _max_step(image: np.ndarray) -> int:
    grey = image[..., 0].astype(int)
    return int(max(np.abs(np.diff(grey, axis=0)).max(), np.abs(np.diff(grey, axis=1)).max()))


@pytest.mark.parametrize("margin", [0, 3])
def test_feathered_paste_is_smooth(margin):
    photo = np.zeros((300, 320, 3), np.uint8)
    face = np.full((218, 178, 3), 255, np.uint8)
    # 1.5 crop pixels per photo pixel, rotated by about 10 degrees.
    matrix = eye_transform((120.0, 140.0), (144.5, 144.3), CELEBA)
    crop_per_photo = math.hypot(matrix[0, 0], matrix[1, 0])
    hard = paste_back(photo, face, matrix, margin=margin)
    assert _max_step(hard) >= 200  # a hard edge is a step
    feather = 12.0
    soft = paste_back(photo, face, matrix, feather=feather, margin=margin)
    # One photo pixel moves `crop_per_photo` crop pixels, so the fade can rise by at most
    # crop_per_photo / feather of full scale per pixel (a little more on the diagonal).
    assert _max_step(soft) <= 255 * crop_per_photo / feather * 1.5 + 2
    # The fade starts at the crop's edge (or margin) and is complete `feather` pixels inside.
    where = crop_coordinates(matrix, 300, 320)
    depth = np.minimum.reduce([where[..., 0] - margin, 177 - margin - where[..., 0],
                               where[..., 1] - margin, 217 - margin - where[..., 1]])
    assert (soft[depth >= feather + 2] == 255).all()
    assert (soft[depth <= -2] == 0).all()


def test_margin_leaves_the_crop_border_out():
    photo = np.zeros((100, 100, 3), np.uint8)
    matrix = np.array([[1.0, 0, -10], [0, 1.0, -10]])  # crop pixel (0, 0) is photo (10, 10)
    out = paste_back(photo, np.full((50, 50, 3), 255, np.uint8), matrix, margin=5)
    assert (out[15:55, 15:55] == 255).all()
    assert (out[10:15, 10:60] == 0).all() and (out[55:60, 10:60] == 0).all()
    assert (out[:, :15] == 0).all()


# --- real faces -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_tools():
    from privface.attributes.detection import FaceDetector
    from privface.attributes.landmarks import LandmarkPredictor

    return FaceDetector(), LandmarkPredictor()


@pytest.mark.realdata
def test_realigned_celeba_faces_have_eyes_on_the_template(celeba_dir, face_tools):
    """CelebA's own alignment and the CELEBA template agree, and re-aligning is stable.

    The photos are already CelebA-aligned, so the transform to CELEBA is nearly the identity and
    the measured eye centres lie close to the template; measured again on the re-aligned crops
    they are on the template within about 2 pixels (the landmarks' own repeatability).
    """
    from privface.attributes.images import list_images, load_image

    detector, predictor = face_tools
    paths = list_images(celeba_dir / "img_align_celeba_200ids")[::200]  # 30 photos, many people
    template = np.array([CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE])
    measured, remeasured = [], []
    for path in paths:
        photo = load_image(path)
        faces = detector.detect(photo)
        assert faces, path
        points = predictor.predict(photo, faces[0])
        measured.append(eye_centres(points))
        aligned = align_face(photo, points, CELEBA)
        again = detector.detect(aligned.image)
        assert again, path
        remeasured.append(eye_centres(predictor.predict(aligned.image, again[0])))
    measured, remeasured = np.array(measured), np.array(remeasured)  # (n, 2 eyes, 2)
    # CELEBA's constants are the mean of this measurement over the 6,000 photos.
    assert np.abs(measured.mean(0) - template).max() < 2.0, measured.mean(0)
    errors = np.linalg.norm(remeasured - template, axis=-1)
    assert np.abs(remeasured.mean(0) - template).max() < 1.0, remeasured.mean(0)
    assert np.median(errors) < 1.5 and np.percentile(errors, 90) < 2.5, errors
