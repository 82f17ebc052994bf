"""Training the torch face models on labelled images: data, augmentation, the loop, accuracy.

Images are decoded once (safely, through :func:`~privface.attributes.images.load_image`) into one
uint8 tensor at the model's input size; every batch is then augmented on the fly with one
vectorised random affine warp (scale, shift, small rotation, mirror) and a colour jitter, so that
8,000 faces give a different view each epoch. The optimiser is SGD with Nesterov momentum under a
one-cycle learning-rate schedule, the usual recipe for training a ResNet from scratch in few
epochs. The last epoch's weights are kept: nothing is selected on the held-out images.

:func:`fit_attribute_cnn` trains :class:`~privface.attributes.cnn.AttributeCNN` on the first
images of a labelled folder and measures it on the rest (``privface train attributes-cnn``);
:mod:`~privface.attributes.embedding_training` does the same for the face embedding network.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from privface.base.errors import InputError

from .images import ImageError, load_image
from .torch_nets import faces_to_tensor, round_to_storage

Log = Callable[[str], None]


def resolve_seed(seed: int | None) -> int:
    """The seed to train with: ``seed``, or a fresh one from OS entropy (recorded either way).

    Examples
    --------
    >>> resolve_seed(7)
    7
    >>> 0 <= resolve_seed(None) < 2 ** 31
    True
    """
    return int(seed) if seed is not None else secrets.randbits(31)


def read_faces(folder: str | os.PathLike, names: Sequence[str], size: tuple[int, int], *,
               box: tuple[float, float, float, float] | None = None
               ) -> tuple[list[str], torch.Tensor, pd.DataFrame]:
    """Decode the named images of ``folder`` into one uint8 tensor ``(n, 3, height, width)``.

    Each image is taken as a face already aligned to CelebA's geometry (CelebA's aligned crops at
    any scale), cut to ``box`` when given, and resized to ``size``. Unreadable images are left
    out and listed with the reason.

    Returns
    -------
    names : list of str
        The images kept, in the order given.
    faces : Tensor
        uint8, ``(len(names), 3, height, width)``.
    skipped : DataFrame
        ``file`` and ``reason`` of the images left out.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (89, 109), (255, 0, 0)).save(d / "a.png")
    >>> kept, faces, skipped = read_faces(d, ["a.png", "b.png"], (109, 89))
    >>> kept, tuple(faces.shape), faces[0, :, 0, 0].tolist(), skipped["reason"].tolist()
    (['a.png'], (1, 3, 109, 89), [255, 0, 0], ['file not found'])
    """
    kept, tensors, skipped = [], [], []
    for name in names:
        try:
            image = load_image(Path(folder) / name)
        except ImageError as error:
            skipped.append({"file": name, "reason": error.message})
            continue
        tensors.append(_to_uint8(faces_to_tensor(image, size, box=box)))
        kept.append(name)
    faces = torch.cat(tensors) if tensors else torch.zeros((0, 3, *size), dtype=torch.uint8)
    return kept, faces, pd.DataFrame(skipped, columns=["file", "reason"])


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def augment(faces: torch.Tensor, generator: torch.Generator, *, scale: float = 0.08,
            shift: float = 0.06, rotation: float = 8.0, flip: bool = True,
            colour: float = 0.2) -> torch.Tensor:
    """A randomly warped and recoloured float copy in [0, 1] of a uint8 batch ``(n, 3, h, w)``.

    Per face: zoom by a factor in ``1 +- scale``, shift by up to ``shift`` of the size, rotate
    by up to ``rotation`` degrees (in pixel space, so no shear on non-square faces), mirror with
    probability 1/2, and scale brightness, contrast and saturation by factors in
    ``1 +- colour``. Borders are filled by reflection, as in CelebA's own crops.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> faces = torch.randint(0, 256, (4, 3, 20, 16), dtype=torch.uint8, generator=g)
    >>> out = augment(faces, g)
    >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
    (torch.Size([4, 3, 20, 16]), True, True)
    >>> plain = augment(faces, g, scale=0, shift=0, rotation=0, flip=False, colour=0)
    >>> bool(torch.allclose(plain, faces.float() / 255, atol=1e-5))
    True
    """
    n, _, height, width = faces.shape
    x = faces.float().div_(255.0)

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator).mul_(high - low).add_(low).to(faces.device)

    if scale or shift or rotation or flip:
        zoom = 1.0 / uniform(1.0 - scale, 1.0 + scale)  # output -> input: the inverse zoom
        angle = uniform(-rotation, rotation) * (math.pi / 180.0)
        cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
        mirror = torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if flip else torch.ones_like(cos)
        aspect = height / width
        # A rotation in pixels, written in affine_grid's coordinates ([-1, 1] on both axes).
        theta = torch.stack([
            torch.stack([cos * mirror, -sin * aspect, uniform(-2 * shift, 2 * shift)], dim=1),
            torch.stack([sin / aspect * mirror, cos, uniform(-2 * shift, 2 * shift)], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)
    if colour:
        shape = (n, 1, 1, 1)
        x = x * uniform(1.0 - colour, 1.0 + colour).view(shape)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * uniform(1.0 - colour, 1.0 + colour).view(shape) + mean
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * uniform(1.0 - colour, 1.0 + colour).view(shape) + grey
    return x.clamp_(0.0, 1.0)


def train_epochs(model: torch.nn.Module, n: int, step: Callable[[torch.Tensor], torch.Tensor],
                 *, epochs: int, batch_size: int, lr: float, weight_decay: float,
                 generator: torch.Generator, extra_parameters: Sequence = (),
                 log: Log | None = None) -> list[float]:
    """Minimise ``step(indices) -> loss`` over shuffled batches; the mean loss of each epoch.

    SGD (momentum 0.9, Nesterov) under a one-cycle schedule peaking at ``lr``; the last,
    incomplete batch of an epoch is dropped when there is a full one (batch norm needs more
    than one face).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> w = torch.nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 32)[:, None]
    >>> losses = train_epochs(w, 32, lambda i: ((w(x[i]) - 3 * x[i]) ** 2).mean(), epochs=5,
    ...                       batch_size=8, lr=0.1, weight_decay=0.0, generator=g)
    >>> losses[-1] < losses[0]
    True
    """
    if n < 2:
        raise InputError(f"need at least two training images, got {n}")
    batch_size = min(batch_size, n)
    per_epoch = n // batch_size
    parameters = [*model.parameters(), *extra_parameters]
    decay = [p for p in parameters if p.dim() > 1]  # no weight decay on biases and norms
    rest = [p for p in parameters if p.dim() <= 1]
    optimiser = torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                                 {"params": rest, "weight_decay": 0.0}],
                                lr=lr, momentum=0.9, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, epochs=epochs,
                                                   steps_per_epoch=per_epoch, pct_start=0.2)
    history = []
    model.to(memory_format=training_layout(model)).train()
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(n, generator=generator)
        for b in range(per_epoch):
            loss = step(order[b * batch_size:(b + 1) * batch_size])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        history.append(total / per_epoch)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.4f} "
                f"({time.perf_counter() - start:.0f} s)")
    model.to(memory_format=torch.contiguous_format).eval()
    return history


def training_layout(model: torch.nn.Module) -> torch.memory_format:
    """The memory layout :func:`train_epochs` trains ``model`` in; step functions lay out their
    batches the same way.

    Channels last runs convolutions about a third faster on a CPU. Not for networks with a
    strided 1 x 1 convolution of fewer than 8 input channels: its channels-last backward pass
    corrupts the heap in torch 2.13's CPU build (the tests train such tiny networks).

    Examples
    --------
    >>> from privface.attributes.torch_nets import ResNetBackbone
    >>> training_layout(ResNetBackbone((8, 16, 16, 16))) == torch.channels_last
    True
    >>> training_layout(ResNetBackbone((4, 8, 8, 8))) == torch.contiguous_format
    True
    """
    safe = all(m.in_channels >= 8 or m.kernel_size != (1, 1) or m.stride == (1, 1)
               for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return torch.channels_last if safe else torch.contiguous_format


def train_attribute_cnn(faces: torch.Tensor, labels: np.ndarray, *, epochs: int = 30,
                        batch_size: int = 128, lr: float = 0.1, weight_decay: float = 5e-4,
                        widths: Sequence[int] = (32, 64, 128, 256), seed: int | None = None,
                        device: str = "cpu", log: Log | None = None):
    """Train an :class:`~privface.attributes.cnn.AttributeCNN` from scratch.

    Parameters
    ----------
    faces : Tensor
        uint8 ``(n, 3, 78, 64)`` CelebA-aligned faces (see :func:`read_faces`).
    labels : ndarray
        ``(n, 40)`` CelebA labels, 1 / -1 (or 1 / 0), in the model's attribute order.
    seed : int, optional
        For the initial weights, batch order and augmentation; default from OS entropy. The
        seed used is recorded in the model's metadata.

    Examples
    --------
    >>> faces = torch.randint(0, 256, (8, 3, 78, 64), dtype=torch.uint8)
    >>> labels = np.where(np.arange(8)[:, None] % 2 == 0, 1, -1).repeat(40, axis=1)
    >>> model = train_attribute_cnn(faces, labels, epochs=1, batch_size=4, widths=(4, 4, 4, 4),
    ...                             seed=0)
    >>> model.training, model.metadata["seed"], len(model.metadata["loss_per_epoch"])
    (False, 0, 1)
    """
    # imported on use: it loads torch
    from .cnn import AttributeCNN

    labels = np.asarray(labels)
    expected = (len(faces), len(AttributeCNN.attributes))
    if labels.shape != expected:
        raise InputError(f"labels must have shape {expected} (one row per face, one column per "
                         f"attribute), got {labels.shape}")
    if tuple(faces.shape[1:]) != (3, *AttributeCNN.input_size) or faces.dtype != torch.uint8:
        raise InputError(f"faces must be uint8 (n, 3, {AttributeCNN.input_size[0]}, "
                         f"{AttributeCNN.input_size[1]}), got {tuple(faces.shape)} {faces.dtype}")
    seed = resolve_seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = AttributeCNN(widths=widths).to(device)
    faces = faces.to(device)
    targets = torch.from_numpy((labels > 0).astype(np.float32)).to(device)
    layout = training_layout(model)

    def step(index: torch.Tensor) -> torch.Tensor:
        index = index.to(device)
        x = augment(faces[index], generator).contiguous(memory_format=layout)
        return F.binary_cross_entropy_with_logits(model(x), targets[index])

    history = train_epochs(model, len(faces), step, epochs=epochs, batch_size=batch_size,
                           lr=lr, weight_decay=weight_decay, generator=generator, log=log)
    model.metadata.update(seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                          weight_decay=weight_decay, train_images=len(faces),
                          loss_per_epoch=[round(v, 5) for v in history])
    return round_to_storage(model.cpu())


def fit_attribute_cnn(folder: str | os.PathLike, labels: pd.DataFrame, *,
                      train_count: int | None, log: Log | None = None, **options):
    """Train on the first ``train_count`` labelled images of ``folder``; measure on the rest.

    Images are those both in ``folder`` and in ``labels``, in file-name order; each is taken as
    a CelebA-aligned crop (any scale of 178 x 218). ``options`` go to
    :func:`train_attribute_cnn`.

    Returns
    -------
    model : AttributeCNN
        Trained; ``metadata`` records the data and, with a held-out part, the accuracy.
    accuracy : DataFrame or None
        Per-attribute held-out accuracy next to the majority baseline
        (:func:`~privface.attributes.training.accuracy_table`).
    skipped : DataFrame
        Images left out (``file``, ``reason``).
    """
    # imported on use: it loads Pillow, torch
    from .cnn import AttributeCNN
    from .training import accuracy_table, labelled_names

    missing = [a for a in AttributeCNN.attributes if a not in labels.columns]
    if missing:
        raise InputError(f"the labels lack {len(missing)} of CelebA's 40 attributes, e.g. "
                         f"{missing[0]!r}", column=missing[0])
    labels = labels[list(AttributeCNN.attributes)]
    names, n_train = labelled_names(folder, labels, train_count)
    say = log or (lambda line: None)
    say(f"reading {len(names):,} images of {folder}")
    kept, faces, skipped = read_faces(folder, names, AttributeCNN.input_size)
    chosen = set(names[:n_train])
    train = [i for i, name in enumerate(kept) if name in chosen]
    test = [i for i, name in enumerate(kept) if name not in chosen]
    train_labels = labels.loc[[kept[i] for i in train]]
    model = train_attribute_cnn(faces[train], train_labels.to_numpy(), log=log, **options)
    model.metadata.update(trained_on=f"{kept[train[0]]} .. {kept[train[-1]]}")
    accuracy = None
    if test:
        test_names = [kept[i] for i in test]
        accuracy = accuracy_table(model.predict(faces[test].float() / 255.0),
                                  labels.loc[test_names], train_labels)
        model.metadata["test_accuracy"] = {
            "images": f"{test_names[0]} .. {test_names[-1]} ({len(test_names):,} images)",
            "mean": float(accuracy["accuracy"].mean()),
            "majority_baseline_mean": float(accuracy["majority_baseline"].mean()),
            "per_attribute": accuracy.round(4).to_dict(orient="index")}
    return model, accuracy, skipped
