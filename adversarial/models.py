"""The models privface attacks, read in the aligned frame a perturbation lives in.

A perturbation is computed on faces aligned to CelebA's geometry (see
:mod:`~privface.adversarial.photos`), at some resolution ``(height, width)``. A model may take
another input: a tighter crop of the face, another size. :class:`FrameInput` puts the model's own
input step in front of it, differentiably (the cut, then the antialiased bilinear resize that
:func:`~privface.attributes.torch_nets.faces_to_tensor` applies to uint8 faces), so that the
attack sees the whole chain from frame pixels to logits.

:func:`attribute_classifier` and :func:`gallery_classifier` build the two targets of stage IV
from privface's differentiable models (:mod:`privface.attributes.cnn`,
:mod:`privface.attributes.embedding_net`), which are imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .classifiers import DEFAULT_ATTRIBUTES, MultiClass, MultiLabel, evaluating


class FrameInput(nn.Module):
    """``model(resize(cut(x)))``: a model that takes aligned faces of any size.

    Parameters
    ----------
    model : nn.Module
        Takes ``(N, 3, *input_size)`` floats in [0, 1].
    input_size : (int, int)
        The model's ``(height, width)``.
    box : (left, top, right, bottom), optional
        Cut this part of the frame first, in fractions of its width and height (rounded to
        pixels as :func:`~privface.attributes.torch_nets.faces_to_tensor` does).

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    >>> framed = FrameInput(net, (4, 4), box=(0.25, 0.25, 0.75, 0.75))
    >>> framed(torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 2])
    """

    def __init__(self, model: nn.Module, input_size: Sequence[int],
                 box: Sequence[float] | None = None) -> None:
        super().__init__()
        self.model = model
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.box = None if box is None else tuple(float(b) for b in box)
        if self.box is not None and not (0 <= self.box[0] < self.box[2] <= 1 and
                                         0 <= self.box[1] < self.box[3] <= 1):
            raise ValueError(f"box must be (left, top, right, bottom) fractions, got {box}")
        self.attributes = getattr(model, "attributes", None)
        self.training = model.training  # this wrapper's own flag only: the model keeps its mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.box is not None:
            height, width = x.shape[2:]
            left, top = round(self.box[0] * width), round(self.box[1] * height)
            right, bottom = round(self.box[2] * width), round(self.box[3] * height)
            x = x[:, :, top:bottom, left:right]
        if tuple(x.shape[2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False,
                              antialias=True).clamp(0.0, 1.0)
        return self.model(x)


def framed(model: nn.Module, frame_size: Sequence[int] | None,
           box: Sequence[float] | None = None) -> nn.Module:
    """``model`` itself when the frame is its input, else a :class:`FrameInput` around it.

    The model's ``input_size`` attribute says what it takes; ``box`` what part of the frame.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 2)
    >>> net.input_size = (4, 4)
    >>> framed(net, (4, 4)) is net, type(framed(net, (8, 8))).__name__
    (True, 'FrameInput')
    """
    size = tuple(getattr(model, "input_size", ()) or ())
    if frame_size is None or (tuple(frame_size) == size and box is None):
        return model
    if not size:
        raise ValueError(f"{type(model).__name__} does not say its input_size; cannot read "
                         f"it in a {tuple(frame_size)} frame")
    return FrameInput(model, size, box)


def attribute_classifier(model: nn.Module | None = None, *,
                         attributes: Sequence[str] | str = DEFAULT_ATTRIBUTES,
                         frame_size: Sequence[int] | None = None) -> MultiLabel:
    """The attribute CNN as a :class:`~.classifiers.MultiLabel` target, in the given frame.

    Parameters
    ----------
    model : nn.Module, optional
        Default: the shipped :class:`~privface.attributes.cnn.AttributeCNN`.
    attributes : sequence of str or "all"
        The attributes whose flip fools it.
    frame_size : (int, int), optional
        The perturbation's resolution in CelebA's aligned geometry; default the model's input.
    """
    if model is None:
        # imported on use: it loads torch
        from privface.attributes.cnn import load_attribute_cnn

        model = load_attribute_cnn()
    names = getattr(model, "attributes", None)
    return MultiLabel(framed(model, frame_size), attributes=attributes, names=names)


@torch.no_grad()
def embed(net: nn.Module, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """Embeddings of a batch of frame images, in batches, without gradients.

    Examples
    --------
    >>> embed(torch.nn.Flatten(), torch.zeros(5, 3, 2, 2), batch_size=2).shape
    torch.Size([5, 12])
    """
    with evaluating(net):
        return torch.cat([net(images[i:i + batch_size])
                          for i in range(0, len(images), batch_size)])


#: The frame a recognizer's perturbation lives in by default: CelebA's aligned geometry at half
#: size, where the embedding network's face square (128 x 128 of 178 x 218) is 64 x 64, its input.
RECOGNIZER_FRAME = (109, 89)


def gallery_classifier(images: torch.Tensor, identities: Sequence | np.ndarray, *,
                       net: nn.Module | None = None, box: Sequence[float] | None = None,
                       candidates: int = 10) -> MultiClass:
    """A face recognizer turned into a classifier over a gallery of identities.

    The gallery is the embeddings of ``images`` (faces in the frame) with their identities; the
    logits are :class:`~privface.attributes.embedding_net.GalleryClassifier`'s (scaled cosine
    similarity to each person's mean embedding), and fooling it means the top-1 identity
    changes.

    Parameters
    ----------
    images : Tensor (N, 3, H, W)
        Gallery faces in [0, 1], in CelebA's aligned geometry at the frame's resolution.
    identities : sequence
        One identity per gallery face.
    net : nn.Module, optional
        Default: the shipped :class:`~privface.attributes.embedding_net.FaceEmbeddingNet`.
    box : (left, top, right, bottom), optional
        The part of the frame the network reads; default its
        :data:`~privface.attributes.embedding_net.FACE_BOX`.
    candidates : int
        DeepFool's candidate classes.
    """
    # imported on use: it loads torch
    from privface.attributes.embedding_net import (FACE_BOX, GalleryClassifier,
                                                   load_face_embedding_net)

    if net is None:
        net = load_face_embedding_net()
    if len(identities) != len(images):
        raise ValueError(f"expected one identity per gallery image ({len(images)}), got "
                         f"{len(identities)}")
    box = FACE_BOX if box is None else box
    gallery = embed(FrameInput(net, net.input_size, box), images)
    classifier = GalleryClassifier(net, gallery, np.asarray(identities))
    classifier.training = net.training  # a new module starts in training mode; follow the net
    return MultiClass(FrameInput(classifier, net.input_size, box), candidates=candidates)
