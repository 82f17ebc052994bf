"""A universal perturbation from a folder of photos: what ``privface perturb train`` runs.

The photos go through privface's stage-I path (YuNet, dlib's 68 landmarks, alignment to CelebA's
geometry; :func:`~privface.attributes.training.aligned_crops`, which also takes CelebA's own
aligned crops as they are when the detector misses them), are read into the frame at the chosen
resolution (:func:`~privface.attributes.torch_nets.faces_to_tensor`: antialiased bilinear), and
the perturbation is computed against the chosen model:

* ``attributes``: the attribute CNN, fooled when one of the chosen attributes flips;
* ``recognizer``: the face embedding network read as a classifier over the identities of the
  photos themselves (the gallery), fooled when the top-1 identity changes. Each identity's
  gallery is its photos; a photo is therefore attacked against a gallery that holds it, which is
  the hard case: its own clean embedding pulls it back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privface.base import __version__
from privface.base.errors import InputError

from .storage import save_perturbation

MODELS = ("attributes", "recognizer")


@dataclass
class FolderFaces:
    """Aligned faces of a folder in the frame: names, a float tensor, and what was left out."""

    names: list[str]
    images: object  # torch.Tensor (N, 3, H, W)
    skipped: pd.DataFrame


def read_folder_faces(folder: str | os.PathLike, size: Sequence[int], *,
                      limit: int | None = None,
                      on_image: Callable[[str], None] | None = None) -> FolderFaces:
    """The largest face of each photo of ``folder``, aligned and read at ``size`` (height, width).

    Photos are taken in file-name order (the first ``limit`` when given); unreadable photos and
    photos without a face are listed in ``skipped`` with the reason.
    """
    # imported on use: it loads Pillow, torch
    from privface.attributes.images import list_images
    from privface.attributes.torch_nets import faces_to_tensor
    from privface.attributes.training import aligned_crops

    paths = list_images(folder)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise InputError("the folder holds no photos (expected .jpg, .png, .bmp, .webp or .tif "
                         "files)", file=str(folder))
    kept, crops, skipped = aligned_crops(folder, [p.name for p in paths], on_image=on_image)
    if not kept:
        raise InputError("no face was found in any photo of the folder", file=str(folder))
    images = faces_to_tensor(np.stack(crops), tuple(size))
    return FolderFaces(kept, images, pd.DataFrame(skipped, columns=["file", "reason"]))


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"109x89"`` as ``(109, 89)`` (height x width); None stays None.

    Examples
    --------
    >>> parse_size("109x89"), parse_size(None)
    ((109, 89), None)
    """
    if text is None:
        return None
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 8 for p in parts):
        raise InputError(f"--size expects HEIGHTxWIDTH in pixels (each at least 8), got {text!r}")
    return int(parts[0]), int(parts[1])


def folder_uap(folder: str | os.PathLike, out: str | os.PathLike, *, model: str = "attributes",
               identities: pd.Series | None = None, attributes: Sequence[str] | str | None = None,
               weights: str | os.PathLike | None = None, size: Sequence[int] | None = None,
               limit: int | None = None, xi: float = 0.04, p="inf", delta: float = 0.2,
               max_passes: int = 10, overshoot: float = 0.02, max_iter: int = 10,
               batch_size: int = 1, seed: int | None = None, device: str = "cpu",
               log: Callable[[str], None] | None = None) -> dict:
    """Compute a universal perturbation on a folder's faces and save it to ``out``.

    Returns the saved header (JSON-ready): the budget, the parameters, the fooling rate per pass,
    the model, the images used and skipped.
    """
    import torch

    # imported on use: it loads Pillow, torch
    from .classifiers import DEFAULT_ATTRIBUTES
    from .models import attribute_classifier, gallery_classifier
    from .uap import universal_perturbation

    # imported on use: it loads Pillow
    from privface.attributes.images import list_images

    log = log or (lambda line: None)
    list_images(folder)  # a missing folder is reported before any model loads
    if model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    if model == "attributes":
        # imported on use: it loads torch
        from privface.attributes.cnn import load_attribute_cnn

        net = load_attribute_cnn(weights)
    else:
        # imported on use: it loads torch
        from privface.attributes.embedding_net import load_face_embedding_net

        if identities is None:
            raise InputError("--model recognizer needs --identities (the persons of the photos: "
                             "the classes of the gallery)")
        net = load_face_embedding_net(weights)
    # imported on use: it loads torch
    from .models import RECOGNIZER_FRAME

    # Default frames: the attribute CNN reads the whole aligned crop at its input size; the
    # embedding network reads a face square, which is its input size in the half-size frame.
    frame = tuple(size) if size is not None else \
        tuple(net.input_size) if model == "attributes" else RECOGNIZER_FRAME
    log(f"reading and aligning the faces of {folder} at {frame[0]}x{frame[1]} ...")
    faces = read_folder_faces(folder, frame, limit=limit)
    device = torch.device(device)
    net = net.to(device)
    images = faces.images.to(device)
    if model == "attributes":
        target = attribute_classifier(net, attributes=attributes or DEFAULT_ATTRIBUTES,
                                      frame_size=frame)
    else:
        missing = [n for n in faces.names if n not in identities.index]
        if missing:
            raise InputError(f"no identity for {len(missing)} photo(s), e.g. {missing[0]}")
        target = gallery_classifier(images, identities.loc[faces.names].to_numpy(), net=net)
    log(f"computing the perturbation on {len(faces.names):,} faces "
        f"({len(faces.skipped):,} photo(s) left out) ...")
    started = time.perf_counter()
    result = universal_perturbation(
        target, images, xi=xi, p=p, delta=delta, max_passes=max_passes, overshoot=overshoot,
        max_iter=max_iter, batch_size=batch_size, seed=seed,
        on_pass=lambda n, rate: log(f"pass {n}: fooling rate {rate:.3f} "
                                    f"({time.perf_counter() - started:.0f} s)"))

    header_extra = {
        "fooling_rates": result.fooling_rates, "fooling_rate": result.fooling_rate,
        "passes": result.passes,
        "converged": result.converged, "model": {"name": model, **target.describe(),
                                                 "weights": None if weights is None
                                                 else Path(weights).name},
        "images": {"folder": Path(folder).name, "used": len(faces.names),
                   "skipped": len(faces.skipped)},
        "privface": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    frame_info = {"geometry": "celeba", "height": frame[0], "width": frame[1]}
    save_perturbation(out, result.perturbation.cpu(), xi=xi, p=p, frame=frame_info,
                      params=result.params, **header_extra)
    return {"xi": xi, "p": result.params["p"], "frame": frame_info, "params": result.params,
            **header_extra}
