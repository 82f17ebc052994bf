"""A differentiable face recognizer: a small torch embedding network, and a gallery classifier.

SFace runs through OpenCV and dlib's ResNet through dlib: neither gives gradients, so stage IV
cannot attack them directly. :class:`FaceEmbeddingNet` is a recognizer it can attack: RGB pixels
in [0, 1] in, an L2-normalised 128-d embedding out, compared by cosine distance like SFace. It
reads the central face square of a CelebA-aligned crop (see :data:`FACE_BOX`) at 64 x 64.
:class:`GalleryClassifier` turns it into a classifier over known people: logits are scaled cosine
similarities to each person's mean embedding, so "does the attack change who the face is?" is an
ordinary classification question.

The shipped weights (``models/celeba_face_embedding_v1.npz``; model card beside them) were
trained here from scratch with ``privface train face-embedding`` on 160 identities of the shared
CelebA set (CosFace loss); the network is privface's own, no third-party weights are involved.
Their match thresholds (cosine distance at a false-accept rate) were calibrated on impostor pairs
of 40 other identities, never seen in training. CelebA is for non-commercial research only, and
so are the weights. It is a much weaker recognizer than SFace (see the model card): use it as the
white-box target, and measure transfer to SFace and dlib with ``privface evaluate``.

Examples
--------
>>> import numpy as np
>>> net = load_face_embedding_net()
>>> e = net(embedding_net_inputs(np.full((2, 218, 178, 3), 128, np.uint8)))
>>> e.shape, [round(float(v), 4) for v in e.detach().norm(dim=1)]
(torch.Size([2, 128]), [1.0, 1.0])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from privface.base.errors import InputError

from .alignment import align_face
from .recognizers import FaceRecognizer
from .torch_nets import (PixelNormalisation, ResNetBackbone, check_pixels, faces_to_tensor,
                         load_state, read_weights, save_weights)

DEFAULT_FACE_EMBEDDING = "celeba_face_embedding_v1.npz"
FORMAT = "privface.face-embedding/1"

#: The face square read from a CelebA-aligned crop, as fractions of its width and height:
#: columns 25-153 and rows 58-186 of the 178 x 218 crop (brows to chin, ears at the edges).
FACE_BOX = (25 / 178, 58 / 218, 153 / 178, 186 / 218)

# Mean and spread per RGB channel of that square over the shared 200-identity CelebA set.
FACE_MEAN = (0.553, 0.425, 0.357)
FACE_STD = (0.288, 0.251, 0.238)


class FaceEmbeddingNet(nn.Module):
    """A face -> an L2-normalised identity embedding: ``forward(x) -> (n, dimension)``.

    Parameters
    ----------
    widths : sequence of int
        Channels of the backbone's four stages.
    dimension : int
        Length of the embedding.

    Attributes
    ----------
    input_size : (int, int)
        ``(height, width)`` of the input, 64 x 64: :data:`FACE_BOX` of a CelebA-aligned crop.
    thresholds : dict of float to float
        Cosine-distance match thresholds by false-accept rate (calibrated on held-out impostor
        pairs when loaded from a trained file; empty otherwise). Two faces match when
        ``1 - cos <= thresholds[far]``.
    metadata : dict
        The training record of loaded weights.

    Examples
    --------
    >>> net = FaceEmbeddingNet(widths=(4, 8, 8, 8), dimension=16).eval()
    >>> x = torch.rand(3, 3, *FaceEmbeddingNet.input_size, requires_grad=True)
    >>> e = net(x)
    >>> e.shape
    torch.Size([3, 16])
    >>> (e[0] @ e[1]).backward()
    >>> bool(x.grad.abs().sum() > 0)
    True
    """

    input_size: tuple[int, int] = (64, 64)

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), dimension: int = 128) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.dimension = int(dimension)
        self.normalise = PixelNormalisation(FACE_MEAN, FACE_STD)
        self.backbone = ResNetBackbone(self.widths)
        # Embedding from the flattened final map (not its mean): where a feature lies on the face
        # matters for identity. 64 x 64 input gives a 2 x 2 map.
        cells = _map_cells(self.input_size)
        self.embed = nn.Sequential(nn.Dropout(0.1), nn.Linear(self.widths[-1] * cells, dimension),
                                   nn.BatchNorm1d(dimension))
        self.thresholds: dict[float, float] = {}
        self.metadata: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings ``(n, dimension)`` of RGB faces ``(n, 3, 64, 64)`` in [0, 1]."""
        check_pixels(x, self.input_size, "FaceEmbeddingNet")
        features = self.backbone(self.normalise(x)).flatten(1)
        return F.normalize(self.embed(features), dim=1)

    @torch.no_grad()
    def embed_faces(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Embeddings as a float32 array, in batches, without gradients (for galleries).

        Examples
        --------
        >>> FaceEmbeddingNet(widths=(4, 8, 8, 8), dimension=8).eval().embed_faces(
        ...     torch.zeros(5, 3, 64, 64)).shape
        (5, 8)
        """
        if len(x) == 0:
            return np.zeros((0, self.dimension), np.float32)
        return torch.cat([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
                         ).cpu().numpy().astype(np.float32)

    def match_threshold(self, far: float) -> float:
        """The cosine-distance threshold calibrated at false-accept rate ``far``.

        Examples
        --------
        >>> net = FaceEmbeddingNet(widths=(4, 8, 8, 8))
        >>> net.thresholds = {0.01: 0.55}
        >>> net.match_threshold(1e-2)
        0.55
        >>> net.match_threshold(0.5)
        Traceback (most recent call last):
        ...
        ValueError: no threshold calibrated at FAR 0.5; calibrated: [0.01]
        """
        for key, value in self.thresholds.items():
            if np.isclose(key, far, rtol=1e-9, atol=0.0):
                return float(value)
        raise ValueError(f"no threshold calibrated at FAR {far}; calibrated: "
                         f"{sorted(self.thresholds)}")

    def save(self, path: str | os.PathLike) -> None:
        """Write weights, thresholds and metadata to a ``.npz`` file (atomically; no pickle)."""
        save_weights(self, path, {
            "format": FORMAT, "widths": list(self.widths), "dimension": self.dimension,
            "input_size": list(self.input_size), "face_box": list(FACE_BOX),
            "thresholds": [[far, value] for far, value in sorted(self.thresholds.items())],
            "metadata": self.metadata})

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaceEmbeddingNet:
        """Read weights written by :meth:`save`; eval mode, CPU.

        Raises
        ------
        InputError
            Not such a file (a pickle is never unpickled), another format, or weights that do
            not fit the network; the message names the file.
        """
        state, header = read_weights(path, FORMAT)
        if tuple(header.get("input_size", ())) != cls.input_size or \
                not np.allclose(header.get("face_box", ()), FACE_BOX):
            raise InputError("the weights are for another input size or face square than "
                             "FaceEmbeddingNet's", file=str(path))
        model = cls(widths=header["widths"], dimension=header["dimension"])
        load_state(model, state, str(path))
        model.thresholds = {float(far): float(value) for far, value in header["thresholds"]}
        model.metadata = header.get("metadata", {})
        return model.eval()


def _map_cells(size: tuple[int, int]) -> int:
    # Five stride-2 steps (stem and four stages), each rounding up.
    height, width = size
    for _ in range(5):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height * width


class GalleryClassifier(nn.Module):
    """A face recognizer as a classifier over a gallery of known people.

    ``forward(x)`` gives logits ``(n, C)``: ``scale`` times the cosine similarity of each face's
    embedding to each person's mean gallery embedding (re-normalised). A softmax over them is a
    probability over the gallery's people, and an attack that moves the arg-max has changed who
    the face is.

    Parameters
    ----------
    net : FaceEmbeddingNet
    gallery : Tensor or ndarray
        ``(m, dimension)`` embeddings of the gallery's faces (several per person allowed).
    labels : sequence
        ``(m,)`` person of each gallery embedding. The classes are the distinct labels, sorted
        (:attr:`classes`); one embedding per person makes ``gallery`` the ``(C, dimension)``
        class matrix itself.
    scale : float
        Logit scale (the CosFace scale the shipped network was trained with).

    Examples
    --------
    >>> net = FaceEmbeddingNet(widths=(4, 8, 8, 8), dimension=8).eval()
    >>> faces = torch.rand(4, 3, 64, 64)
    >>> clf = GalleryClassifier(net, net(faces).detach(), ["ann", "bob", "ann", "cy"])
    >>> clf.classes
    ('ann', 'bob', 'cy')
    >>> clf(faces).shape
    torch.Size([4, 3])
    >>> [clf.classes[i] for i in clf(faces[[1, 3]]).argmax(1).tolist()]
    ['bob', 'cy']
    """

    def __init__(self, net: FaceEmbeddingNet, gallery: torch.Tensor | np.ndarray,
                 labels: Sequence, scale: float = 30.0) -> None:
        super().__init__()
        gallery = torch.as_tensor(np.asarray(gallery, np.float32)) if \
            not isinstance(gallery, torch.Tensor) else gallery.detach().float()
        labels = np.asarray(labels)
        if gallery.dim() != 2 or gallery.shape[1] != net.dimension:
            raise ValueError(f"gallery must be (m, {net.dimension}) embeddings, got "
                             f"{tuple(gallery.shape)}")
        if labels.shape != (len(gallery),):
            raise ValueError(f"need one label per gallery embedding: {len(gallery)} embeddings, "
                             f"labels of shape {labels.shape}")
        if len(gallery) == 0:
            raise ValueError("the gallery is empty")
        classes, inverse = np.unique(labels, return_inverse=True)
        onehot = torch.zeros(len(classes), len(gallery))
        onehot[torch.from_numpy(inverse.reshape(-1)), torch.arange(len(gallery))] = 1.0
        means = onehot @ F.normalize(gallery.cpu(), dim=1)
        self.net = net
        self.classes = tuple(c.item() if hasattr(c, "item") else c for c in classes)
        self.scale = float(scale)
        self.register_buffer("centres", F.normalize(means, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, C)``: ``scale * cos(embedding, person's mean embedding)``."""
        return self.scale * self.net(x) @ self.centres.T

    def cosine_distances(self, x: torch.Tensor) -> torch.Tensor:
        """``1 - cos`` to each person's mean embedding, comparable with ``net.thresholds``.

        The thresholds were calibrated on pairs of single photos; a mean over several photos
        of a person is a steadier reference, so a match at the threshold is if anything
        conservative (the true person is matched at least as often as with one photo).
        """
        return 1.0 - self(x) / self.scale

    def match_logit(self, far: float) -> float:
        """The logit at and above which a face matches a person, at the net's calibrated FAR.

        ``scale * (1 - threshold)``: the same decision as :meth:`cosine_distances` ``<=``
        ``net.match_threshold(far)``, so "the identity match breaks" is a logit falling below it.

        Examples
        --------
        >>> net = FaceEmbeddingNet(widths=(4, 8, 8, 8), dimension=2)
        >>> net.thresholds = {1e-3: 0.4}
        >>> GalleryClassifier(net, np.eye(2), ["a", "b"], scale=10.0).match_logit(1e-3)
        6.0
        """
        return self.scale * (1.0 - self.net.match_threshold(far))


class EmbeddingNetRecognizer(FaceRecognizer):
    """:class:`FaceEmbeddingNet` behind privface's recognizer interface (cosine distance).

    Its chip is the face aligned to CelebA's geometry from the 68 landmarks, as stage I aligns
    it, so it takes photos like SFace and dlib do; pass an instance where privface takes
    recognizers, e.g. ``evaluate_anonymization(..., recognizers=["sface", "dlib",
    EmbeddingNetRecognizer()])``, to measure a white-box attack on the network that was attacked.

    Examples
    --------
    >>> rec = EmbeddingNetRecognizer()
    >>> rec.embed_chips([np.zeros((218, 178, 3), np.uint8)]).shape
    (1, 128)
    """

    name = "privface-torch"
    metric = "cosine"

    def __init__(self, net: FaceEmbeddingNet | None = None) -> None:
        self.net = net if net is not None else load_face_embedding_net()

    def chip(self, image: np.ndarray, face, landmarks68: np.ndarray) -> np.ndarray:
        return align_face(image, landmarks68).image

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        return self.net.embed_faces(embedding_net_inputs(list(chips)))


def embedding_net_inputs(aligned: np.ndarray | Sequence[np.ndarray], *,
                         channels: str = "rgb") -> torch.Tensor:
    """Faces aligned to CelebA's geometry -> :class:`FaceEmbeddingNet`'s input ``(n, 3, 64, 64)``.

    Cuts :data:`FACE_BOX` out of each face and resizes it to 64 x 64.

    Parameters
    ----------
    aligned : ndarray or sequence of ndarray
        uint8 faces, one ``(h, w, 3)`` or a batch ``(n, h, w, 3)``, as privface's alignment makes
        them (178 x 218 RGB) or any scaled copy of that geometry.
    channels : {"rgb", "bgr"}
        Channel order of ``aligned``.

    Examples
    --------
    >>> embedding_net_inputs(np.zeros((218, 178, 3), np.uint8)).shape
    torch.Size([1, 3, 64, 64])
    """
    return faces_to_tensor(aligned, FaceEmbeddingNet.input_size, box=FACE_BOX, channels=channels)


def default_face_embedding_path() -> Path:
    """Where the shipped weights lie inside the installed package."""
    return Path(str(files("privface.attributes") / "models" / DEFAULT_FACE_EMBEDDING))


def load_face_embedding_net(path: str | os.PathLike | None = None) -> FaceEmbeddingNet:
    """The shipped :class:`FaceEmbeddingNet` (or the weights at ``path``): eval mode, CPU.

    Each call returns a fresh network. CelebA is for non-commercial research only, and so are the
    shipped weights.
    """
    return FaceEmbeddingNet.load(path if path is not None else default_face_embedding_path())
