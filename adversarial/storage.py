"""Saving and loading a perturbation: plain arrays in a ``.npz`` file, never pickled code.

The file holds two arrays: ``perturbation`` (float32, ``(3, H, W)``, RGB in [0, 1] units, channels
first as the attacks use it) and ``header`` (a JSON string). The header carries the format tag
:data:`FORMAT`, the budget (``xi``, ``p``), every parameter that made the perturbation, its
fooling rate per pass, the frame it lives in (the aligned face geometry, see
:mod:`~privface.adversarial.photos`) and what it was computed against. Loading uses
``np.load(allow_pickle=False)`` and checks everything a later step relies on (format, shape,
dtype, finite values, the norm within the declared budget), so a file from elsewhere either loads
as a valid perturbation or fails with a message naming the file. A saved perturbation reloads
bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from privface.base.errors import InputError
from privface.base.files import atomic_write

#: Format tag of a saved perturbation; a file with another tag is refused.
FORMAT = "privface.perturbation/1"


@dataclass
class SavedPerturbation:
    """A perturbation with its header, as written by :func:`save_perturbation`.

    Attributes
    ----------
    perturbation : ndarray (3, H, W), float32
    header : dict
        ``format``, ``xi``, ``p``, ``frame``, ``params`` and anything else saved with it.
    path : Path, optional
        The file it was read from.
    """

    perturbation: np.ndarray
    header: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def xi(self) -> float:
        """The budget: the perturbation's l_p norm is at most this."""
        return float(self.header["xi"])

    @property
    def p(self) -> str:
        """The norm of the budget, ``"2"`` or ``"inf"``."""
        return str(self.header["p"])

    def tensor(self):
        """The perturbation as a torch tensor ``(3, H, W)`` (a copy)."""
        import torch

        return torch.from_numpy(self.perturbation.copy())

    def sha256(self) -> str:
        """Digest of the perturbation's bytes (what a certificate cites)."""
        return hashlib.sha256(np.ascontiguousarray(self.perturbation).tobytes()).hexdigest()


def _norm(array: np.ndarray, p: str) -> float:
    values = np.abs(array.astype(np.float32, copy=False)).ravel()
    if p == "inf":
        return float(values.max()) if values.size else 0.0
    # float32, as torch computes it in lp_norm: the budget was checked in float32 there.
    import torch

    return float(torch.linalg.vector_norm(torch.from_numpy(array.reshape(1, -1)), dim=1)[0])


def save_perturbation(path: str | os.PathLike, perturbation, *, xi: float, p,
                      frame: dict | None = None, params: dict | None = None,
                      **metadata) -> Path:
    """Write a perturbation and its header atomically to ``path`` (``.npz``).

    Parameters
    ----------
    path : path-like
    perturbation : ndarray or Tensor (3, H, W)
        Float values in [0, 1] units (stored as float32: pass float32 for a bit-exact reload).
    xi, p : float, 2 or inf
        The budget; the perturbation must be within it.
    frame : dict, optional
        The aligned frame it lives in (``geometry``, ``height``, ``width``).
    params : dict, optional
        How it was computed (a :class:`~.uap.UAPResult`'s ``params``).
    **metadata
        More JSON-ready entries for the header (e.g. ``fooling_rates``, ``model``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "uap.npz"
    >>> v = np.full((3, 4, 4), 0.01, np.float32)
    >>> _ = save_perturbation(path, v, xi=0.04, p="inf")
    >>> loaded = load_perturbation(path)
    >>> bool((loaded.perturbation == v).all()), loaded.xi, loaded.p
    (True, 0.04, 'inf')
    """

    # imported on use: it loads torch
    from .norms import p_name

    array = perturbation.detach().cpu().numpy() if hasattr(perturbation, "detach") else \
        np.asarray(perturbation)
    array = np.ascontiguousarray(array, dtype=np.float32)
    p = p_name(p)
    _check_array(array, float(xi), p, str(path))
    header = {"format": FORMAT, "xi": float(xi), "p": p, "shape": list(array.shape),
              "frame": frame, "params": params or {}, **metadata}
    text = json.dumps(header, default=_json_default)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, perturbation=array, header=np.array(text))

    atomic_write(path, write)
    return Path(path)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} in a perturbation header")


def _check_array(array: np.ndarray, xi: float, p: str, where: str) -> None:
    if array.ndim != 3 or array.shape[0] != 3 or min(array.shape) == 0:
        raise InputError(f"a perturbation must be (3, height, width), got shape {array.shape}",
                         file=where)
    if not np.isfinite(array).all():
        raise InputError("the perturbation holds values that are not finite", file=where)
    if not (math.isfinite(xi) and xi >= 0):
        raise InputError(f"the budget xi must be a finite number >= 0, got {xi}", file=where)
    norm = _norm(array, p)
    if norm > xi:
        raise InputError(f"the perturbation's l_{p} norm {norm:.6g} exceeds its budget xi = "
                         f"{xi:.6g}", file=where)


def load_perturbation(path: str | os.PathLike) -> SavedPerturbation:
    """Read a perturbation written by :func:`save_perturbation` (arrays only, no pickle).

    Raises
    ------
    InputError
        The file is missing, not an ``.npz`` of this format, or its perturbation is malformed
        (shape, dtype, non-finite values, norm above the declared budget). The message names the
        file.
    """
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if names != {"perturbation", "header"}:
                raise InputError(f"not a privface perturbation: expected the arrays "
                                 f"'perturbation' and 'header', found {sorted(names)}",
                                 file=where)
            array, raw = data["perturbation"], data["header"]
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError("no such file", file=where) from None
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"not a privface perturbation (.npz expected): {error}",
                         file=where) from None
    try:
        header = json.loads(str(raw[()]) if raw.ndim == 0 else "")
    except (json.JSONDecodeError, TypeError):
        header = None
    if not isinstance(header, dict):
        raise InputError("the perturbation's header is not a JSON object", file=where)
    if header.get("format") != FORMAT:
        raise InputError(f"unknown format {header.get('format')!r}; expected {FORMAT!r}",
                         file=where)
    if array.dtype != np.float32:
        raise InputError(f"the perturbation must be float32, got {array.dtype}", file=where)
    p = str(header.get("p"))
    if p not in ("2", "inf"):
        raise InputError(f"the header's p must be '2' or 'inf', got {header.get('p')!r}",
                         file=where)
    try:
        xi = float(header.get("xi"))
    except (TypeError, ValueError):
        raise InputError(f"the header's xi must be a number, got {header.get('xi')!r}",
                         file=where) from None
    _check_array(array, xi, p, where)
    if list(array.shape) != header.get("shape"):
        raise InputError(f"the header says shape {header.get('shape')}, the array is "
                         f"{list(array.shape)}", file=where)
    return SavedPerturbation(array, header, Path(path))
