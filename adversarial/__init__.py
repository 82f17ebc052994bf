"""Stage IV of AnonymousNet: adversarial perturbation of faces against attribute models and
recognizers.

A small functional API over torch: every attack takes a batch of float images ``(N, 3, H, W)`` in
[0, 1] and a :class:`~privface.adversarial.classifiers.Classifier` (or a bare torch model, read as
multi-class), and respects an l_p budget ``xi`` (p = 2 or inf) exactly. Needs torch (the
``adversarial`` extra); the photo helpers need the ``faces`` extra.

================  =============================================================================
module            what
================  =============================================================================
``norms``         l_p norms per image and the projection onto the ball, :func:`project`
``classifiers``   what fooling means: :class:`MultiClass` (arg-max), :class:`MultiLabel`
                  (at least one chosen attribute flips)
``deepfool``      :func:`~.deepfool.deepfool`, the minimal perturbation (l_2 or l_inf), batched
``uap``           :func:`universal_perturbation` (Algorithm 1 of Moosavi-Dezfooli et al. 2017)
                  and :class:`UniversalPerturbation` (fit / transform)
``attacks``       per-image baselines: :func:`fgsm`, :func:`pgd`, :func:`gaussian_noise`
``evaluation``    fooling rate, attribute flips, identity-match breaks, transfer, PSNR / SSIM
``storage``       :func:`save_perturbation` / :func:`load_perturbation` (``.npz``, no pickle)
``models``        privface's torch models as targets, in the aligned frame
``photos``        adding a perturbation to the faces of photos (:func:`perturb_photos`)
``tensors``       float tensors <-> 8-bit images, quantizing within the budget
================  =============================================================================

Examples
--------
>>> import torch
>>> from privface.adversarial import MultiLabel, universal_perturbation, fooling_rate
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
>>> target = MultiLabel(net, attributes=["A"], names=["A", "B"])
>>> images = torch.rand(16, 3, 2, 2)
>>> result = universal_perturbation(target, images, xi=0.2, p="inf", max_passes=2, seed=0)
>>> result.perturbation.shape, result.params["p"]
(torch.Size([3, 2, 2]), 'inf')
"""

from __future__ import annotations

import importlib

# Public names and the module that defines each; imported on first use, so that importing this
# package loads neither torch nor OpenCV.
_EXPORTS = {
    "check_p": "norms", "lp_norm": "norms", "project": "norms",
    "Classifier": "classifiers", "MultiClass": "classifiers", "MultiLabel": "classifiers",
    "Reference": "classifiers", "DEFAULT_ATTRIBUTES": "classifiers",
    "as_classifier": "classifiers",
    "DeepFoolResult": "deepfool",  # the function: privface.adversarial.deepfool.deepfool
    "universal_perturbation": "uap", "UniversalPerturbation": "uap", "UAPResult": "uap",
    "fgsm": "attacks", "pgd": "attacks", "gaussian_noise": "attacks",
    "apply_perturbation": "attacks",
    "fooled_flags": "evaluation", "fooling_rate": "evaluation",
    "label_flip_rates": "evaluation", "match_break_rate": "evaluation",
    "perceptibility": "evaluation",
    "save_perturbation": "storage", "load_perturbation": "storage",
    "SavedPerturbation": "storage",
    "FrameInput": "models", "attribute_classifier": "models", "gallery_classifier": "models",
    "perturb_photo": "photos", "perturb_photos": "photos", "perturbation_record": "photos",
    "PhotoPerturber": "photos",
    "to_tensor": "tensors", "to_uint8": "tensors", "add_quantized": "tensors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
