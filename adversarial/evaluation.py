"""How well a perturbation fools, how far it transfers, and how visible it is.

* **Fooling rate**: the share of images whose prediction changes (:func:`fooling_rate`). For the
  attribute models that is "at least one chosen attribute flips" (:func:`label_flip_rates`, which
  also gives each attribute's own flip rate); for a recognizer read as a gallery classifier, "the
  top-1 identity changes" (:func:`privface.evaluation.adversarial.top1_change_rate`).
* **Identity-match break rate** (:func:`match_break_rate`): a recognizer with a threshold set at a
  false-accept rate on impostor pairs (:func:`~privface.attributes.recognizers.calibrate_threshold`)
  matches a probe to its person when some reference photo of that person lies within the
  threshold; the rate is the share of the probes matched when clean that are no longer matched
  when perturbed.
* **Transfer**: the same measures on models that were not attacked. The torch models take float
  tensors; privface's other models (the shipped SFace-ridge attribute model, SFace and dlib) take
  8-bit RGB faces, so the perturbed images are first released as 8-bit
  (:func:`~privface.adversarial.tensors.add_quantized`) and read the way privface reads them:
  CelebA-aligned crops at 178 x 218 for the attribute model (:func:`attribute_model_labels`), and
  for the recognizers the crops each makes from the *clean* photo's detection and landmarks
  (:func:`locate_faces`, :func:`recognizer_embeddings`): the strongest attacker knows where the
  face is, as in :mod:`privface.evaluation`.
* **Perceptibility**: PSNR and SSIM of perturbed against clean 8-bit images
  (:mod:`privface.quality`), and the l_inf and l_2 norms of the change actually made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from privface.attributes.recognizers import pairwise_distances
from privface.quality import image_quality

from .classifiers import Reference, as_classifier, evaluating


@torch.no_grad()
def fooled_flags(model, images: torch.Tensor, perturbed: torch.Tensor, *,
                 reference: Reference | None = None, batch_size: int = 64) -> torch.Tensor:
    """``(N,)`` bool: whose prediction on ``perturbed`` differs from that on ``images``.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2))
    >>> x = torch.rand(5, 3, 1, 1)
    >>> fooled_flags(net, x, x).tolist()
    [False, False, False, False, False]
    """
    classifier = as_classifier(model)
    if len(images) != len(perturbed):
        raise ValueError(f"expected as many perturbed images as clean ones, got "
                         f"{len(perturbed)} and {len(images)}")
    with evaluating(classifier):
        if reference is None:
            reference = classifier.references(images, batch_size)
        flags = [classifier.fooled(perturbed[i:i + batch_size],
                                   reference.take(slice(i, i + batch_size)))
                 for i in range(0, len(perturbed), batch_size)]
    return torch.cat(flags)


def fooling_rate(model, images: torch.Tensor, perturbed: torch.Tensor, *,
                 batch_size: int = 64) -> float:
    """Share of images whose prediction ``perturbed`` changes (see :func:`fooled_flags`).

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2))
    >>> x = torch.rand(5, 3, 1, 1)
    >>> fooling_rate(net, x, x)
    0.0
    """
    return float(fooled_flags(model, images, perturbed, batch_size=batch_size).float().mean())


def label_flip_rates(clean: np.ndarray, perturbed: np.ndarray,
                     names: Sequence[str] | None = None) -> dict:
    """Flip rates of binary predictions (1 / -1 or bool), per column and for any column.

    Examples
    --------
    >>> clean = np.array([[1, -1], [1, 1], [-1, -1], [1, 1]])
    >>> moved = np.array([[-1, -1], [1, 1], [-1, 1], [-1, -1]])
    >>> label_flip_rates(clean, moved, ["A", "B"])
    {'any': 0.75, 'per_attribute': {'A': 0.5, 'B': 0.5}, 'images': 4}
    """
    a, b = np.asarray(clean) > 0, np.asarray(perturbed) > 0
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two (images, attributes) arrays of one shape, got {a.shape} "
                         f"and {b.shape}")
    flips = a != b
    names = list(names) if names is not None else [str(i) for i in range(a.shape[1])]
    return {"any": float(flips.any(axis=1).mean()) if len(a) else 0.0,
            "per_attribute": {n: float(r) for n, r in zip(names, flips.mean(axis=0))},
            "images": int(len(a))}


def match_break_rate(clean: np.ndarray, perturbed: np.ndarray, probe_identities: Sequence,
                     references: np.ndarray, reference_identities: Sequence, *,
                     threshold: float, metric: str) -> dict:
    """Share of probes matched to their person when clean and no longer matched when perturbed.

    A probe is matched when its distance to the nearest reference photo of its own person is at
    most ``threshold``.

    Returns
    -------
    dict
        ``matched_clean`` (share of probes matched clean), ``matched_perturbed``, ``break_rate``
        (among the probes matched clean), ``probes``.

    Examples
    --------
    >>> refs = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> match_break_rate(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [0.0, 1.0]]),
    ...                  ["a", "b"], refs, ["a", "b"], threshold=0.1, metric="cosine")
    {'matched_clean': 1.0, 'matched_perturbed': 0.5, 'break_rate': 0.5, 'probes': 2}
    """

    probe_ids = np.asarray(probe_identities)
    ref_ids = np.asarray(reference_identities)
    same = probe_ids[:, None] == ref_ids[None, :]

    def matched(embeddings: np.ndarray) -> np.ndarray:
        distances = np.where(same, pairwise_distances(embeddings, references, metric), np.inf)
        return distances.min(axis=1) <= threshold

    before, after = matched(clean), matched(perturbed)
    n = len(before)
    return {"matched_clean": float(before.mean()) if n else 0.0,
            "matched_perturbed": float(after.mean()) if n else 0.0,
            "break_rate": float((before & ~after).sum() / max(1, before.sum())),
            "probes": int(n)}


def perceptibility(clean: np.ndarray, perturbed: np.ndarray) -> dict:
    """PSNR, SSIM and the norms of the change, for 8-bit images ``(N, H, W, 3)``, as means.

    ``linf_levels`` is the largest change in grey levels over all images; ``l2`` the mean l_2
    norm of the change per image in [0, 1] units.

    Examples
    --------
    >>> a = np.full((2, 16, 16, 3), 100, np.uint8)
    >>> out = perceptibility(a, a + 2)
    >>> round(out["psnr"], 2), out["linf_levels"]
    (42.11, 2)
    """

    clean, perturbed = np.asarray(clean), np.asarray(perturbed)
    if clean.shape != perturbed.shape or clean.dtype != np.uint8 or perturbed.dtype != np.uint8:
        raise ValueError(f"expected two uint8 batches of one shape, got {clean.dtype} "
                         f"{clean.shape} and {perturbed.dtype} {perturbed.shape}")
    scores = image_quality(list(clean), list(perturbed))
    change = perturbed.astype(np.float64) - clean
    return {"psnr": float(np.mean(scores.psnr)), "ssim": float(np.nanmean(scores.ssim)),
            "linf_levels": int(np.abs(change).max()) if change.size else 0,
            "l2": float(np.linalg.norm(change.reshape(len(change), -1) / 255.0, axis=1).mean())}


def attribute_model_labels(model, faces: np.ndarray) -> np.ndarray:
    """The shipped attribute model's 1 / -1 labels of CelebA-aligned faces at any scale.

    Faces are resized to 178 x 218 (bicubic), as privface's training reads CelebA's own aligned
    crops (:func:`~privface.attributes.training.aligned_crops`).
    """
    import cv2

    crops = [face if face.shape[:2] == (218, 178) else
             cv2.resize(face, (178, 218), interpolation=cv2.INTER_CUBIC) for face in faces]
    return model.predict(crops)


def locate_faces(images: Sequence[np.ndarray], analyzer=None) -> list:
    """Per image, the largest face's ``(detection, 68 landmarks)``, or None without a face.

    Examples
    --------
    >>> locate_faces([np.zeros((64, 64, 3), np.uint8)])
    [None]
    """
    # imported on use: it loads Pillow
    from privface.attributes.analysis import FaceAnalyzer

    analyzer = analyzer or FaceAnalyzer()
    out = []
    for image in images:
        try:
            faces = analyzer.faces(np.ascontiguousarray(image), max_faces=1)
        except ValueError:  # degenerate landmarks
            faces = []
        out.append((faces[0].detection, faces[0].landmarks68) if faces else None)
    return out


def recognizer_embeddings(recognizer, images: Sequence[np.ndarray], locations: Sequence
                          ) -> np.ndarray:
    """Embeddings of each image's face, cropped at the given (clean) location; NaN rows where
    there is none.

    Examples
    --------
    >>> from privface.attributes.recognizers import SFaceRecognizer
    >>> recognizer_embeddings(SFaceRecognizer(), [np.zeros((64, 64, 3), np.uint8)], [None])
    array([[nan, nan, ...]], dtype=float32)
    """
    found = [i for i, loc in enumerate(locations) if loc is not None]
    chips = [recognizer.chip(np.ascontiguousarray(images[i]), *locations[i]) for i in found]
    embeddings = recognizer.embed_chips(chips)
    out = np.full((len(images), embeddings.shape[1] if len(found) else 128), np.nan, np.float32)
    out[found] = embeddings
    return out
