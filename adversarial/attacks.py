"""Per-image attacks, the baselines of a universal perturbation: FGSM, PGD and matched noise.

Each function takes a batch of float images ``(N, C, H, W)`` in [0, 1] and returns the perturbed
batch, clipped to [0, 1]. The budget ``xi`` bounds the l_p norm (p = 2 or inf) of each image's
perturbation **before** clipping, exactly (:func:`~.norms.project`). Clipping only moves a pixel
towards its clean value (the clean value lies in [0, 1]), so the change actually made,
``adversarial - images``, is within the budget too, up to the rounding of the one float addition
(half an ulp of 1.0, 6e-8 in float32); the tests check both. Converted to 8-bit with
:func:`~.tensors.add_quantized` the released change is within the budget with no rounding.

* :func:`fgsm`: one step of size ``xi`` along the sign of the loss gradient (Goodfellow et al.
  2015) for l_inf, along the normalised gradient for l_2 (the "fast gradient method").
* :func:`pgd`: projected gradient ascent (Madry et al. 2018): ``steps`` steps of ``step_size``,
  each projected back onto the ball and into [0, 1], from a random start inside the ball.
* :func:`gaussian_noise`: i.i.d. Gaussian noise rescaled per image to an exact norm: the budget,
  or the norm of a given perturbation (how a universal perturbation is compared with chance).

The loss ascended is the classifier's own (:meth:`~.classifiers.Classifier.loss`): cross-entropy
from the clean prediction for a multi-class model, the summed binary cross-entropy of the chosen
attributes for a multi-label one. Randomness (PGD's start, the noise) comes from OS entropy unless
a ``seed`` is given.
"""

from __future__ import annotations

import math
import secrets

import torch

from .classifiers import Classifier, Reference, as_classifier, evaluating
from .norms import check_p, lp_norm, project
from .tensors import check_images


