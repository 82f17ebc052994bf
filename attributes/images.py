"""Reading photos safely: one RGB array per file, or a reason why not.

Photos come from users and from the web, so every file is treated as hostile: the size is checked
from the header before any pixel is decoded (decompression bombs), truncated files are an error
rather than a half-grey image, EXIF orientation is applied so that faces stand upright, and grey,
palette, CMYK, 16-bit and transparent images all become 8-bit RGB.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from privface.base.errors import InputError
from privface.base.files import atomic_write

#: File suffixes treated as photos when a folder is listed.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Largest image decoded by default (pixels): 64 megapixels, a 9,000 x 7,000 photo. Larger files
#: are refused before decoding so that a crafted file cannot exhaust memory.
MAX_PIXELS = 64_000_000


class ImageError(InputError):
    """A photo that cannot be used: unreadable, truncated, too large, not an image."""


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The photos in ``folder`` (not recursive), sorted by name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.jpg", "a.PNG", "notes.txt"]:
    ...     _ = (d / name).write_bytes(b"")
    >>> [p.name for p in list_images(d)]
    ['a.PNG', 'b.jpg']
    """
    path = Path(folder)
    if not path.is_dir():
        raise InputError("expected a folder of photos", file=str(path))
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS,
               data: bytes | None = None) -> np.ndarray:
    """Read a photo as an upright ``(height, width, 3)`` uint8 RGB array.

    Parameters
    ----------
    path : path-like
        The photo (JPEG, PNG, BMP, WebP, TIFF).
    max_pixels : int
        Refuse images with more pixels than this, checked from the header before decoding.
    data : bytes, optional
        The file's bytes, already read (e.g. to hash them): decoded from memory, and ``path``
        only names the photo in messages.

    Raises
    ------
    ImageError
        Naming the file and the reason: not an image, truncated, too many pixels.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "grey.png"
    >>> Image.new("L", (4, 3), 128).save(p)
    >>> load_image(p).shape
    (3, 4, 3)
    """
    name = str(path)
    try:
        with warnings.catch_warnings():
            # PIL warns, then errors, on huge images; we decide ourselves from the header.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if data is not None else path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"image has {width}x{height} = {width * height:,} pixels, more than the "
                        f"{max_pixels:,} allowed (a decompression bomb or a very large photo); "
                        "downscale it first", file=name)
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb(image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("file not found", file=name) from None
    except UnidentifiedImageError:
        raise ImageError("not an image PIL can read (expected JPEG, PNG, BMP, WebP or TIFF)",
                         file=name) from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"refused as a decompression bomb: {error}", file=name) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"cannot decode the image ({error}); the file may be truncated or "
                         "corrupt", file=name) from None


def to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any PIL image to an 8-bit RGB array; transparent pixels become white.

    Examples
    --------
    >>> from PIL import Image
    >>> to_rgb(Image.new("RGBA", (1, 1), (255, 0, 0, 0))).tolist()
    [[[255, 255, 255]]]
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clip. 16-bit modes span 0..65535;
        # PIL's 32-bit "I" mode has no declared range, so values up to 255 are taken as 8-bit.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "I" or array.max(initial=0) > 255 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def encode_image(array: np.ndarray, suffix: str, *, quality: int = 95) -> bytes:
    """The bytes :func:`save_image` writes for an RGB array, format from ``suffix``.

    A caller that must read what it writes (the photo pipeline checks the released faces as they
    decode from the file) encodes once, decodes these bytes and writes them unchanged.

    Examples
    --------
    >>> data = encode_image(np.zeros((2, 2, 3), np.uint8), ".png")
    >>> data[:4], load_image("x.png", data=data).shape
    (b'\\x89PNG', (2, 2, 3))
    """
    image = Image.fromarray(np.asarray(array, dtype=np.uint8), mode="RGB")
    fmt = Image.registered_extensions().get(suffix.lower())
    if fmt is None:
        raise InputError(f"cannot write {suffix!r} photos: expected one of "
                         f"{', '.join(IMAGE_SUFFIXES)}", file=f"*{suffix}")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def save_image(array: np.ndarray, path: str | os.PathLike, *, quality: int = 95,
               data: bytes | None = None) -> None:
    """Write an RGB array atomically (temporary name, then rename); format from the suffix.

    ``data``: the array already encoded by :func:`encode_image` (written as is).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.png"
    >>> save_image(np.zeros((2, 2, 3), np.uint8), p)
    >>> load_image(p).shape
    (2, 2, 3)
    """

    target = Path(path)
    encoded = encode_image(array, target.suffix, quality=quality) if data is None else data
    # atomic_write's temporary file cannot be redirected by a planted link (no-follow, exclusive)
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(encoded))


def iter_images(paths: list[Path], *, max_pixels: int = MAX_PIXELS
                ) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """Yield ``(path, rgb, None)`` per readable photo and ``(path, None, reason)`` otherwise."""
    for path in paths:
        try:
            yield path, load_image(path, max_pixels=max_pixels), None
        except ImageError as error:
            yield path, None, error.message
