"""The face region from 68 landmarks and pasting a face into it (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("cv2")

from privface.attributes.alignment import align_face  # noqa: E402
from privface.attributes.face_region import (CELEBA_MEAN_LANDMARKS,  # noqa: E402
                                             below_hairline, crop_face_mask, face_mask,
                                             face_polygon, match_colour, match_shading,
                                             paste_face,
                                             template_landmarks)


def _placed(scale: float, angle: float, shift) -> np.ndarray:
    """The template landmarks moved into a photo by a similarity transform."""
    c, s = np.cos(angle), np.sin(angle)
    centred = CELEBA_MEAN_LANDMARKS - [89.0, 140.0]
    return centred @ (scale * np.array([[c, -s], [s, c]])).T + np.asarray(shift, float)


def test_the_region_covers_the_face_and_not_hair_or_background():
    # The jaw line and the brows lifted to the mean hairline (no growth).
    mask = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178), forehead=0.3, grow=0.0)
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    assert mask[140, 89] == 1 and mask[110, 60] == 1 and mask[86, 89] == 1  # cheek, eye, brows
    assert mask[30, 89] == 0 and mask[140, 20] == 0 and mask[210, 89] == 0  # hair, side, neck
    # The forehead reaches above the brows, by the fraction asked of the eye-to-chin distance.
    top = face_polygon(CELEBA_MEAN_LANDMARKS, forehead=0.3, grow=0.0)[:, 1].min()
    assert 98.1 - 0.3 * 72 - 1 < top < 98.1 - 0.3 * 72 + 1
    # The default region is that outline grown about the nose tip: it takes the silhouette and
    # the hairline too, and still leaves the top corners, the far sides and the neck.
    grown = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178))
    assert (grown >= mask).all() and grown.sum() > 1.5 * mask.sum()
    assert grown[5, 5] == 0 and grown[140, 5] == 0 and grown[216, 89] == 0


def test_the_feather_ramps_inside_the_region_only():
    hard = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178))
    soft = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178), feather=6)
    assert (soft[hard == 0] == 0).all() and (soft <= hard).all()
    assert ((soft > 0) & (soft < 1)).any() and soft[140, 89] == 1


def test_a_region_cut_by_the_image_border_is_clipped_and_stays_opaque_there():
    points = CELEBA_MEAN_LANDMARKS + [0.0, 60.0]  # the chin below the image
    mask = face_mask(points, (218, 178), feather=8)
    assert mask[217, 89] == 1  # no fade along the image's border


def test_the_crop_mask_is_the_photo_mask_moved_by_the_alignment():
    photo = np.zeros((400, 300, 3), np.uint8)
    points = _placed(1.6, 0.2, (150, 200))
    aligned = align_face(photo, points)
    in_crop = crop_face_mask(points, aligned.matrix, (218, 178))
    moved = points @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    np.testing.assert_array_equal(in_crop, face_mask(moved, (218, 178)))
    assert template_landmarks(128, 128).shape == (68, 2)


def test_match_colour_moves_mean_and_spread_to_the_reference():
    import cv2

    rng = np.random.default_rng(0)
    face = rng.integers(60, 120, (40, 40, 3)).astype(np.uint8)
    reference = rng.integers(120, 220, (40, 40, 3)).astype(np.uint8)
    mask = np.ones((40, 40))
    lab = lambda img: cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)  # noqa: E731
    moved = lab(match_colour(face, reference, mask))
    np.testing.assert_allclose(moved.reshape(-1, 3).mean(0),
                               lab(reference).reshape(-1, 3).mean(0), atol=1.0)


@settings(max_examples=40, deadline=None)
@given(slope=st.floats(-2.0, 2.0), level=st.integers(-30, 30), detail=st.integers(10, 40),
       sigma=st.floats(6.0, 14.0), seed=st.integers(0, 2**16))
def test_match_shading_carries_the_light_and_not_the_detail(slope, level, detail, sigma, seed):
    # The reference is lit across (a ramp) and carries fine detail of its own (a checkerboard of
    # 4-pixel squares: eyes, brows, a mouth are that size in a face crop). The shaded face takes
    # the ramp, keeps its own detail, and takes none of the reference's.
    import cv2

    rng = np.random.default_rng(seed)
    size = 96
    columns = np.arange(size, dtype=np.float32)
    face = (120 + rng.normal(0, 8, (size, size, 3))).clip(0, 255).astype(np.uint8)
    squares = ((np.indices((size, size)) // 4).sum(0) % 2 * 2 - 1)[..., None] * detail
    reference = (125 + level + slope * (columns - size / 2)[None, :, None] + squares)
    reference = np.repeat(reference.clip(0, 255), 3, axis=2).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[16:80, 16:80] = True
    shaded = match_shading(face, reference, mask, sigma)

    change = shaded.astype(np.float32) - face
    inside = mask.copy()
    inside[:28] = inside[68:] = False
    inside[:, :28] = inside[:, 68:] = False  # away from the mask's edge
    # The light: the change follows the reference's ramp across the face.
    middle = change[28:68, 28:68, 0]
    left, right = middle[:, :8], middle[:, -8:]
    assert right.mean() - left.mean() == pytest.approx(slope * 32, abs=4.0 + abs(slope) * 8)
    # Not the detail: the change is smooth (a 4-pixel checkerboard of amplitude ``detail`` would
    # leave a high-pass residue of about ``detail``).
    high = change - cv2.GaussianBlur(change, (0, 0), 2.0)
    assert np.abs(high[inside]).max() < 2.0
    assert (match_shading(face, face, mask, sigma) == face).all()


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(0.8, 2.0), angle=st.floats(-0.3, 0.3), fringe=st.floats(0.0, 1.0),
       hair=st.sampled_from([(30, 25, 20), (180, 70, 40), (200, 200, 205), (90, 60, 40)]),
       seed=st.integers(0, 2 ** 16))
def test_the_face_proper_stops_at_the_hairline(scale, angle, fringe, hair, seed):
    # Skin (with pore noise and a few dark specks) under hair of a common colour that comes
    # down to a random height between the region's top and the brows: the cut keeps the skin
    # below the fringe, none of the hair, and nothing of the face below the brows is lost.
    rng = np.random.default_rng(seed)
    points = _placed(scale, angle, (150.0, 190.0))
    shape = (360, 300)
    image = np.clip(rng.normal((205, 160, 135), 4.0, shape + (3,)), 0, 255).astype(np.uint8)
    image[tuple(rng.integers(0, 300, (2, 40)))] = (60, 40, 30)  # moles and pores
    mask = face_mask(points, shape, grow=0.0) > 0
    brows = face_mask(points, shape, forehead=0.1, grow=0.0) > 0
    top = np.flatnonzero(mask.any(axis=1))[0]
    low = np.flatnonzero(brows.any(axis=1))[0]  # the lifted brows' highest row
    # A fringe reaching less than 6 rows into the region is within the specks' filter.
    line = int(top + 6 + fringe * (low - top - 6))
    image[:line] = hair
    cut = below_hairline(image, points, mask)
    assert not (cut & ~mask).any()
    assert (cut[brows & mask]).all()  # below the brows the face proper is whole
    # No hair: at most the tip of a thin wedge of it, where a tilted region's top just dips
    # into the fringe, is within the specks' filter.
    assert not cut[:line - 4].any()
    assert cut[:line].sum() <= 0.05 * max(mask[:line].sum(), 1)
    # ...and the skin between the fringe and the brows stays (but for the rim of the blur).
    skin = mask.copy()
    skin[:line + 4] = False
    assert cut[skin].mean() > 0.97


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6), seed=st.integers(0, 2 ** 16))
def test_a_stepped_fringe_gives_a_smooth_hairline_with_no_blocks(steps, seed):
    # A fringe in blocks of columns hanging to different heights (a staircase): the column-wise
    # cut followed each step with a vertical edge, which showed as a block where the group's
    # average met the fringe. The line is now smooth: between neighbouring columns it moves by
    # a few rows at most, however high the steps, and keeps little hair and most of the skin.
    rng = np.random.default_rng(seed)
    points = CELEBA_MEAN_LANDMARKS
    shape = (218, 178)
    image = np.clip(rng.normal((205, 160, 135), 4.0, shape + (3,)), 0, 255).astype(np.uint8)
    mask = face_mask(points, shape, grow=0.0) > 0
    brows = face_mask(points, shape, forehead=0.1, grow=0.0) > 0
    top = np.flatnonzero(mask.any(axis=1))[0]
    low = np.flatnonzero(brows.any(axis=1))[0]
    columns = np.flatnonzero(mask[top + 2:low].any(axis=0))
    edges = np.linspace(columns[0], columns[-1] + 1, len(steps) + 1).astype(int)
    hair = np.zeros(shape, bool)
    for (a, b), step in zip(zip(edges[:-1], edges[1:]), steps):
        hair[:int(top + 6 + step * (low - top - 6)), a:b] = True
    image[hair] = (30, 25, 20)
    cut = below_hairline(image, points, mask)
    forehead = mask & ~brows
    # Where the line runs below the region's own top (the region's round top is steep at its
    # ends, the line is not measured there).
    first = np.argmax(cut, axis=0)
    below = cut.any(axis=0) & (first > np.argmax(mask, axis=0) + 1)
    pairs = below[:-1] & below[1:]
    assert pairs.sum() > 20
    assert np.abs(np.diff(first))[pairs].max() <= 4
    # Smoothing rounds the blocks' corners, so the line crosses a little hair and leaves a little
    # skin: the worst case, narrow blocks hanging to the brows in turn with bare forehead (14
    # columns each), loses a fifth of their hair to the skin side and a quarter of the skin
    # between them to the hair side; the column-wise cut took none and kept all.
    assert (cut & hair).sum() <= 0.25 * (hair & forehead).sum() + 30
    assert cut[forehead & ~hair].mean() > 0.7
    assert cut[brows & mask].all()


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.4, 2.5), angle=st.floats(-0.5, 0.5),
       x=st.floats(-60, 360), y=st.floats(-60, 300), blend=st.sampled_from(["pyramid", "alpha"]),
       colour=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_outside_the_face_region_the_photo_is_untouched_bit_for_bit(scale, angle, x, y, blend,
                                                                     colour, seed):
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (240, 300, 3)).astype(np.uint8)
    points = _placed(scale, angle, (x, y))
    aligned = align_face(photo, points)
    face = rng.integers(0, 256, aligned.image.shape).astype(np.uint8)
    out = paste_face(photo, face, aligned.matrix, points, blend=blend, colour=colour)
    outside = face_mask(points, photo.shape[:2]) == 0
    np.testing.assert_array_equal(out[outside], photo[outside])
    assert out.shape == photo.shape and out.dtype == photo.dtype


@pytest.mark.parametrize("shift", [(-30, 120), (150, 250), (320, 120), (150, -40)])
@pytest.mark.parametrize("colour", [True, False])
def test_a_face_cut_by_the_photo_border_gets_no_padding_band(shift, colour):
    # Grey photo, lighter face: a black (or any darker) pixel in the output would be a band.
    photo = np.full((240, 300, 3), 120, np.uint8)
    photo[::7] = 110  # some texture, so that colour matching has a spread to match
    points = _placed(1.2, 0.1, shift)
    aligned = align_face(photo, points)
    face = np.full(aligned.image.shape, 200, np.uint8)
    face[:, ::5] = 190
    out = paste_face(photo, face, aligned.matrix, points, colour=colour)
    inside = face_mask(points, photo.shape[:2]) > 0
    assert inside.any()
    assert out.min() >= 105  # nothing darker than the photo's own pixels
    if not colour:  # (matched, the face takes the photo's grey)
        assert (out[inside].astype(int) - photo[inside]).max() > 20  # the face did go in


def test_inside_the_region_the_face_is_pasted_and_colour_matched():
    rng = np.random.default_rng(1)
    photo = np.clip(rng.normal(150, 10, (300, 260, 3)), 0, 255).astype(np.uint8)
    points = _placed(1.3, 0.0, (130, 170))
    aligned = align_face(photo, points)
    face = np.clip(rng.normal(60, 10, aligned.image.shape), 0, 255).astype(np.uint8)
    matched = paste_face(photo, face, aligned.matrix, points)
    raw = paste_face(photo, face, aligned.matrix, points, colour=False, blend="alpha")
    inner = face_mask(points, photo.shape[:2], feather=20) == 1
    # Colour matched: the region keeps the photo's brightness; unmatched: the face's own.
    assert abs(matched[inner].mean() - 150) < 8
    assert abs(raw[inner].mean() - 60) < 8


def test_paste_face_refuses_bad_input():
    photo = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="68"):
        paste_face(photo, photo, np.eye(2, 3), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="blend"):
        paste_face(photo, photo, np.eye(2, 3), CELEBA_MEAN_LANDMARKS, blend="poisson")


@pytest.mark.parametrize("paste", ["blend", "face"])
def test_the_photo_writer_changes_nothing_outside_the_face_regions(paste, tmp_path):
    from PIL import Image

    from privface.pipeline.writing import PhotoJob, PhotoWriter

    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (260, 420, 3)).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "in.png")
    points = np.stack([_placed(1.0, 0.1, (110, 140)), _placed(0.8, -0.2, (330, 150))])
    crops = [align_face(photo, p) for p in points]
    faces = [np.full(c.image.shape, 30 * (i + 1), np.uint8) for i, c in enumerate(crops)]
    job = PhotoJob("in.png", tmp_path / "in.png", tmp_path / "out.png", faces,
                   [c.matrix for c in crops], points, np.zeros((2, 4)), np.zeros((2, 0)))
    outcome = PhotoWriter(feather_px=10.0, paste=paste).write(job)
    assert not outcome.withheld
    out = np.asarray(Image.open(tmp_path / "out.png"))
    regions = np.maximum(*(face_mask(p, photo.shape[:2]) for p in points)) > 0
    np.testing.assert_array_equal(out[~regions], photo[~regions])
    assert (out[regions] != photo[regions]).any(axis=-1).mean() > 0.9


def test_a_face_too_small_to_carry_identity_is_blurred_not_tiled(tmp_path):
    from PIL import Image

    from privface.attributes.face_region import SMALL_FACE_PX, eye_to_chin
    from privface.pipeline.writing import PhotoJob, PhotoWriter

    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (120, 160, 3)).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "in.png")
    tiny, large = _placed(0.055, 0.0, (40, 60)), _placed(0.8, 0.0, (110, 60))
    assert eye_to_chin(tiny) < SMALL_FACE_PX < eye_to_chin(large)
    points = np.stack([tiny, large])
    crops = [align_face(photo, p) for p in points]
    faces = [np.full(c.image.shape, 255, np.uint8) for c in crops]  # a white "new face"
    job = PhotoJob("in.png", tmp_path / "in.png", tmp_path / "out.png", faces,
                   [c.matrix for c in crops], points, np.zeros((2, 4)), np.zeros((2, 0)))
    PhotoWriter(feather_px=10.0, paste="face").write(job)
    out = np.asarray(Image.open(tmp_path / "out.png"))
    small = face_mask(tiny, photo.shape[:2]) > 0
    assert small.sum() >= 4
    # The tiny face's region is a blur of its own pixels (less spread), not the white face.
    assert out[small].std() < 0.7 * photo[small].std() and out[small].mean() < 200
    big = face_mask(large, photo.shape[:2], feather=10) == 1
    assert (out[big] == 255).all()