def _generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded from ``seed``, or from OS entropy when it is None."""
    return torch.Generator().manual_seed(secrets.randbits(63) if seed is None else int(seed))


def check_budget(xi: float) -> float:
    """``xi`` as a float, or a clear error unless it is finite and >= 0."""
    xi = float(xi)
    if not (math.isfinite(xi) and xi >= 0):
        raise ValueError(f"xi must be a finite number >= 0, got {xi}")
    return xi


def apply_perturbation(images: torch.Tensor, perturbation: torch.Tensor) -> torch.Tensor:
    """``images + perturbation`` clipped to [0, 1]; a ``(C, H, W)`` perturbation is universal.

    Examples
    --------
    >>> apply_perturbation(torch.full((2, 1, 1, 1), 0.9), torch.full((1, 1, 1), 0.2)).flatten()
    tensor([1., 1.])
    """
    return (images + perturbation.to(images)).clamp(0.0, 1.0)


def _gradient(classifier: Classifier, x: torch.Tensor, reference: Reference) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = classifier.loss(x, reference).sum()
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _batches(classifier: Classifier, images: torch.Tensor, reference: Reference | None,
             batch_size: int):
    """``(images, their reference)`` a batch at a time (the model's own prediction by default)."""
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        yield x, (classifier.reference(x) if reference is None
                  else reference.take(slice(start, start + batch_size)))


def _ascent_direction(grad: torch.Tensor, p: float) -> torch.Tensor:
    """The unit-norm step that increases a linear function with gradient ``grad`` the most."""
    if math.isinf(p):
        return grad.sign()
    norm = lp_norm(grad, 2).clamp_min(torch.finfo(grad.dtype).tiny)
    return grad / norm.view(-1, *([1] * (grad.dim() - 1)))


def fgsm(model, images: torch.Tensor, *, xi: float, p="inf",
         reference: Reference | None = None, batch_size: int = 64) -> torch.Tensor:
    """The fast gradient sign method: one step of length ``xi`` up the loss.

    Parameters
    ----------
    model : Classifier or nn.Module
    images : Tensor (N, C, H, W) in [0, 1]
    xi : float
        Budget in the l_p norm, per image.
    p : 2 or inf
    reference : Reference, optional
        The prediction to move away from (default: the model's on ``images``).
    batch_size : int
        Images per forward pass.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    >>> x = torch.rand(4, 3, 2, 2)
    >>> adv = fgsm(net, x, xi=0.05)
    >>> bool((adv - x).abs().max() <= 0.05 + 1e-7), bool(((adv >= 0) & (adv <= 1)).all())
    (True, True)
    """
    classifier = as_classifier(model)
    images = check_images(images)
    xi, p = check_budget(xi), check_p(p)
    out = []
    with evaluating(classifier):
        for x, ref in _batches(classifier, images, reference, batch_size):
            step = xi * _ascent_direction(_gradient(classifier, x, ref), p)
            out.append(apply_perturbation(x, project(step, xi, p)))
    return torch.cat(out)


def pgd(model, images: torch.Tensor, *, xi: float, p="inf", steps: int = 10,
        step_size: float | None = None, random_start: bool = True, seed: int | None = None,
        reference: Reference | None = None, batch_size: int = 64) -> torch.Tensor:
    """Projected gradient descent (ascent on the loss) inside the l_p ball of radius ``xi``.

    Parameters
    ----------
    model, images, xi, p, reference, batch_size
        As for :func:`fgsm`.
    steps : int
        Gradient steps.
    step_size : float, optional
        Length of each step in the l_p norm; default ``2.5 * xi / steps`` (Madry et al.).
    random_start : bool
        Start from a uniform point of the ball (l_inf: each value in ``[-xi, xi]``; l_2: a
        uniform direction at a radius distributed as in the ball) rather than from the image.
    seed : int, optional
        For the random start; OS entropy when None.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    >>> x = torch.rand(4, 3, 2, 2)
    >>> adv = pgd(net, x, xi=0.1, p=2, steps=5, seed=1)
    >>> bool(((adv - x).flatten(1).norm(dim=1) <= 0.1 + 1e-6).all())
    True
    """
    classifier = as_classifier(model)
    images = check_images(images)
    xi, p = check_budget(xi), check_p(p)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    step_size = 2.5 * xi / steps if step_size is None else float(step_size)
    if not step_size > 0 and xi > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    generator = _generator(seed)
    out = []
    with evaluating(classifier):
        for x, ref in _batches(classifier, images, reference, batch_size):
            delta = _ball_sample(x.shape, xi, p, generator).to(x) if random_start else \
                torch.zeros_like(x)
            delta = apply_perturbation(x, delta) - x
            for _ in range(steps):
                grad = _gradient(classifier, x + delta, ref)
                delta = project(delta + step_size * _ascent_direction(grad, p), xi, p)
                delta = apply_perturbation(x, delta) - x
            out.append(x + delta)
    return torch.cat(out).clamp(0.0, 1.0)


def _ball_sample(shape: torch.Size, xi: float, p: float, generator: torch.Generator
                 ) -> torch.Tensor:
    """Points drawn uniformly from the l_p ball of radius ``xi``, one per image."""
    if math.isinf(p):
        return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * xi
    direction = torch.randn(shape, generator=generator)
    direction = direction / lp_norm(direction, 2).clamp_min(1e-12).view(-1, *[1] * (
        len(shape) - 1))
    dimension = math.prod(shape[1:])
    radius = xi * torch.rand(shape[0], generator=generator) ** (1.0 / dimension)
    return project(direction * radius.view(-1, *[1] * (len(shape) - 1)), xi, 2)


def gaussian_noise(images: torch.Tensor, *, xi: float | None = None, p="inf",
                   like: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
    """Images plus Gaussian noise rescaled, per image, to an exact l_p norm; clipped to [0, 1].

    Parameters
    ----------
    images : Tensor (N, C, H, W) in [0, 1]
    xi : float, optional
        The norm each image's noise is scaled to (the budget of the attack it is compared with).
    p : 2 or inf
    like : Tensor, optional
        Instead of ``xi``: match the l_p norm of this perturbation, ``(C, H, W)`` (one norm for
        every image, e.g. a universal perturbation) or ``(N, C, H, W)`` (one per image, e.g.
        ``adversarial - images`` of another attack).
    seed : int, optional
        OS entropy when None.

    Examples
    --------
    >>> x = torch.full((2, 3, 8, 8), 0.5)
    >>> noisy = gaussian_noise(x, xi=0.03, p="inf", seed=0)
    >>> [round(v, 6) for v in (noisy - x).flatten(1).abs().amax(dim=1).tolist()]
    [0.03, 0.03]
    """
    images = check_images(images)
    p = check_p(p)
    if (xi is None) == (like is None):
        raise ValueError("give exactly one of xi (a budget) and like (a perturbation to match)")
    if like is not None:
        like = like.to(images)
        like = like.unsqueeze(0) if like.dim() == images.dim() - 1 else like
        if like.shape[1:] != images.shape[1:] or len(like) not in (1, len(images)):
            raise ValueError(f"like must be (C, H, W) or (N, C, H, W) matching the images "
                             f"{tuple(images.shape)}, got {tuple(like.shape)}")
        target = lp_norm(like, p).expand(len(images))
    else:
        target = torch.full((len(images),), check_budget(xi), dtype=images.dtype,
                            device=images.device)
    noise = torch.randn(images.shape, generator=_generator(seed)).to(images)
    scale = target / lp_norm(noise, p).clamp_min(torch.finfo(images.dtype).tiny)
    noise = noise * scale.view(-1, *[1] * (images.dim() - 1))
    # Scaling lands on the target up to rounding; the projection makes "at most" exact.
    noise = project(noise, target, p)
    return apply_perturbation(images, noise)
