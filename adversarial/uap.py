"""Universal adversarial perturbations (Moosavi-Dezfooli, Fawzi, Fawzi and Frossard, CVPR 2017).

One perturbation ``v`` with ``||v||_p <= xi`` that changes the prediction of most images it is
added to. Algorithm 1 of the paper::

    v = 0
    while fooling_rate(X + v) <= 1 - delta (and passes < max_passes):
        for x in X, in a random order:
            if k(x + v) == k(x):                      # x + v is not fooled yet
                dv = DeepFool(x + v)                  # minimal push across k(x)'s boundary
                v = P_{p,xi}(v + dv)                  # back onto the l_p ball

with P the projection of :func:`~privface.adversarial.norms.project`. As in the reference
implementation, ``dv`` is used only when DeepFool fooled ``x + v`` within ``max_iter`` steps, and
every image here is clipped to [0, 1] when the model sees it.

``batch_size`` > 1 is a faster variant: the images of a batch are checked and DeepFool runs on
their not-yet-fooled ones together, all at the same ``v``, and the updates are then applied one
after the other, in the batch's order. With ``batch_size = 1`` (the default) it is Algorithm 1
exactly; with more, an update may come from a ``v`` that is up to ``batch_size - 1`` updates
old. The order of the images is random in every pass, from OS entropy unless ``seed`` is given;
the result records which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .attacks import apply_perturbation, check_budget
from .classifiers import as_classifier, evaluating
from .deepfool import deepfool
from .evaluation import fooled_flags
from .norms import check_p, lp_norm, p_name, project
from .tensors import check_images


@dataclass
class UAPResult:
    """A universal perturbation and how it was computed.

    Attributes
    ----------
    perturbation : Tensor (C, H, W)
        ``v``, with ``lp_norm(v) <= xi``: as it was after the pass ``params["kept_pass"]``.
    fooling_rates : list of float
        Fooling rate on the training images after each pass (share whose prediction differs
        from their clean prediction, images clipped to [0, 1]).
    passes : int
        Passes over the training images that ran.
    params : dict
        xi, p, delta, max_passes, overshoot, max_iter, batch_size, seed and whether one was given
        (``seeded``), the number of images, what was fooled, the seconds it took. JSON-ready.
    """

    perturbation: torch.Tensor
    fooling_rates: list[float]
    passes: int
    params: dict = field(default_factory=dict)

    @property
    def fooling_rate(self) -> float:
        """The fooling rate of :attr:`perturbation` on the training images."""
        return self.fooling_rates[self.params["kept_pass"] - 1] if self.fooling_rates else 0.0

    @property
    def converged(self) -> bool:
        """Whether the target fooling rate ``1 - delta`` was passed."""
        return self.fooling_rate > 1.0 - self.params["delta"]


def universal_perturbation(model, images: torch.Tensor, *, xi: float, p="inf",
                           delta: float = 0.2, max_passes: int = 10, overshoot: float = 0.02,
                           max_iter: int = 10, batch_size: int = 1, eval_batch_size: int = 64,
                           seed: int | None = None, init: torch.Tensor | None = None,
                           keep: str = "best",
                           on_pass: Callable[[int, float], None] | None = None) -> UAPResult:
    """Compute a universal perturbation for ``model`` on ``images`` (Algorithm 1 of the paper).

    Parameters
    ----------
    model : Classifier or nn.Module
        What is fooled: a :class:`~.classifiers.MultiLabel` attribute model, a
        :class:`~.classifiers.MultiClass` gallery classifier; a bare module is multi-class.
    images : Tensor (N, C, H, W)
        Float images in [0, 1], in the frame the perturbation lives in.
    xi : float
        Radius of the l_p ball (images in [0, 1]: ``10/255 = 0.039`` in l_inf is 10 grey
        levels).
    p : 2 or inf
    delta : float
        Stop once the fooling rate on ``images`` exceeds ``1 - delta``.
    max_passes : int
        Passes over the images at most.
    overshoot, max_iter : float, int
        DeepFool's (see :func:`~.deepfool.deepfool`).
    batch_size : int
        Images checked and attacked together (1: Algorithm 1 exactly; see the module's notes).
    eval_batch_size : int
        Images per forward pass when measuring the fooling rate.
    seed : int, optional
        Seed of the random order; OS entropy when None (recorded in ``params["seeded"]``).
    init : Tensor (C, H, W), optional
        Start from this perturbation (projected onto the ball) instead of zero.
    keep : {"best", "last"}
        Return the perturbation of the pass that fooled the most training images (the fooling
        rate swings from pass to pass as single images pull ``v`` around), or of the last pass.
        The two agree when the target is reached, since the loop stops there.
    on_pass : callable, optional
        Called with the pass number (1-based) and the fooling rate after it.

    Returns
    -------
    UAPResult

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    >>> x = torch.rand(32, 3, 2, 2)
    >>> result = universal_perturbation(net, x, xi=0.5, p=2, max_passes=3, seed=0)
    >>> bool(lp_norm(result.perturbation[None], 2) <= 0.5), result.params["seeded"]
    (True, True)
    """
    classifier = as_classifier(model)
    images = check_images(images)
    p = check_p(p)
    xi = check_budget(xi)
    if not 0 <= delta < 1:
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
    if max_passes < 1 or batch_size < 1 or eval_batch_size < 1:
        raise ValueError("max_passes, batch_size and eval_batch_size must be at least 1")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)  # seed None: OS entropy
    v = torch.zeros_like(images[:1]) if init is None else \
        project(init.to(images).reshape(images[:1].shape), xi, p)
    rates: list[float] = []
    with evaluating(classifier):
        reference = classifier.references(images, eval_batch_size)
        for number in range(1, max_passes + 1):
            order = torch.from_numpy(rng.permutation(len(images))).to(images.device)
            for start in range(0, len(images), batch_size):
                index = order[start:start + batch_size]
                ref = reference.take(index)
                current = apply_perturbation(images[index], v)
                todo = ~classifier.fooled(current, ref)
                if not bool(todo.any()):
                    continue
                found = deepfool(classifier, current[todo], p=p, overshoot=overshoot,
                                 max_iter=max_iter, reference=ref.take(todo))
                # Only perturbations that fooled x + v move v (the reference implementation).
                for step in found.perturbation[found.fooled]:
                    v = project(v + step[None], xi, p)
            flags = fooled_flags(classifier, images, apply_perturbation(images, v),
                                 reference=reference, batch_size=eval_batch_size)
            rates.append(float(flags.float().mean()))
            if keep == "last" or rates[-1] >= max(rates):
                kept, kept_pass = v, number
            if on_pass is not None:
                on_pass(number, rates[-1])
            if rates[-1] > 1.0 - delta:
                break
    params = {"xi": xi, "p": p_name(p), "delta": float(delta), "max_passes": int(max_passes),
              "keep": keep, "kept_pass": kept_pass,
              "overshoot": float(overshoot), "max_iter": int(max_iter),
              "batch_size": int(batch_size), "seed": None if seed is None else int(seed),
              "seeded": seed is not None, "images": int(len(images)),
              "norm": float(lp_norm(kept, p)[0]), "classifier": classifier.describe(),
              "seconds": round(time.perf_counter() - started, 3)}
    return UAPResult(kept[0].detach(), rates, len(rates), params)


class UniversalPerturbation:
    """A scikit-learn-like face of :func:`universal_perturbation`: ``fit``, then ``transform``.

    Parameters
    ----------
    model : Classifier or nn.Module
    xi, p, delta, max_passes, overshoot, max_iter, batch_size, seed
        As for :func:`universal_perturbation`.

    Attributes
    ----------
    perturbation_ : Tensor (C, H, W)
        After :meth:`fit`.
    result_ : UAPResult
        After :meth:`fit`: fooling rate per pass and the parameters.

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    >>> x = torch.rand(16, 3, 2, 2)
    >>> uap = UniversalPerturbation(net, xi=0.1, p="inf", max_passes=2, seed=0).fit(x)
    >>> out = uap.transform(x)
    >>> bool((out - x).abs().max() <= 0.1 + 1e-7), out.shape
    (True, torch.Size([16, 3, 2, 2]))
    """

    def __init__(self, model, *, xi: float, p="inf", delta: float = 0.2, max_passes: int = 10,
                 overshoot: float = 0.02, max_iter: int = 10, batch_size: int = 1,
                 seed: int | None = None) -> None:
        self.model = model
        self.xi, self.p, self.delta, self.max_passes = xi, p, delta, max_passes
        self.overshoot, self.max_iter, self.batch_size, self.seed = (overshoot, max_iter,
                                                                     batch_size, seed)

    def fit(self, images: torch.Tensor) -> UniversalPerturbation:
        """Compute the perturbation on ``images``; returns ``self``."""
        self.result_ = universal_perturbation(
            self.model, images, xi=self.xi, p=self.p, delta=self.delta,
            max_passes=self.max_passes, overshoot=self.overshoot, max_iter=self.max_iter,
            batch_size=self.batch_size, seed=self.seed)
        self.perturbation_ = self.result_.perturbation
        return self

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` plus the perturbation, clipped to [0, 1]."""
        if not hasattr(self, "perturbation_"):
            raise RuntimeError("call fit() before transform()")
        images = check_images(images)
        if images.shape[1:] != self.perturbation_.shape:
            raise ValueError(f"images are {tuple(images.shape[1:])}, the perturbation "
                             f"{tuple(self.perturbation_.shape)}")
        return apply_perturbation(images, self.perturbation_)

    def fooling_rate(self, images: torch.Tensor) -> float:
        """Share of ``images`` whose prediction the perturbation changes."""
        flags = fooled_flags(self.model, images, self.transform(images))
        return float(flags.float().mean())
