"""What the two torch face models share: a small ResNet, safe weight files, face-to-tensor input.

:class:`~privface.attributes.cnn.AttributeCNN` and
:class:`~privface.attributes.embedding_net.FaceEmbeddingNet` are differentiable end to end, so that
stage IV can attack them in pixel space. Both are a :class:`ResNetBackbone` (a stem and four
stages of two-convolution residual blocks, each stage halving the resolution) and a linear head.

A weight file is a ``.npz`` of plain arrays, one per state-dict entry, plus a JSON ``header``
(format, architecture, training record); it is read with ``allow_pickle=False``, so a weight file
from elsewhere can never run code. :func:`faces_to_tensor` turns aligned faces as privface makes
them (uint8 RGB, ``(h, w, 3)`` or ``(n, h, w, 3)``) into the ``[0, 1]`` float tensors the models
take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from privface.base.errors import InputError
from privface.base.files import atomic_write


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions with batch norm and a shortcut (projected when the shape changes)."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """A stride-2 stem and one residual block per stage, each stage at half the resolution.

    Returns the final feature map ``(n, widths[-1], h / 32, w / 32)`` (rounded up).

    Examples
    --------
    >>> net = ResNetBackbone((8, 16, 16, 32))
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 32, 2, 2])
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive, got {widths}")
        self.widths = widths
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, channels = [], widths[0]
        for width in widths:
            blocks.append(ResidualBlock(channels, width, 2))
            channels = width
        self.stages = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class PixelNormalisation(nn.Module):
    """``(x - mean) / std`` per RGB channel, inside the model so that attacks stay in [0, 1].

    Examples
    --------
    >>> PixelNormalisation((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(torch.ones(1, 3, 1, 1)).flatten()
    tensor([2., 2., 2.])
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def check_pixels(x: torch.Tensor, size: tuple[int, int], model: str) -> None:
    """A clear error unless ``x`` is a float ``(n, 3, height, width)`` batch of the model's size.

    Examples
    --------
    >>> check_pixels(torch.zeros(1, 3, 4, 5), (4, 5), "net")
    >>> check_pixels(torch.zeros(3, 4, 5), (4, 5), "net")
    Traceback (most recent call last):
    ...
    ValueError: net takes a float tensor (n, 3, 4, 5) of RGB values in [0, 1]; got shape
    (3, 4, 5), dtype torch.float32
    """
    if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != tuple(size) or \
            not x.is_floating_point():
        raise ValueError(f"{model} takes a float tensor (n, 3, {size[0]}, {size[1]}) of RGB "
                         f"values in [0, 1]; got shape {tuple(x.shape)}, dtype {x.dtype}")


def faces_to_tensor(aligned: np.ndarray | Sequence[np.ndarray], size: tuple[int, int], *,
                    box: tuple[float, float, float, float] | None = None,
                    channels: str = "rgb") -> torch.Tensor:
    """Aligned uint8 faces -> a float ``(n, 3, height, width)`` tensor in [0, 1].

    Parameters
    ----------
    aligned : ndarray or sequence of ndarray
        One face ``(h, w, 3)``, a batch ``(n, h, w, 3)`` or a list of faces (sizes may differ),
        uint8, aligned to CelebA's geometry (178 x 218 or any scaled copy of it).
    size : (height, width)
        The model's input size.
    box : (left, top, right, bottom), optional
        Cut this part first, in fractions of the face's width and height.
    channels : {"rgb", "bgr"}
        Channel order of ``aligned``: privface's images and alignment give RGB; OpenCV's
        ``imread`` gives BGR.

    Examples
    --------
    >>> faces_to_tensor(np.full((218, 178, 3), 255, np.uint8), (109, 89)).shape
    torch.Size([1, 3, 109, 89])
    >>> faces_to_tensor(np.zeros((2, 20, 20, 3), np.uint8), (8, 8), box=(0.25, 0.25, 0.75, 0.75)
    ...                 ).shape
    torch.Size([2, 3, 8, 8])
    """
    if channels not in ("rgb", "bgr"):
        raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    if isinstance(aligned, np.ndarray):
        if aligned.ndim not in (3, 4):
            raise ValueError("expected aligned faces as uint8 arrays (h, w, 3) or (n, h, w, 3); "
                             f"got shape {aligned.shape}")
        return _resize_batch(aligned if aligned.ndim == 4 else aligned[None], size, box, channels)
    faces = [np.asarray(face) for face in aligned]
    if not faces:
        return torch.zeros((0, 3, *size), dtype=torch.float32)
    if len({face.shape for face in faces}) == 1:  # one size: resize them as one batch
        return _resize_batch(np.stack(faces), size, box, channels)
    return torch.cat([_resize_batch(face[None], size, box, channels) for face in faces])


def _resize_batch(batch: np.ndarray, size: tuple[int, int],
                  box: tuple[float, float, float, float] | None, channels: str) -> torch.Tensor:
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError("expected aligned faces as uint8 arrays (h, w, 3) or (n, h, w, 3); "
                         f"got shape {batch.shape[1:] if batch.ndim == 4 else batch.shape}, "
                         f"dtype {batch.dtype}")
    if box is not None:
        height, width = batch.shape[1:3]
        left, top = round(box[0] * width), round(box[1] * height)
        right, bottom = round(box[2] * width), round(box[3] * height)
        batch = batch[:, top:bottom, left:right]
    if channels == "bgr":
        batch = batch[..., ::-1]
    # In chunks: a float copy of a few thousand full-size crops would take gigabytes.
    return torch.cat([_to_model_size(batch[i:i + _CHUNK], size)
                      for i in range(0, len(batch), _CHUNK)]) if len(batch) else \
        torch.zeros((0, 3, *size), dtype=torch.float32)


_CHUNK = 256


def _to_model_size(batch: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    pixels = np.require(batch, requirements=["C", "W"])  # torch wants a writable array
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
    if tuple(x.shape[2:]) != tuple(size):
        # Antialiased bilinear: downscaling a 178 x 218 crop averages its pixels, as the
        # half-size CelebA copies the models were trained on were made.
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
    return x.contiguous()


# -- weight files ------------------------------------------------------------------------------

def save_weights(module: nn.Module, path: str | os.PathLike, header: dict) -> None:
    """Write ``module``'s state dict and a JSON header to a ``.npz`` file, atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.npz"
    >>> save_weights(nn.Linear(2, 1), p, {"format": "demo/1"})
    >>> sorted(read_weights(p, "demo/1")[0])
    ['bias', 'weight']
    """

    # Floating-point tensors are stored in half precision: half the file, and the trainers round
    # the weights the same way (round_to_storage) before measuring them, so the accuracy a file
    # records is the accuracy of the file.
    arrays = {f"state.{key}": _storage(value) for key, value in module.state_dict().items()}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, header=np.array(json.dumps(header)), **arrays)

    atomic_write(path, write)


def _storage(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return value.to(torch.float16).numpy() if value.is_floating_point() else value.numpy()


def round_to_storage(module: nn.Module) -> nn.Module:
    """Round ``module``'s floating-point parameters and buffers to half precision, in place.

    They stay float32 tensors; their values become exactly what :func:`save_weights` stores.

    Examples
    --------
    >>> layer = nn.Linear(1, 1)
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(0.1)
    >>> round_to_storage(layer).weight.item()
    0.0999755859375
    """
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(torch.float16).to(tensor.dtype))
    return module


def read_weights(path: str | os.PathLike, expected_format: str
                 ) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a weight file written by :func:`save_weights`: (state dict, header).

    Nothing is unpickled: a pickle (a ``torch.save`` file, say) is refused with an
    :class:`~privface.base.errors.InputError` naming the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.pt"
    >>> torch.save({"w": torch.zeros(1)}, p)
    >>> read_weights(p, "demo/1")
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: ...x.pt: not a privface weight file (a .npz of
    arrays with a JSON header): ...
    """
    name = str(path)
    if not Path(path).is_file():
        raise InputError("weight file not found", file=name)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("a single array, not an archive of arrays")
            if "header" not in data.files:
                raise ValueError(f"no header among its arrays ({', '.join(data.files[:4])} ...)")
            header = json.loads(str(data["header"]))
            state = {key[len("state."):]: torch.from_numpy(np.array(data[key]))
                     for key in data.files if key.startswith("state.")}
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise InputError(f"not a privface weight file (a .npz of arrays with a JSON header): "
                         f"{error}", file=name) from None
    if not isinstance(header, dict) or header.get("format") != expected_format:
        found = header.get("format") if isinstance(header, dict) else None
        raise InputError(f"unknown weight format {found!r}; expected {expected_format!r}",
                         file=name)
    return state, header


def load_state(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``module`` exactly (same keys, same shapes), else a clear error.

    Examples
    --------
    >>> load_state(nn.Linear(2, 1), {"weight": torch.zeros(1, 3)}, "w.npz")
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: w.npz: the weights do not fit the network (missing
    bias; weight has shape (1, 3), expected (1, 2))
    """
    expected = module.state_dict()
    problems = [f"missing {key}" for key in expected if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected]
    problems += [f"{key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
                 for key, value in state.items()
                 if key in expected and value.shape != expected[key].shape]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more"
                                           if len(problems) > 6 else "")
        raise InputError(f"the weights do not fit the network ({shown})", file=source)
    module.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()})
    return module
