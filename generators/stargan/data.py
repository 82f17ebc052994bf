"""Images and labels for StarGAN, prepared exactly as the official release prepares CelebA.

The release crops CelebA's aligned 178 x 218 images to their central 178 x 178 square
(``CenterCrop(178)``), resizes it (``Resize(image_size)``, PIL bilinear), and scales pixels to
[-1, 1] (``Normalize(0.5, 0.5)``); labels are 1 for a present attribute, 0 otherwise. Scaled copies
of CelebA (89 x 109, say) get the same square, scaled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from privface.base.errors import InputError


def celeba_square(image: np.ndarray, size: int) -> np.ndarray:
    """The central square of an aligned CelebA crop, resized to ``size`` x ``size``.

    The square's side is the crop's width (178 for CelebA, i.e. ``CenterCrop(178)``; scaled
    copies scale with it), placed as torchvision's ``CenterCrop`` places it, then resized with
    PIL's bilinear filter as torchvision's ``Resize`` does on PIL images.

    Examples
    --------
    >>> image = np.zeros((218, 178, 3), np.uint8); image[20:198] = 255
    >>> square = celeba_square(image, 128)
    >>> square.shape, int(square.min())
    ((128, 128, 3), 255)
    >>> celeba_square(np.zeros((109, 89, 3), np.uint8), 64).shape
    (64, 64, 3)
    """
    height, width = image.shape[:2]
    side = min(height, width)
    # torchvision's CenterCrop: int(round((H - h) / 2)), Python's rounding included.
    top, left = int(round((height - side) / 2.0)), int(round((width - side) / 2.0))
    crop = np.ascontiguousarray(image[top:top + side, left:left + side])
    if side == size:
        return crop
    return np.array(Image.fromarray(crop).resize((size, size), Image.BILINEAR))


def to_model_input(faces: np.ndarray) -> torch.Tensor:
    """``(n, H, W, 3)`` uint8 to ``(n, 3, H, W)`` float in [-1, 1], as ``ToTensor`` + ``Normalize``.

    Examples
    --------
    >>> to_model_input(np.array([[[[0, 255, 51]]]], np.uint8)).flatten().tolist()
    [-1.0, 1.0, -0.6000000238418579]
    """
    # torch.tensor copies: the caller's array stays untouched, read-only arrays are fine.
    x = torch.tensor(np.asarray(faces, dtype=np.uint8)).permute(0, 3, 1, 2).float().div(255)
    return x.sub(0.5).div(0.5)


def from_model_output(x: torch.Tensor) -> np.ndarray:
    """``(n, 3, H, W)`` in [-1, 1] back to ``(n, H, W, 3)`` uint8, rounded as ``save_image`` does.

    Examples
    --------
    >>> from_model_output(torch.tensor([[[[-1.0, 0.0, 1.0]]]] * 3).view(1, 3, 1, 3))[0, 0, :, 0]
    array([  0, 128, 255], dtype=uint8)
    """
    scaled = (x.detach().float().cpu() + 1).div(2).clamp(0, 1).mul(255).add(0.5).clamp(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def label_vectors(table: pd.DataFrame, attributes: Sequence[str], *,
                  source: str = "the attributes") -> np.ndarray:
    """CelebA's 1 / -1 coding of ``attributes`` as StarGAN's 1 / 0 label vectors (float32).

    A 0 (privface's generalised value) counts as absent. A missing column is an error naming it.

    Examples
    --------
    >>> table = pd.DataFrame({"Male": [1, -1], "Young": [-1, 1], "Bald": [1, 1]})
    >>> label_vectors(table, ["Male", "Young"]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    missing = [name for name in attributes if name not in table.columns]
    if missing:
        raise InputError(f"no column {', '.join(map(repr, missing))} (StarGAN's attributes are "
                         f"{', '.join(attributes)})", file=source)
    values = table.loc[:, list(attributes)]
    numeric = values.apply(pd.to_numeric, errors="coerce")
    bad = ~numeric.isin([1, -1, 0])
    if bad.to_numpy().any():
        row, column = next((r, c) for r, c in zip(*np.nonzero(bad.to_numpy())))
        value = values.iat[row, column]
        shown = repr(value) if isinstance(value, str) else str(value)
        raise InputError(f"expected 1 or -1, found {shown} (row "
                         f"{values.index[row]!r})", file=source, column=str(values.columns[column]))
    return (numeric.to_numpy() == 1).astype(np.float32)


def match_images(folder: str | os.PathLike, table: pd.DataFrame, attributes: Sequence[str], *,
                 source: str = "the labels") -> tuple[list[Path], np.ndarray, dict[str, int]]:
    """The images present both in ``folder`` and in the labels, with their label vectors.

    Returns the paths (sorted by name), their ``(n, len(attributes))`` 0/1 labels, and counts
    (``used``, ``unlabelled`` images, ``labels_without_image``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["000001.jpg", "000009.jpg"]:
    ...     _ = (d / name).write_bytes(b"")
    >>> table = pd.DataFrame({"Male": [1, -1]}, index=["000001.jpg", "000002.jpg"])
    >>> paths, labels, counts = match_images(d, table, ["Male"])
    >>> [p.name for p in paths], labels.tolist(), counts
    (['000001.jpg'], [[1.0]], {'used': 1, 'unlabelled': 1, 'labels_without_image': 1})
    """
    # imported on use: it loads Pillow
    from privface.attributes.images import list_images

    files = {path.name: path for path in list_images(folder)}
    names = sorted(set(files) & {str(name) for name in table.index})
    labels = label_vectors(table, attributes, source=source)  # column errors before set errors
    if not names:
        raise InputError(f"no image of {folder} is in the labels (the folder has {len(files):,} "
                         f"image(s), the labels name {len(table):,}; file names must match, "
                         "e.g. 000001.jpg)", file=source)
    position = {str(name): i for i, name in enumerate(table.index)}
    counts = {"used": len(names), "unlabelled": len(files) - len(names),
              "labels_without_image": len(table) - len(names)}
    return [files[name] for name in names], labels[[position[n] for n in names]], counts


class FaceDataset(torch.utils.data.Dataset):
    """Aligned CelebA crops read on demand: ``(3, size, size)`` in [-1, 1] and a label vector.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "000001.jpg"
    >>> Image.new("RGB", (89, 109), (255, 0, 0)).save(p)
    >>> x, c = FaceDataset([p], np.ones((1, 5), np.float32), 32)[0]
    >>> tuple(x.shape), round(float(x[0].mean()), 1), c.tolist()
    ((3, 32, 32), 1.0, [1.0, 1.0, 1.0, 1.0, 1.0])
    """

    def __init__(self, paths: Sequence[Path], labels: np.ndarray, image_size: int) -> None:
        self.paths, self.labels, self.image_size = list(paths), labels, image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # imported on use: it loads Pillow
        from privface.attributes.images import load_image

        square = celeba_square(load_image(self.paths[index]), self.image_size)
        return to_model_input(square[None])[0], torch.from_numpy(self.labels[index])


class EpochBatches(torch.utils.data.Sampler):
    """Index batches for iterations ``start`` to ``stop - 1``: each epoch a fresh shuffle.

    Batch ``i`` is a pure function of ``(seed, i)`` so that a run resumed at any iteration sees
    the same images as an uninterrupted one; like the release's loader, the last batch of an
    epoch may be smaller.

    Examples
    --------
    >>> batches = list(EpochBatches(5, 2, seed=0, start=0, stop=4, seeds=lambda *k: sum(k)))
    >>> [len(b) for b in batches], sorted(sum(batches[:3], []))
    ([2, 2, 1, 2], [0, 1, 2, 3, 4])
    """

    def __init__(self, count: int, batch_size: int, *, seed: int, start: int, stop: int,
                 seeds: Callable[..., int]) -> None:
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.start, self.stop, self.seeds = start, stop, seeds
        self.per_epoch = -(-count // batch_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, order = -1, None
        for iteration in range(self.start, self.stop):
            if iteration // self.per_epoch != epoch:
                epoch = iteration // self.per_epoch
                generator = torch.Generator().manual_seed(self.seeds(self.seed, 0, epoch))
                order = torch.randperm(self.count, generator=generator).tolist()
            first = (iteration % self.per_epoch) * self.batch_size
            yield order[first:first + self.batch_size]
