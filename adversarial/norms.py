"""Norms of perturbations and the projection onto a norm ball (the UAP paper's P_{p,xi}).

A perturbation budget is a radius ``xi`` in an l_p norm, ``p`` in {2, inf}, measured on images
scaled to [0, 1] (so ``xi = 8/255`` in l_inf means "at most 8 grey levels per pixel"). Norms are
taken per image: over every axis but the first (the batch) of a tensor of images.

:func:`project` is the Euclidean projection onto the ball of radius ``xi``, ``argmin_{||v'||_p
<= xi} ||v - v'||_2``: clipping each value to ``[-xi, xi]`` for l_inf, rescaling for l_2. It is
exact in the sense the tests check: the norm of its result, computed by :func:`lp_norm` in the
tensor's own dtype, is never above ``xi``, and projecting twice changes nothing.
"""

from __future__ import annotations

import math

import torch

#: The norms every attack here supports.
NORMS = (2.0, math.inf)


def check_p(p) -> float:
    """The norm ``p`` as a float, 2.0 or inf; accepts 2, "2", "inf", "linf", float("inf").

    Examples
    --------
    >>> check_p("inf"), check_p(2)
    (inf, 2.0)
    >>> check_p(1)
    Traceback (most recent call last):
    ...
    ValueError: p must be 2 or inf, got 1
    """
    text = str(p).strip().lower()
    if text in ("inf", "linf", "l_inf", "infinity"):
        return math.inf
    try:
        value = float(text.lstrip("l_") if text.startswith("l") else text)
    except ValueError:
        raise ValueError(f"p must be 2 or inf, got {p!r}") from None
    if value not in NORMS:
        raise ValueError(f"p must be 2 or inf, got {p}")
    return value


def p_name(p) -> str:
    """``"2"`` or ``"inf"``: how a norm is written in files and reports.

    Examples
    --------
    >>> p_name(float("inf")), p_name(2.0)
    ('inf', '2')
    """
    return "inf" if math.isinf(check_p(p)) else "2"


def lp_norm(v: torch.Tensor, p) -> torch.Tensor:
    """The l_p norm of each image of a batch ``(N, ...)``, shape ``(N,)``, in ``v``'s dtype.

    Examples
    --------
    >>> v = torch.tensor([[3.0, -4.0], [0.0, 0.5]])
    >>> lp_norm(v, 2).tolist(), lp_norm(v, "inf").tolist()
    ([5.0, 0.5], [4.0, 0.5])
    """
    flat = v.reshape(v.shape[0], -1)
    p = check_p(p)
    if math.isinf(p):
        return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(len(flat))
    return torch.linalg.vector_norm(flat, ord=2, dim=1)


def project(v: torch.Tensor, xi, p) -> torch.Tensor:
    """Project each image of a batch ``(N, ...)`` onto the l_p ball of radius ``xi``.

    l_inf clips every value to ``[-xi, xi]``; l_2 scales an image whose norm exceeds ``xi`` down
    to ``xi`` and leaves the others untouched (so the projection is idempotent). Floating-point
    rounding can leave a rescaled image a few ulps above ``xi``; such images are shrunk by a few
    ulps more, so the result's :func:`lp_norm` is at most ``xi`` exactly (also when ``xi`` is a
    Python float that the tensor's dtype cannot hold: the radius is rounded down).

    Parameters
    ----------
    v : Tensor (N, ...)
    xi : float or Tensor (N,)
        One radius for every image, or one per image.
    p : 2 or inf

    Examples
    --------
    >>> project(torch.tensor([[3.0, -4.0]]), 1.0, 2).tolist()
    [[0.6000000238418579, -0.800000011920929]]
    >>> project(torch.tensor([[3.0, -0.5]]), 1.0, "inf").tolist()
    [[1.0, -0.5]]
    >>> project(torch.tensor([[3.0], [3.0]]), torch.tensor([1.0, 2.0]), "inf").tolist()
    [[1.0], [2.0]]
    """
    p = check_p(p)
    exact = torch.as_tensor(xi, dtype=torch.float64, device=v.device)
    radius = exact.to(v.dtype)
    # Rounding xi to the tensor's dtype may go up (0.6024345641 becomes 0.6024345756 in
    # float32); step down to the largest value not above xi, so the bound holds for xi itself.
    radius = torch.where(radius.double() > exact,
                         torch.nextafter(radius, torch.zeros_like(radius)), radius)
    if radius.dim() == 0:
        radius = radius.expand(v.shape[0])
    if radius.shape != (v.shape[0],):
        raise ValueError(f"xi must be a number or one radius per image ({v.shape[0]}), got "
                         f"shape {tuple(radius.shape)}")
    if not bool(torch.isfinite(radius).all()) or bool((radius < 0).any()):
        raise ValueError(f"xi must be finite and >= 0, got {xi}")
    shape = (-1,) + (1,) * (v.dim() - 1)
    if math.isinf(p):
        bound = radius.view(shape)
        return torch.minimum(torch.maximum(v, -bound), bound)
    norm = lp_norm(v, 2)
    scale = torch.where(norm > radius, radius / torch.clamp(norm, min=torch.finfo(v.dtype).tiny),
                        torch.ones_like(norm))
    out = v * scale.view(shape)
    # The rescaled norm is xi up to rounding; shrink the few images that land above it. Each
    # round shrinks by a growing number of ulps, so a handful of rounds always suffices.
    eps = torch.finfo(v.dtype).eps
    for step in range(1, 40):
        over = lp_norm(out, 2) > radius
        if not bool(over.any()):
            break
        shrink = torch.where(over, 1.0 - eps * 2.0 ** step, 1.0).to(v.dtype)
        out = out * shrink.view(shape)
    return out
