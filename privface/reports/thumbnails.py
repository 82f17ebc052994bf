"""Before/after thumbnails, embedded in the page as base64 JPEG.

Photos are read with the same hostile-file checks as the pipeline
(:func:`privface.attributes.images.load_image`: decompression bombs, truncated files, EXIF
orientation), shrunk to a small JPEG and written into the page. A photo that cannot be read gets a
grey box with the reason, never a broken image.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from .html import Markup, data_uri, esc, join, tag

T = TypeVar("T")

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 220


@dataclass
class Pair:
    """One cell of the before/after grid.

    Attributes
    ----------
    name : str
        The photo's file name (shown, escaped).
    before, after : Path or None
        The original and the anonymized photo; None shows an empty box with ``missing``.
    caption : list of str
        Lines under the pair (escaped).
    missing : str
        What the empty box says.
    alert : bool
        Outline the pair in red (e.g. a face that was re-identified).
    """

    name: str
    before: Path | None
    after: Path | None
    caption: list[str] = field(default_factory=list)
    missing: str = "not available"
    alert: bool = False


def evenly(items: Sequence[T], n: int) -> list[T]:
    """``n`` items spread evenly over ``items`` (all of them when there are at most ``n``).

    A deterministic sample: the same run gives the same grid, and it spans the whole folder
    rather than its first photos.

    Examples
    --------
    >>> evenly(list(range(10)), 3), evenly([1, 2], 5), evenly([1, 2], 0)
    ([0, 4, 9], [1, 2], [])
    """
    if n <= 0:
        return []
    if len(items) <= n:
        return list(items)
    positions = np.unique(np.linspace(0, len(items) - 1, n).round().astype(int))
    return [items[i] for i in positions]


def thumbnail_jpeg(path: str | Path, size: int = THUMBNAIL_SIZE) -> bytes:
    """The photo shrunk to fit ``size`` x ``size``, as JPEG bytes.

    Raises
    ------
    privface.attributes.images.ImageError
        Naming the file: not an image, truncated, too large.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
    >>> Image.new("RGB", (400, 200), (200, 30, 30)).save(p)
    >>> Image.open(io.BytesIO(thumbnail_jpeg(p, 100))).size
    (100, 50)
    """
    from PIL import Image

    # imported on use: it loads Pillow
    from privface.attributes.images import load_image

    image = Image.fromarray(load_image(path))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _cell(path: Path | None, what: str, missing: str) -> Markup:
    if path is None:
        box = tag("div", missing, class_="missing")
    else:
        try:
            uri = data_uri(thumbnail_jpeg(path), "image/jpeg")
            box = Markup(f'<img src="{esc(uri)}" alt="{esc(what)}: {esc(path.name)}">')
        except (ValueError, OSError) as exc:  # ImageError is a ValueError
            box = tag("div", f"cannot read: {getattr(exc, 'message', exc)}", class_="missing")
    return tag("div", join([box, tag("div", what, class_="label")]))


def pair_grid(pairs: Sequence[Pair], *, before: str = "before", after: str = "after") -> Markup:
    """A grid of before/after thumbnails with the file name and caption of each pair.

    Examples
    --------
    >>> grid = pair_grid([Pair("<evil>.jpg", None, None, ["k = 5"])])
    >>> "&lt;evil&gt;.jpg" in grid and "<evil>" not in grid
    True
    """
    cells = []
    for pair in pairs:
        images = tag("div", join([_cell(pair.before, before, pair.missing),
                                  _cell(pair.after, after, pair.missing)]), class_="imgs")
        caption = join(tag("div", line, class_="caption") for line in pair.caption)
        cells.append(tag("div", join([images, tag("div", pair.name, class_="name"), caption]),
                         class_="pair alert" if pair.alert else "pair"))
    return tag("div", join(cells), class_="grid")
