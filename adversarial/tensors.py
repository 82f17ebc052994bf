"""Images as the attacks see them, and back: float tensors in [0, 1] and 8-bit RGB arrays.

Attacks work on float batches ``(N, 3, H, W)`` of RGB values in [0, 1]; the rest of privface
(alignment, the recognizers, the shipped attribute model, image quality) works on uint8 RGB arrays
``(H, W, 3)``. A released photo is 8-bit, so a perturbation must survive the conversion without
leaving its budget: :func:`add_quantized` rounds each pixel's change **towards zero** to whole
grey levels, so the change in the uint8 image is never larger than the float perturbation (a
budget of ``xi = 0.04`` becomes at most 10 grey levels, not 10.2 rounded up to 11).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: Grey levels within this much of a whole number count as that number when quantizing, so that
#: a budget such as 8/255, which float32 stores as 7.9999995 grey levels, keeps its 8 levels.
_LEVEL_TOLERANCE = 1e-4


def check_images(x, what: str = "images") -> torch.Tensor:
    """``x`` as a float tensor ``(N, C, H, W)`` with finite values in [0, 1], or a clear error.

    Examples
    --------
    >>> check_images(torch.zeros(2, 3, 4, 4)).shape
    torch.Size([2, 3, 4, 4])
    >>> check_images(torch.full((1, 3, 2, 2), 2.0))
    Traceback (most recent call last):
    ...
    ValueError: images: values must lie in [0, 1] (images scaled by 1/255), found 2 .. 2
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch tensor (N, C, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{what}: expected float values in [0, 1], got dtype {x.dtype} (convert "
                         "8-bit images with to_tensor)")
    if x.dim() != 4 or min(x.shape) == 0:
        raise ValueError(f"{what}: expected a non-empty batch (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what}: values must be finite")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise ValueError(f"{what}: values must lie in [0, 1] (images scaled by 1/255), found "
                         f"{low:g} .. {high:g}")
    return x


def to_tensor(images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """8-bit RGB images ``(N, H, W, 3)`` (or a list of same-shape ones) as floats ``(N, 3, H, W)``.

    Examples
    --------
    >>> to_tensor(np.full((1, 2, 2, 3), 255, np.uint8)).shape
    torch.Size([1, 3, 2, 2])
    """
    array = np.stack(images) if not isinstance(images, np.ndarray) else images
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images (N, H, W, 3), got {array.dtype} "
                         f"{array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float().div(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images ``(N, 3, H, W)`` in [0, 1] as uint8 RGB ``(N, H, W, 3)``, rounded.

    Examples
    --------
    >>> to_uint8(torch.full((1, 3, 1, 1), 0.5))[0, 0, 0].tolist()
    [128, 128, 128]
    """
    values = x.detach().to("cpu", torch.float32).clamp(0, 1).mul(255.0).round()
    return values.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def quantize_toward_zero(change: np.ndarray) -> np.ndarray:
    """A change in grey levels rounded towards zero to whole levels (int16).

    Examples
    --------
    >>> quantize_toward_zero(np.array([10.2, -10.2, 7.99995, 0.4])).tolist()
    [10, -10, 8, 0]
    """
    change = np.asarray(change, dtype=np.float64)
    levels = np.floor(np.abs(change) + _LEVEL_TOLERANCE)
    return (np.sign(change) * levels).astype(np.int16)


def add_quantized(images: np.ndarray, perturbation: np.ndarray) -> np.ndarray:
    """Add a float perturbation (in [0, 1] units, RGB) to uint8 images, never beyond its budget.

    The change is rounded towards zero to whole grey levels (see :func:`quantize_toward_zero`),
    then the result is clipped to 0..255; both steps only move a pixel towards its clean value,
    so every l_p norm of the released change is at most that of the float perturbation (to the
    1e-4 grey level that keeps budgets such as 8/255 whole).

    Parameters
    ----------
    images : ndarray (N, H, W, 3) or (H, W, 3), uint8
    perturbation : ndarray or Tensor
        Broadcastable to ``images`` as ``(..., H, W, 3)``, or a tensor ``(3, H, W)`` /
        ``(N, 3, H, W)`` (channels first, as the attacks return it).

    Examples
    --------
    >>> face = np.full((1, 1, 3), 250, np.uint8)
    >>> add_quantized(face, np.array([0.04, -0.04, 0.0])).tolist()
    [[[255, 240, 250]]]
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    if isinstance(perturbation, torch.Tensor):
        values = perturbation.detach().to("cpu", torch.float64)
        values = values.movedim(-3, -1) if values.dim() >= 3 else values
        perturbation = values.numpy()
    change = quantize_toward_zero(np.asarray(perturbation, np.float64) * 255.0)
    return np.clip(images.astype(np.int16) + change, 0, 255).astype(np.uint8)
