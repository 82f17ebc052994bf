"""Photos in: every file is read upright as 8-bit RGB or refused with a reason, never a crash.

Also the detector's edge cases: no face, two faces (largest first) and CelebA's smallest images.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from privface.attributes.detection import FaceDetector
from privface.attributes.images import (MAX_PIXELS, ImageError, iter_images, list_images,
                                        load_image, save_image, to_rgb)
from privface.base.errors import InputError

# EXIF tag 0x0112: how the stored pixels must be turned to stand upright.
ORIENTATION = 0x0112


def raised(path: Path, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(path, **kwargs)
    return info.value


def halves(width: int = 40, height: int = 20) -> np.ndarray:
    """Left half red, right half blue: which way the image was turned is plain to see."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2:] = (0, 0, 255)
    return array


def save_with_orientation(array: np.ndarray, path: Path, orientation: int) -> Path:
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A real 2 x 2 PNG whose header (IHDR) claims ``width`` x ``height`` pixels.

    Its pixel data cannot fill such an image, so only a reader that checks the header before
    decoding refuses it for its size; one that decodes first fails differently (or runs out of
    memory).
    """
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (10, 20, 30)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # Signature (8 bytes), then the IHDR chunk: length (4), type (4), width, height, ..., CRC.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


# --- orientation ------------------------------------------------------------------------------


def test_exif_orientation_6_is_turned_clockwise(tmp_path):
    # Orientation 6: the camera was held turned; showing the photo upright takes a 90-degree
    # clockwise turn, which brings the stored left edge (red) to the top.
    loaded = load_image(save_with_orientation(halves(), tmp_path / "o6.jpg", 6))
    assert loaded.shape == (40, 20, 3)
    top, bottom = loaded[:18].reshape(-1, 3).mean(0), loaded[22:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50, top
    assert bottom[2] > 200 and bottom[0] < 50, bottom


def test_exif_orientation_8_is_turned_anticlockwise(tmp_path):
    loaded = load_image(save_with_orientation(halves(), tmp_path / "o8.jpg", 8))
    assert loaded.shape == (40, 20, 3)
    top, bottom = loaded[:18].reshape(-1, 3).mean(0), loaded[22:].reshape(-1, 3).mean(0)
    assert top[2] > 200 and top[0] < 50, top
    assert bottom[0] > 200 and bottom[2] < 50, bottom


@pytest.mark.realdata
@pytest.mark.parametrize("orientation, stored_turns", [(6, 1), (8, -1)])
def test_sideways_face_with_exif_loads_upright(celeba_dir, detector, tmp_path, orientation,
                                               stored_turns):
    # A face stored sideways with the EXIF tag that says so is read upright and is detected.
    upright = load_image(celeba_dir / "img_align_celeba_200ids" / "000002.jpg")
    stored = np.rot90(upright, k=stored_turns)  # k=1: anticlockwise, undone by orientation 6
    loaded = load_image(save_with_orientation(np.ascontiguousarray(stored),
                                              tmp_path / "side.jpg", orientation))
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - upright.astype(int)).mean() < 4
    assert len(detector.detect(loaded)) == 1


# --- colour modes -----------------------------------------------------------------------------


def test_grey_becomes_three_equal_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    assert loaded.dtype == np.uint8 and loaded.shape == (3, 4, 3)
    assert (loaded == grey[..., None]).all()


def test_palette_colours_are_kept(tmp_path):
    rgb = halves(8, 4)
    Image.fromarray(rgb).quantize(colors=4).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert (load_image(tmp_path / "p.png") == rgb).all()


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 10, 10)
    rgba[0, :, 3] = 255  # top row opaque, bottom row transparent
    rgba[1, 2, 3] = 128  # one pixel half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert (loaded[0] == (200, 10, 10)).all()
    assert (loaded[1, :2] == 255).all()
    # Half-way between the colour and white.
    assert np.allclose(loaded[1, 2], [227, 132, 132], atol=2)


def test_grey_with_alpha_transparent_is_white(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 50
    la[0, :, 1] = 255
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    assert (loaded[0] == 50).all() and (loaded[1] == 255).all()


def test_palette_with_transparency_is_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "pt.png", transparency=0)
    assert load_image(tmp_path / "pt.png").tolist() == [[[255, 255, 255], [255, 0, 0]]]


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32896, 65535]], np.uint16)  # 32896 = 128.5 / 255 of full scale
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    loaded = load_image(tmp_path / "g16.png")
    assert loaded.dtype == np.uint8 and loaded.shape == (1, 3, 3)
    assert loaded[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    loaded = load_image(tmp_path / "c.jpg")
    assert loaded.shape == (4, 4, 3)
    assert loaded[..., 0].min() > 200 and loaded[..., 1:].max() < 60  # red


def test_to_rgb_returns_contiguous_uint8():
    out = to_rgb(Image.new("RGB", (5, 3), (1, 2, 3)))
    assert out.flags.c_contiguous and out.dtype == np.uint8 and out.shape == (3, 5, 3)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_truncated_jpeg_is_an_error_naming_the_file(celeba_dir, tmp_path):
    data = (celeba_dir / "img_align_celeba_200ids" / "000002.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    error = raised(cut)
    assert error.file == str(cut)
    assert str(cut) in str(error) and "truncated" in str(error)


def test_truncated_png_is_an_error(tmp_path):
    path = tmp_path / "whole.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:3000])
    assert str(cut) in str(raised(cut))


def test_header_over_max_pixels_is_refused_before_decoding(tmp_path):
    # 9,000 x 8,000 = 72 MP: above privface's 64 MP limit but below PIL's own bomb limit, so the
    # refusal is privface's, from the header (the file holds the data of a 2 x 2 image).
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(9000, 8000))
    error = raised(path)
    assert error.file == str(path)
    assert "72,000,000 pixels" in error.message and f"{MAX_PIXELS:,}" in error.message


def test_huge_header_is_refused(tmp_path):
    # 100,000 x 100,000: PIL refuses it as a bomb while opening; still an ImageError.
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(100_000, 100_000))
    error = raised(path)
    assert error.file == str(path) and "bomb" in error.message


def test_small_max_pixels_refuses_a_normal_photo(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    Image.new("RGB", (100, 50)).save(path)

    # Decoding would call ImageFile.load: make it fail loudly to prove the size check comes first.
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert "5,000 pixels" in raised(path, max_pixels=4999).message


def test_non_image_bytes(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_bytes(b"this is not a photo\n" * 10)
    assert "not an image" in raised(path).message
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert raised(empty).file == str(empty)


def test_missing_file(tmp_path):
    error = raised(tmp_path / "nowhere.jpg")
    assert error.message == "file not found" and error.file == str(tmp_path / "nowhere.jpg")


def test_folder_instead_of_file(tmp_path):
    assert raised(tmp_path).file == str(tmp_path)


def test_errors_are_input_errors():
    # The command line turns InputError into exit status 2; images must follow.
    assert issubclass(ImageError, InputError)


def test_iter_images_reports_reasons_without_raising(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (3, 2)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    out = list(iter_images([good, bad, tmp_path / "missing.png"]))
    assert [r[0] for r in out] == [good, bad, tmp_path / "missing.png"]
    assert out[0][1].shape == (2, 3, 3) and out[0][2] is None
    assert out[1][1] is None and "not an image" in out[1][2]
    assert out[2][2] == "file not found"


# --- listing and saving -----------------------------------------------------------------------


def test_list_images_filters_and_sorts(tmp_path):
    for name in ["b.jpg", "a.PNG", "c.jpeg", "d.webp", "e.tif", "f.TIFF", "g.bmp", "notes.txt",
                 "archive.zip", "noext", ".hidden.txt"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.jpg").mkdir()  # a folder is not a photo, whatever its name
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.jpg").write_bytes(b"")  # not recursive
    assert [p.name for p in list_images(tmp_path)] == [
        "a.PNG", "b.jpg", "c.jpeg", "d.webp", "e.tif", "f.TIFF", "g.bmp"]


def test_list_images_needs_a_folder(tmp_path):
    file = tmp_path / "x.jpg"
    file.write_bytes(b"")
    for path in (file, tmp_path / "missing"):
        with pytest.raises(InputError):
            list_images(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_save_image_round_trip_leaves_no_temporary_file(tmp_path, suffix):
    rng = np.random.default_rng(1)
    # Flat 16 x 16 blocks, so that JPEG's chroma subsampling costs little.
    array = np.repeat(np.repeat(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8), 16, 0), 16, 1)
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"old content")  # replaced whole, never half-written
    save_image(array, target)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    loaded = load_image(target)
    tolerance = 6 if suffix == ".jpg" else 0
    assert np.abs(loaded.astype(int) - array.astype(int)).mean() <= tolerance


def test_save_image_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.unknown"
    target.write_bytes(b"old content")
    with pytest.raises(ValueError):
        save_image(np.zeros((2, 2, 3), np.uint8), target)
    assert target.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# --- detection edge cases ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_no_face_gives_an_empty_list(detector):
    # Smooth random texture (blurred noise plus a gradient): structure, but nothing like a face.
    import cv2

    rng = np.random.default_rng(3)
    noise = rng.normal(128, 60, (240, 320, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 6) + np.linspace(-40, 40, 320)[None, :, None]
    photo = np.clip(texture, 0, 255).astype(np.uint8)
    assert detector.detect(photo) == []
    assert detector.detect(np.full((50, 60, 3), 255, np.uint8)) == []


def test_bad_thresholds_are_refused():
    for score in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError):
            FaceDetector(score_threshold=score)


@pytest.mark.realdata
def test_two_faces_are_found_largest_first(celeba_dir, detector):
    import cv2

    folder = celeba_dir / "img_align_celeba_200ids"
    small = load_image(folder / "000002.jpg")
    big = cv2.resize(load_image(folder / "000058.jpg"), (267, 327),
                     interpolation=cv2.INTER_AREA)  # 1.5 x
    canvas = np.full((360, 520, 3), 90, np.uint8)
    canvas[20:238, 20:198] = small
    canvas[15:342, 230:497] = big
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    # The larger box is on the right, over the enlarged face; the smaller one on the left.
    assert faces[0].box[0] > 230 and faces[1].box[0] + faces[1].box[2] < 200
    for face in faces:
        assert 0.6 <= face.score <= 1.0 and face.landmarks5.shape == (5, 2)
        # The five landmarks lie inside their box (loosely: YuNet's box is tight at the chin).
        x, y, w, h = face.box
        assert (face.landmarks5[:, 0] > x - 0.1 * w).all()
        assert (face.landmarks5[:, 0] < x + 1.1 * w).all()


@pytest.mark.realdata
def test_tiny_celeba_images_are_detected(celeba_dir, detector):
    # 89 x 109 pixels, faces about 40 pixels wide: the detector upsamples small photos.
    paths = list_images(celeba_dir / "img_align_celeba_89x109")[:20]
    found = []
    for path in paths:
        image = load_image(path)
        assert image.shape == (109, 89, 3)
        faces = detector.detect(image)
        found.append(len(faces) >= 1)
        if faces:
            x, y, w, h = faces[0].box
            # Boxes in the original photo's coordinates: the face sits in the middle.
            assert 20 < x + w / 2 < 70 and 30 < y + h / 2 < 85, faces[0].box
    assert sum(found) >= 19, found
