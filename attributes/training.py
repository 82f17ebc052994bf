"""Training and measuring the attribute model on labelled photos (CelebA's layout).

Training images go through the same detect -> landmarks -> align path as photos at prediction time,
so the model learns from exactly the crops it will see. An image where no face is found is used as
it is (resized to 178 x 218) when it already has CelebA's aligned shape, and left out otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.workers import worker_pool

from .analysis import FaceAnalyzer
from .images import ImageError, load_image
from .model import AttributeModel


@dataclass
class LabelledFeatures:
    """Attribute-model features of labelled images, and the images left out with the reason."""

    files: list[str]
    features: np.ndarray
    mirrored: np.ndarray | None
    skipped: pd.DataFrame


def aligned_crops(folder: str | os.PathLike, names: Sequence[str], *,
                  analyzer: FaceAnalyzer | None = None,
                  on_image: Callable[[str], None] | None = None
                  ) -> tuple[list[str], list[np.ndarray], list[dict]]:
    """CelebA-aligned crops of the largest face of each named image of ``folder``."""
    import cv2

    analyzer = analyzer or FaceAnalyzer()  # the attribute model is loaded only on use
    kept, crops, skipped = [], [], []
    for name in names:
        try:
            image = load_image(Path(folder) / name)
        except ImageError as error:
            skipped.append({"file": name, "reason": error.message})
        else:
            try:
                faces = analyzer.faces(image, max_faces=1)
            except ValueError:  # degenerate landmarks: treated as no usable face
                faces = []
            if faces:
                crops.append(faces[0].aligned.image)
                kept.append(name)
            elif abs(image.shape[0] / image.shape[1] - 218 / 178) < 0.02:
                # Already one of CelebA's aligned crops (the detector missed it): use it.
                crops.append(cv2.resize(image, (178, 218), interpolation=cv2.INTER_CUBIC))
                kept.append(name)
            else:
                skipped.append({"file": name, "reason": "no face found"})
        if on_image is not None:
            on_image(name)
    return kept, crops, skipped


def labelled_features(folder: str | os.PathLike, names: Sequence[str], model: AttributeModel,
                      *, mirrored: bool = False, workers: int = 1, chunk: int = 64,
                      on_images: Callable[[int], None] | None = None) -> LabelledFeatures:
    """Align the named images of ``folder`` and compute ``model``'s features for each.

    Parameters
    ----------
    mirrored : bool
        Also compute the features of each face's mirror image (for training with flips).
    workers : int
        Processes to run in parallel; each handles ``chunk`` images at a time, so the crops
        never pile up in memory.
    on_images : callable, optional
        Called with the number of images just finished (for progress bars).
    """
    chunks = [list(names[i:i + chunk]) for i in range(0, len(names), chunk)]
    tasks = [(folder, c, model, mirrored) for c in chunks]
    parts = []
    if workers > 1 and len(chunks) > 1:
        with worker_pool(min(workers, len(chunks))) as pool:
            for task, part in zip(tasks, pool.map(_features_chunk, tasks)):
                parts.append(part)
                if on_images is not None:
                    on_images(len(task[1]))
    else:
        for task in tasks:
            parts.append(_features_chunk(task))
            if on_images is not None:
                on_images(len(task[1]))
    dimension = model.extractor.dimension
    files = [name for part in parts for name in part[0]]
    stack = [part[1] for part in parts if len(part[1])]
    features = np.vstack(stack) if stack else np.zeros((0, dimension), np.float32)
    flipped = None
    if mirrored:
        stack = [part[2] for part in parts if len(part[2])]
        flipped = np.vstack(stack) if stack else np.zeros((0, dimension), np.float32)
    skipped = pd.DataFrame([s for part in parts for s in part[3]], columns=["file", "reason"])
    return LabelledFeatures(files, features, flipped, skipped)


def _features_chunk(task) -> tuple[list[str], np.ndarray, np.ndarray, list[dict]]:
    folder, names, model, mirrored = task
    kept, crops, skipped = aligned_crops(folder, names)
    features = model.features(crops)
    flipped = model.features([np.ascontiguousarray(c[:, ::-1]) for c in crops]) if mirrored \
        else np.zeros((0, features.shape[1]), np.float32)
    return kept, features, flipped, skipped


def fit_and_measure(folder: str | os.PathLike, labels: pd.DataFrame, *, train_count: int | None,
                    model: AttributeModel | None = None, workers: int = 1,
                    on_images: Callable[[int], None] | None = None
                    ) -> tuple[AttributeModel, pd.DataFrame | None, pd.DataFrame]:
    """Train on the first ``train_count`` labelled images of ``folder`` and measure on the rest.

    Images are taken in file-name order among those both in ``folder`` and in ``labels``;
    ``on_images`` is called with the number of images done, as they are done.

    Returns
    -------
    model : AttributeModel
        Fitted; its ``metadata`` records the data and, with a held-out part, the accuracy.
    accuracy : DataFrame or None
        Per-attribute accuracy on the held-out images (see :func:`accuracy_table`).
    skipped : DataFrame
        Images left out (``file``, ``reason``).
    """
    model = model or AttributeModel()
    names, n_train = labelled_names(folder, labels, train_count)
    train = labelled_features(folder, names[:n_train], model, mirrored=model.flip,
                              workers=workers, on_images=on_images)
    train_labels = labels.loc[train.files]
    features, targets = train.features, train_labels.to_numpy()
    if model.flip:
        features, targets = np.vstack([features, train.mirrored]), np.vstack([targets, targets])
    model.fit_features(features, targets, list(labels.columns))
    model.metadata.update(trained_on=f"{names[0]} .. {names[n_train - 1]}",
                          train_images=len(train.files))
    skipped, accuracy = train.skipped, None
    if n_train < len(names):
        test = labelled_features(folder, names[n_train:], model, workers=workers,
                                 on_images=on_images)
        accuracy = accuracy_table(model.predict_features(test.features), labels.loc[test.files],
                                  train_labels)
        skipped = pd.concat([skipped, test.skipped], ignore_index=True)
        model.metadata["test_accuracy"] = {
            "images": f"{test.files[0]} .. {test.files[-1]} ({len(test.files):,} images)",
            "mean": float(accuracy["accuracy"].mean()),
            "majority_baseline_mean": float(accuracy["majority_baseline"].mean()),
            "per_attribute": accuracy.round(4).to_dict(orient="index")}
    return model, accuracy, skipped


def labelled_names(folder: str | os.PathLike, labels: pd.DataFrame, train_count: int | None
                   ) -> tuple[list[str], int]:
    """The labelled images of ``folder`` in file-name order, and how many of them to train on.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.jpg", "a.jpg", "c.jpg"]:
    ...     _ = (d / name).write_bytes(b"")
    >>> labelled_names(d, pd.DataFrame({"Male": [1, -1, 1]}, index=["c.jpg", "a.jpg", "x.jpg"]),
    ...                train_count=None)
    (['a.jpg', 'c.jpg'], 2)
    """
    present = {p.name for p in Path(folder).iterdir()} if Path(folder).is_dir() else set()
    if not present:
        raise InputError("expected a folder of images", file=str(folder))
    names = sorted(name for name in labels.index if name in present)
    if len(names) < 2:
        raise InputError("fewer than two of the labelled images are in this folder (file names "
                         "must match the label file's first column)", file=str(folder))
    n_train = len(names) if train_count is None else train_count
    if not 0 < n_train <= len(names):
        raise InputError(f"the training count must be between 1 and {len(names)}, got "
                         f"{train_count}")
    return names, n_train


def accuracy_table(predicted: np.ndarray, labels: pd.DataFrame,
                   train_labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Accuracy of predicted 1 / -1 labels per attribute, next to the majority-class baseline.

    The baseline predicts, for every image, the attribute's most frequent value in
    ``train_labels`` (default: in ``labels``). Returns a table indexed by attribute with
    ``accuracy``, ``majority_baseline`` and ``positive_rate``.

    Examples
    --------
    >>> truth = pd.DataFrame({"A": [1, 1, -1, 1]})
    >>> accuracy_table(np.array([[1], [-1], [-1], [1]]), truth)
               accuracy  majority_baseline  positive_rate
    attribute
    A              0.75               0.75           0.75
    """
    truth = np.asarray(labels) > 0
    reference = np.asarray(train_labels if train_labels is not None else labels) > 0
    majority = reference.mean(axis=0) >= 0.5
    return pd.DataFrame({
        "accuracy": ((np.asarray(predicted) > 0) == truth).mean(axis=0),
        "majority_baseline": (truth == majority).mean(axis=0),
        "positive_rate": truth.mean(axis=0),
    }, index=pd.Index(labels.columns, name="attribute"))
