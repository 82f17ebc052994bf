"""Training and measuring the face embedding network on photos of known people.

:func:`train_face_embedding` fits :class:`~privface.attributes.embedding_net.FaceEmbeddingNet`
with a CosFace loss (Wang et al. 2018: logits ``s * (cos - m)`` for the true person, ``s * cos``
for the others, over a learnt unit vector per training person), with the augmentation and
optimiser of :mod:`~privface.attributes.torch_training`. :func:`verification_metrics` measures a
recognizer on every pair of held-out photos: ROC AUC, and the true-accept rate at thresholds set
on the impostor pairs at fixed false-accept rates with
:func:`~privface.attributes.recognizers.calibrate_threshold`, the calibration ``privface
evaluate`` uses. :func:`fit_face_embedding` is ``privface train face-embedding``: hold out some
people, train on the rest, calibrate and measure on the held-out people.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from privface.base.errors import InputError

from .recognizers import calibrate_threshold, pairwise_distances
from .torch_nets import round_to_storage
from .torch_training import (Log, augment, read_faces, resolve_seed, train_epochs,
                             training_layout)

#: False-accept rates at which the shipped network's thresholds are calibrated.
FARS = (1e-2, 1e-3)


def cosface_logits(embeddings: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, *,
                   scale: float = 30.0, margin: float = 0.35) -> torch.Tensor:
    """CosFace logits: ``scale * (cos(e, w_j) - margin * [j is the true class])``.

    Examples
    --------
    >>> e = F.normalize(torch.tensor([[1.0, 0.0]]), dim=1)
    >>> w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> cosface_logits(e, w, torch.tensor([0]), scale=10, margin=0.5).tolist()
    [[5.0, 0.0]]
    """
    cos = embeddings @ F.normalize(weight, dim=1).T
    return scale * (cos - margin * F.one_hot(target, cos.shape[1]).to(cos.dtype))


def train_face_embedding(faces: torch.Tensor, people: Sequence, *, epochs: int = 40,
                         batch_size: int = 128, lr: float = 0.1, weight_decay: float = 5e-4,
                         scale: float = 30.0, margin: float = 0.35,
                         widths: Sequence[int] = (32, 64, 128, 256), dimension: int = 128,
                         seed: int | None = None, device: str = "cpu", log: Log | None = None):
    """Train a :class:`~privface.attributes.embedding_net.FaceEmbeddingNet` from scratch.

    Parameters
    ----------
    faces : Tensor
        uint8 ``(n, 3, 64, 64)`` face squares (see
        :func:`~privface.attributes.embedding_net.embedding_net_inputs`).
    people : sequence
        ``(n,)`` person of each face; at least two people.
    scale, margin : float
        CosFace's logit scale and cosine margin.
    seed : int, optional
        For the initial weights, batch order and augmentation; default from OS entropy. Recorded
        in the model's metadata.

    Examples
    --------
    >>> faces = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)
    >>> net = train_face_embedding(faces, [0, 1] * 4, epochs=1, batch_size=4,
    ...                            widths=(4, 4, 4, 4), dimension=8, seed=0)
    >>> net.training, net.metadata["train_people"]
    (False, 2)
    """
    # imported on use: it loads torch
    from .embedding_net import FaceEmbeddingNet

    if tuple(faces.shape[1:]) != (3, *FaceEmbeddingNet.input_size) or faces.dtype != torch.uint8:
        size = FaceEmbeddingNet.input_size
        raise InputError(f"faces must be uint8 (n, 3, {size[0]}, {size[1]}), got "
                         f"{tuple(faces.shape)} {faces.dtype}")
    classes, target = np.unique(np.asarray(people), return_inverse=True)
    if len(target) != len(faces) or len(classes) < 2:
        raise InputError(f"need one person per face and at least two people; got {len(target)} "
                         f"labels for {len(faces)} faces, {len(classes)} people")
    seed = resolve_seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = FaceEmbeddingNet(widths=widths, dimension=dimension).to(device)
    weight = torch.nn.Parameter(torch.randn(len(classes), dimension, device=device) * 0.01)
    faces = faces.to(device)
    target = torch.from_numpy(target.reshape(-1)).to(device)
    layout = training_layout(net)

    def step(index: torch.Tensor) -> torch.Tensor:
        index = index.to(device)
        x = augment(faces[index], generator).contiguous(memory_format=layout)
        logits = cosface_logits(net(x), weight, target[index], scale=scale, margin=margin)
        return F.cross_entropy(logits, target[index])

    history = train_epochs(net, len(faces), step, epochs=epochs, batch_size=batch_size, lr=lr,
                           weight_decay=weight_decay, generator=generator,
                           extra_parameters=[weight], log=log)
    net.metadata.update(seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                        weight_decay=weight_decay, loss="CosFace", scale=scale, margin=margin,
                        train_images=len(faces), train_people=len(classes),
                        loss_per_epoch=[round(v, 5) for v in history])
    return round_to_storage(net.cpu())


def verification_metrics(embeddings: np.ndarray, people: Sequence, *, metric: str = "cosine",
                         fars: Sequence[float] = FARS) -> dict:
    """A recognizer on every pair of faces: ROC AUC, thresholds and true-accept rates at FARs.

    Genuine pairs are two faces of one person, impostor pairs two faces of different people.
    The threshold at each false-accept rate comes from the impostor pairs
    (:func:`~privface.attributes.recognizers.calibrate_threshold`); the true-accept rate is
    the share of genuine pairs at or below it. The AUC is the probability that a random genuine
    pair is closer than a random impostor pair (ties count one half).

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> m = verification_metrics(e, [1, 1, 2, 2], fars=[0.25])
    >>> m["roc_auc"], m["genuine_pairs"], m["impostor_pairs"], m["tar"]["0.25"]
    (1.0, 2, 4, 1.0)
    """
    from scipy.stats import rankdata

    people = np.asarray(people)
    if len(people) != len(embeddings):
        raise ValueError(f"need one person per embedding: {len(embeddings)} embeddings, "
                         f"{len(people)} labels")
    rows, columns = np.triu_indices(len(people), k=1)
    distances = pairwise_distances(embeddings, embeddings, metric)[rows, columns]
    same = people[rows] == people[columns]
    genuine, impostor = distances[same], distances[~same]
    if not len(genuine) or not len(impostor):
        raise ValueError("need both genuine pairs (two faces of one person) and impostor pairs")
    # Mann-Whitney: genuine pairs should be the closer ones, so rank the negated distances.
    ranks = rankdata(-distances)[same]
    auc = (ranks.sum() - len(genuine) * (len(genuine) + 1) / 2) / (len(genuine) * len(impostor))
    thresholds = {float(far): calibrate_threshold(impostor, far) for far in fars}
    return {"roc_auc": float(auc), "genuine_pairs": int(len(genuine)),
            "impostor_pairs": int(len(impostor)),
            "thresholds": {f"{far:g}": t for far, t in thresholds.items()},
            "tar": {f"{far:g}": float(np.mean(genuine <= t)) for far, t in thresholds.items()}}


def split_people(people: pd.Series, holdout: int) -> tuple[list, list]:
    """The people to train on and the ``holdout`` to measure on: the last ones by label.

    Examples
    --------
    >>> split_people(pd.Series([5, 3, 9, 3, 1]), 2)
    ([1, 3], [5, 9])
    """
    persons = sorted(pd.unique(people).tolist())
    if not 0 <= holdout <= len(persons) - 2:
        raise InputError(f"can hold out between 0 and {len(persons) - 2} of the {len(persons)} "
                         f"people (two are needed to train), got {holdout}")
    return persons[:len(persons) - holdout], persons[len(persons) - holdout:]


def _photos_of(folder: str | os.PathLike, identities: pd.Series) -> pd.Series:
    """Identity of each image of ``folder`` that the identity file names, sorted by name."""
    present = {p.name for p in Path(folder).iterdir()} if Path(folder).is_dir() else set()
    if not present:
        raise InputError("expected a folder of images", file=str(folder))
    people = identities[identities.index.isin(list(present))].sort_index()
    if people.empty:
        raise InputError("none of the images of this folder is in the identity file (file "
                         "names must match its first column)", file=str(folder))
    return people


def fit_face_embedding(folder: str | os.PathLike, identities: pd.Series, *, holdout: int = 40,
                       extra_folders: Sequence[str | os.PathLike] = (), log: Log | None = None,
                       **options):
    """Train on the photos of most people in ``folder``; calibrate and measure on ``holdout``.

    Photos are the images both in ``folder`` and in ``identities`` (CelebA's identity file),
    each taken as a CelebA-aligned crop. The people of ``folder`` with the ``holdout`` largest
    identity numbers are held out: never seen in training, they give the match thresholds
    (impostor pairs at :data:`FARS`) and the verification numbers. ``extra_folders`` add
    training photos of other people (held-out people, images already in ``folder`` under the
    same name, and people with a single photo are left out). ``options`` go to
    :func:`train_face_embedding`.

    Returns
    -------
    net : FaceEmbeddingNet
        Trained, with calibrated :attr:`thresholds` when people were held out; ``metadata``
        records the data and the held-out verification numbers.
    metrics : dict or None
        :func:`verification_metrics` on the held-out people.
    skipped : DataFrame
        Images left out (``file``, ``reason``).
    """
    # imported on use: it loads torch
    from .embedding_net import FACE_BOX, FaceEmbeddingNet

    people = _photos_of(folder, identities)
    train_people, test_people = split_people(people, holdout)
    say = log or (lambda line: None)
    say(f"reading {len(people):,} photos of {people.nunique():,} people in {folder}")
    size = FaceEmbeddingNet.input_size
    kept, faces, skipped = read_faces(folder, list(people.index), size, box=FACE_BOX)
    labels = people.loc[kept].to_numpy()
    train = np.isin(labels, train_people)
    train_faces, train_labels = [faces[torch.from_numpy(train)]], [labels[train]]
    described = f"{len(train_people)} people of {Path(folder).name} ({int(train.sum()):,} photos)"
    for extra in extra_folders:
        photos = _photos_of(extra, identities)
        photos = photos[~photos.isin(test_people) & ~photos.index.isin(people.index)]
        counts = photos.value_counts()
        photos = photos[photos.isin(counts[counts >= 2].index)]
        say(f"reading {len(photos):,} photos of {photos.nunique():,} other people in {extra}")
        names, more, left_out = read_faces(extra, list(photos.index), size, box=FACE_BOX)
        train_faces.append(more)
        train_labels.append(photos.loc[names].to_numpy())
        skipped = pd.concat([skipped, left_out], ignore_index=True)
        described += f", {photos.nunique():,} of {Path(extra).name} ({len(names):,} photos)"
    net = train_face_embedding(torch.cat(train_faces), np.concatenate(train_labels), log=log,
                               **options)
    net.metadata.update(trained_on=described)
    metrics = None
    if test_people:
        test = ~train
        embeddings = net.embed_faces(faces[torch.from_numpy(test)].float() / 255.0)
        metrics = verification_metrics(embeddings, labels[test])
        net.thresholds = {float(far): float(t) for far, t in metrics["thresholds"].items()}
        net.metadata["held_out"] = {
            "people": len(test_people), "photos": int(test.sum()),
            "identities": f"{test_people[0]} .. {test_people[-1]}", **metrics}
    return net, metrics, skipped
