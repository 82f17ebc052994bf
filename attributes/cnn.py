"""A differentiable attribute model: a small CNN from pixels to CelebA's 40 attribute logits.

The shipped stage-I model (:mod:`~privface.attributes.model`) reads SFace features through
OpenCV's DNN module, which gives no gradients. :class:`AttributeCNN` is the torch counterpart that
stage IV attacks: RGB pixels in [0, 1] in, 40 logits out (positive: present), every step
differentiable, the normalisation inside ``forward``. It takes the whole CelebA-aligned face
(178 x 218: hair, hat and neck included) at 64 x 78, small enough to train on a CPU.

The shipped weights (``models/celeba_attributes_cnn_v1.npz``; model card beside them) were
trained with ``privface train attributes-cnn`` on CelebA images 000001-008000; CelebA is for
non-commercial research only, and so are they.

Examples
--------
>>> import numpy as np
>>> model = load_attribute_cnn()
>>> x = attribute_cnn_inputs(np.full((218, 178, 3), 128, np.uint8))
>>> model(x).shape
torch.Size([1, 40])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from torch import nn

from privface.base.errors import InputError

from .model import CELEBA_ATTRIBUTES
from .torch_nets import (PixelNormalisation, ResNetBackbone, check_pixels, faces_to_tensor,
                         load_state, read_weights, save_weights)

DEFAULT_ATTRIBUTE_CNN = "celeba_attributes_cnn_v1.npz"
FORMAT = "privface.attribute-cnn/1"

# Mean and spread of CelebA's aligned crops per RGB channel (images 000001-008000).
CELEBA_MEAN = (0.506, 0.425, 0.383)
CELEBA_STD = (0.309, 0.290, 0.289)


class AttributeCNN(nn.Module):
    """CelebA's 40 attributes from an aligned face: ``forward(x) -> logits (n, 40)``.

    Parameters
    ----------
    widths : sequence of int
        Channels of the backbone's four stages.
    dropout : float
        Dropout before the linear head (training only).

    Attributes
    ----------
    input_size : (int, int)
        ``(height, width)`` of the input, 78 x 64: CelebA's aligned 218 x 178 crop scaled by 0.36.
    attributes : tuple of str
        The 40 attribute names in logit order (CelebA's attribute file's order).
    metadata : dict
        The training record of loaded weights (data, split, accuracy), empty otherwise.

    Examples
    --------
    >>> net = AttributeCNN(widths=(4, 8, 8, 8)).eval()
    >>> x = torch.rand(2, 3, *AttributeCNN.input_size, requires_grad=True)
    >>> logits = net(x)
    >>> logits.shape, len(net.attributes)
    (torch.Size([2, 40]), 40)
    >>> logits[:, net.attributes.index("Smiling")].sum().backward()
    >>> x.grad.shape
    torch.Size([2, 3, 78, 64])
    """

    input_size: tuple[int, int] = (78, 64)
    attributes: tuple[str, ...] = CELEBA_ATTRIBUTES

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), dropout: float = 0.2) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.normalise = PixelNormalisation(CELEBA_MEAN, CELEBA_STD)
        self.backbone = ResNetBackbone(self.widths)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.widths[-1], len(self.attributes))
        self.metadata: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 40)`` of RGB faces ``(n, 3, 78, 64)`` with values in [0, 1]."""
        check_pixels(x, self.input_size, "AttributeCNN")
        features = self.backbone(self.normalise(x)).mean(dim=(2, 3))
        return self.head(self.dropout(features))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """1 / -1 per attribute (int8, CelebA's coding), evaluated in batches without gradients.

        Examples
        --------
        >>> AttributeCNN(widths=(4, 8, 8, 8)).eval().predict(torch.zeros(3, 3, 78, 64)).shape
        (3, 40)
        """
        if len(x) == 0:
            return np.zeros((0, len(self.attributes)), np.int8)
        logits = torch.cat([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        return np.where(logits.cpu().numpy() > 0, 1, -1).astype(np.int8)

    def save(self, path: str | os.PathLike) -> None:
        """Write the weights and :attr:`metadata` to a ``.npz`` file (atomically; no pickle)."""
        save_weights(self, path, {"format": FORMAT, "widths": list(self.widths),
                                  "attributes": list(self.attributes),
                                  "input_size": list(self.input_size),
                                  "metadata": self.metadata})

    @classmethod
    def load(cls, path: str | os.PathLike) -> AttributeCNN:
        """Read weights written by :meth:`save`; the network is in eval mode on the CPU.

        Raises
        ------
        InputError
            Not such a file (a pickle, say: never unpickled), another format, or weights that
            do not fit the network; the message names the file.
        """

        state, header = read_weights(path, FORMAT)
        if tuple(header.get("attributes", ())) != cls.attributes or \
                tuple(header.get("input_size", ())) != cls.input_size:
            raise InputError("the weights are for other attributes or another input size than "
                             "AttributeCNN's", file=str(path))
        model = cls(widths=header["widths"])
        load_state(model, state, str(path))
        model.metadata = header.get("metadata", {})
        return model.eval()


def attribute_cnn_inputs(aligned: np.ndarray | Sequence[np.ndarray], *,
                         channels: str = "rgb") -> torch.Tensor:
    """Faces aligned to CelebA's geometry -> :class:`AttributeCNN`'s input ``(n, 3, 78, 64)``.

    Parameters
    ----------
    aligned : ndarray or sequence of ndarray
        uint8 faces, one ``(h, w, 3)`` or a batch ``(n, h, w, 3)``, as privface's alignment makes
        them (``align_face(...).image``: 178 x 218 RGB) or any scaled copy (CelebA's crops).
    channels : {"rgb", "bgr"}
        Channel order of ``aligned`` (privface gives RGB; OpenCV's ``imread`` BGR).

    Examples
    --------
    >>> attribute_cnn_inputs(np.zeros((4, 218, 178, 3), np.uint8)).shape
    torch.Size([4, 3, 78, 64])
    """
    return faces_to_tensor(aligned, AttributeCNN.input_size, channels=channels)


def default_attribute_cnn_path() -> Path:
    """Where the shipped weights lie inside the installed package."""
    return Path(str(files("privface.attributes") / "models" / DEFAULT_ATTRIBUTE_CNN))


def load_attribute_cnn(path: str | os.PathLike | None = None) -> AttributeCNN:
    """The shipped :class:`AttributeCNN` (or the weights at ``path``), in eval mode on the CPU.

    Each call reads the file again and returns a fresh network, which an attack may move or
    modify freely. CelebA is for non-commercial research only, and so are the shipped weights.
    """
    return AttributeCNN.load(path if path is not None else default_attribute_cnn_path())
