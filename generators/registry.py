"""Generators by name, built in or installed as plug-ins.

A third-party package makes its generator available to privface, with no change to privface, by
declaring an entry point in the group ``privface.generators``::

    [project.entry-points."privface.generators"]
    mygan = "mypackage.gan:MyGanGenerator"

The entry point names a class (or any callable) that takes keyword parameters and returns an
object following :class:`~privface.generators.base.Generator` (a ``name``, declared
``capabilities`` and a ``generate`` returning a ``GenerationResult``). Plug-ins written for the
earlier interface (no ``capabilities``, ``generate`` returning an array) are adapted by
:func:`~privface.generators.base.as_generator`, with a DeprecationWarning.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import entry_points

from privface.base.errors import InputError

from .base import Generator, as_generator

ENTRY_POINT_GROUP = "privface.generators"

_BUILT_IN: dict[str, str] = {
    "blur": "privface.generators.baselines:BlurGenerator",
    "pixelate": "privface.generators.baselines:PixelateGenerator",
    "mask": "privface.generators.baselines:MaskGenerator",
    "ksame": "privface.generators.ksame:KSameSelectGenerator",
    "stargan": "privface.generators.stargan:StarGANGenerator",
    "diffusers": "privface.generators.diffusion:DiffusersInpaintGenerator",
}
_REGISTERED: dict[str, Callable[..., Generator]] = {}


def register(name: str, factory: Callable[..., Generator]) -> None:
    """Make ``factory`` available as ``name`` in this process (plug-ins use entry points).

    Examples
    --------
    >>> from privface.generators.baselines import BlurGenerator
    >>> register("soft-blur", lambda **kw: BlurGenerator(sigma=2, **kw))
    >>> load_generator("soft-blur").sigma
    2.0
    """
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is a built-in generator and cannot be replaced")
    _REGISTERED[name] = factory


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every generator: built in, registered, and installed plug-ins.

    Examples
    --------
    >>> {"blur", "mask", "pixelate"} <= set(available())
    True
    """
    return sorted(set(_BUILT_IN) | set(_REGISTERED) | set(_plugins()))


def load_generator(name: str, **params) -> Generator:
    """Build the generator called ``name`` with its parameters.

    Examples
    --------
    >>> load_generator("pixelate", block=8).block
    8
    >>> load_generator("nope")
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: unknown generator 'nope'; available: blur, ...
    >>> load_generator("blur", radius=3)
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: generator 'blur' has no parameter 'radius'; ...
    """
    if name in _BUILT_IN:
        module, _, attribute = _BUILT_IN[name].partition(":")
        import importlib

        factory = getattr(importlib.import_module(module), attribute)
    elif name in _REGISTERED:
        factory = _REGISTERED[name]
    else:
        plugin = _plugins().get(name)
        if plugin is None:
            raise InputError(f"unknown generator {name!r}; available: {', '.join(available())}")
        factory = plugin.load()
    _check_params(name, factory, params)
    try:
        generator = factory(**params)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        # A constructor validates its parameters: a value of the wrong type (--param
        # sigma=abc) fails there with Python's own words. Chained, so a real bug stays visible.
        raise InputError(f"generator {name!r} cannot take these parameters "
                         f"({', '.join(f'{k}={v!r}' for k, v in params.items())}): {exc}"
                         ) from exc
    if not callable(getattr(generator, "generate", None)) or \
            not isinstance(getattr(generator, "name", None), str):
        raise TypeError(f"generator {name!r} does not follow the Generator protocol (a name "
                        "and a generate(faces, source_attributes, target_attributes) method)")
    # A plug-in of privface 0.1 (no capabilities, a bare array from generate) is adapted here.
    return as_generator(generator)


def _check_params(name: str, factory: Callable, params: dict) -> None:
    """A parameter the factory does not take is the user's typo, not a bug: say which it takes."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a callable without an introspectable signature
        return
    try:
        signature.bind(**params)
    except TypeError:
        takes = [p.name for p in signature.parameters.values()
                 if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return  # **kwargs: the factory decides
        unknown = [key for key in params if key not in takes]
        what = (f"has no parameter {unknown[0]!r}" if unknown
                else "needs a parameter that was not given")
        raise InputError(f"generator {name!r} {what}; its parameters: "
                         f"{', '.join(takes) or 'none'}") from None
