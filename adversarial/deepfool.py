"""DeepFool (Moosavi-Dezfooli, Fawzi and Frossard, CVPR 2016): a small step to the nearest boundary.

At each iteration the classifier's margins ``g_j`` (all positive while the prediction holds; see
:mod:`~privface.adversarial.classifiers`) are linearised at the current point. The distance to the
boundary of margin ``j`` in the l_p norm is ``g_j / ||grad g_j||_q`` with ``q`` the dual norm
(``1/p + 1/q = 1``: q = 2 for p = 2, q = 1 for p = inf); DeepFool steps onto the nearest one with
the minimal step for that linear boundary,

* p = 2:   ``r = -(d + 1e-4) * grad / ||grad||_2``,
* p = inf: ``r = -(d + 1e-4) * sign(grad)``,

accumulates the steps and repeats until the prediction changes or ``max_iter`` iterations have
run. The final perturbation is the sum times ``1 + overshoot``, which pushes past the boundary (the
reference implementation's choices: ``overshoot = 0.02``, the 1e-4, the candidate classes). For a
binary classifier with one linear logit ``f``, the p = 2 step is the closed form
``-f(x) grad f / ||grad f||^2``; for several attributes the nearest attribute boundary is crossed.

Images stay valid: the model is always evaluated at the perturbed image clipped to [0, 1], so a
"fooled" image is one that can be released. The returned perturbation is not clipped; add it with
:func:`~privface.adversarial.attacks.apply_perturbation`.

The whole batch is attacked at once (one forward pass and one backward pass per margin per
iteration); images leave the batch as soon as they are fooled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .classifiers import Classifier, Reference, as_classifier, evaluating
from .norms import check_p
from .tensors import check_images


@dataclass
class DeepFoolResult:
    """What :func:`deepfool` found, row for row with its input.

    Attributes
    ----------
    perturbation : Tensor
        ``(1 + overshoot)`` times the accumulated steps, same shape as the images.
    fooled : Tensor
        ``(N,)`` bool: whether the clipped perturbed image's prediction differs from the
        reference.
    iterations : Tensor
        ``(N,)`` long: linearisation steps taken for each image (0 when already fooled).
    """

    perturbation: torch.Tensor
    fooled: torch.Tensor
    iterations: torch.Tensor


def margin_gradients(classifier: Classifier, x: torch.Tensor, reference: Reference
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, margins ``(N, J)`` and their gradients ``(N, J, *image)`` at ``x``.

    One forward pass and one backward pass per margin: the images of a batch are independent (the
    model is in evaluation mode), so the gradient of a margin summed over the batch gives each
    image its own gradient.

    Examples
    --------
    >>> from privface.adversarial.classifiers import MultiClass
    >>> clf = MultiClass(torch.nn.Linear(2, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = clf.model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> x = torch.tensor([[2.0, 1.0]])
    >>> _, g, grads = margin_gradients(clf, x, clf.reference(x))
    >>> g.tolist(), grads.tolist()
    ([[1.0]], [[[1.0, -1.0]]])
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = classifier.logits(x)
        margins = classifier.margins_from_logits(logits, reference)
        count = margins.shape[1]
        grads = [torch.autograd.grad(margins[:, j].sum(), x, retain_graph=j < count - 1)[0]
                 for j in range(count)]
    return logits.detach(), margins.detach(), torch.stack(grads, dim=1)


def deepfool(model, images: torch.Tensor, *, p=2, overshoot: float = 0.02, max_iter: int = 50,
             reference: Reference | None = None) -> DeepFoolResult:
    """The minimal perturbation that changes each image's prediction, by DeepFool.

    Parameters
    ----------
    model : Classifier or nn.Module
        What is fooled (a bare module is read as :class:`~.classifiers.MultiClass`).
    images : Tensor (N, C, H, W)
        Float images in [0, 1].
    p : 2 or inf
        The norm the steps are minimal in.
    overshoot : float
        The accumulated step is multiplied by ``1 + overshoot`` (pushes past the boundary).
    max_iter : int
        Linearisation steps at most per image.
    reference : Reference, optional
        The prediction to change (default: the model's prediction on ``images``). The universal
        perturbation passes the *clean* images' prediction while attacking ``x + v``.

    Returns
    -------
    DeepFoolResult

    Examples
    --------
    A linear binary classifier: the minimal l_2 perturbation is ``|f(x)| / ||w||``.

    >>> from privface.adversarial.classifiers import MultiLabel
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[1].weight.copy_(torch.tensor([[3.0, 4.0]])); _ = net[1].bias.fill_(-3.0)
    >>> clf = MultiLabel(net, attributes=["A"], names=["A"])
    >>> x = torch.full((1, 1, 1, 2), 0.5)   # f(x) = 0.5, distance 0.5 / 5 = 0.1
    >>> result = deepfool(clf, x, overshoot=0.0)
    >>> round(float(result.perturbation.norm()), 4), result.fooled.tolist()
    (0.1001, [True])
    """
    classifier = as_classifier(model)
    images = check_images(images)
    p = check_p(p)
    if overshoot < 0:
        raise ValueError(f"overshoot must be >= 0, got {overshoot}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    n = len(images)
    total = torch.zeros_like(images)
    fooled = torch.zeros(n, dtype=torch.bool, device=images.device)
    iterations = torch.zeros(n, dtype=torch.long, device=images.device)
    with evaluating(classifier):
        if reference is None:
            reference = classifier.reference(images)
        active = torch.arange(n, device=images.device)
        for step in range(max_iter + 1):
            current = (images[active] + (1.0 + overshoot) * total[active]).clamp(0.0, 1.0)
            ref = reference.take(active)
            if step == max_iter:
                fooled[active] = classifier.fooled(current, ref)
                break
            logits, margins, grads = margin_gradients(classifier, current, ref)
            done = classifier.fooled_from_logits(logits, ref)
            fooled[active] = done
            if bool(done.all()):
                break
            keep = ~done
            active, margins, grads = active[keep], margins[keep], grads[keep]
            total[active] += _step(margins, grads, p)
            iterations[active] += 1
    return DeepFoolResult((1.0 + overshoot) * total, fooled, iterations)


def _step(margins: torch.Tensor, grads: torch.Tensor, p: float) -> torch.Tensor:
    """The minimal step onto the nearest linearised boundary, one per image ``(N, *image)``."""
    flat = grads.flatten(2)  # (N, J, D)
    dual = flat.abs().sum(dim=2) if math.isinf(p) else flat.norm(dim=2)  # ||grad||_q
    tiny = torch.finfo(flat.dtype).tiny
    distance = margins.abs() / (dual + tiny)
    nearest = distance.argmin(dim=1)
    rows = torch.arange(len(margins), device=margins.device)
    grad = flat[rows, nearest]  # (N, D)
    reach = distance[rows, nearest] + 1e-4
    if math.isinf(p):
        direction = grad.sign()
    else:
        direction = grad / (dual[rows, nearest] + tiny)[:, None]
    # Minus: the margins fall towards the boundary against their gradient.
    return (-reach[:, None] * direction).view_as(grads[:, 0])
