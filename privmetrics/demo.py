"""The embedded demo data set: a synthetic, CelebA-like face-attribute table.

``privface audit --demo`` must work on a fresh machine without CelebA, so privface ships a
generator instead of data. It samples from a model fitted to CelebA's labels whose few numbers are
committed in ``data/celeba_attribute_stats.json`` (written by ``benchmarks/make_demo_stats.py``):

- each attribute's frequency;
- a 40x40 latent (tetrachoric) correlation matrix: attribute j of a photo is present when a
  standard normal latent z_j exceeds the threshold that gives its frequency (a Gaussian copula),
  and the latents are correlated like CelebA's (Male with No_Beard, Heavy_Makeup with
  Wearing_Lipstick, ...);
- per attribute an intra-identity correlation rho_j: z_j = sqrt(rho_j) u_j + sqrt(1 - rho_j) e_j,
  with u shared by every photo of one person and e drawn per photo. Two photos of one person then
  have latent correlation rho_j: Male (rho ~ 1) is a trait of the person, Smiling (rho ~ 0.4)
  changes from photo to photo, as in CelebA.

Both u and e use the repaired correlation matrix, so every z_j is standard normal and each
frequency is reproduced exactly in expectation; the price is that correlations between an
identity-level and a photo-level attribute come out somewhat weaker than CelebA's.

The table contains no CelebA row: it is synthetic, from aggregate statistics only.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from privface.base.errors import InputError

__all__ = ["DEMO_SEED", "demo_stats", "demo_table"]

#: The demo's fixed seed. The demo is a data set, not privacy randomness: a fixed seed makes the
#: same table, hence the same audit numbers, on every machine (the README's example output).
#: Privacy mechanisms never use a fixed seed unless asked to (see PPAS in the design).
DEMO_SEED = 0

_STATS_FILE = "celeba_attribute_stats.json"
# Alternating projections that repair the measured matrix into a correlation matrix. Mutually
# exclusive attributes (hair colours, Male and Wearing_Lipstick, ...) have tetrachoric
# correlations of +-1 that together are far from positive definite (smallest eigenvalue about
# -2.3): one eigenvalue clip would shrink every correlation; repeated clipping with Dykstra's
# correction (Higham 2002) finds the nearest correlation matrix instead.
_REPAIR_ITERATIONS = 100
_EIGENVALUE_FLOOR = 1e-3


def demo_stats() -> dict[str, Any]:
    """The committed CelebA statistics behind the demo table (a fresh copy of the JSON).

    Returns
    -------
    dict
        Keys ``attributes`` (40 names in CelebA's order), ``frequency``,
        ``intra_identity_correlation``, ``latent_correlation`` (40 x 40, as measured, not yet
        repaired), ``source`` (where the numbers came from, CelebA's licence note) and
        ``description``.

    Examples
    --------
    >>> stats = demo_stats()
    >>> stats["attributes"][20], stats["frequency"][20]
    ('Male', 0.4216)
    """
    text = resources.files(__package__).joinpath("data", _STATS_FILE).read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _model() -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Attribute names, thresholds, intra-identity correlations and the Cholesky factor."""
    stats = demo_stats()
    names = tuple(stats["attributes"])
    frequency = np.asarray(stats["frequency"], dtype=np.float64)
    rho = np.clip(np.asarray(stats["intra_identity_correlation"], dtype=np.float64), 0.0, 1.0)
    latent = np.asarray(stats["latent_correlation"], dtype=np.float64)
    # Present when z > threshold: P(z > ndtri(1 - p)) = p.
    threshold = special.ndtri(1.0 - frequency)
    factor = np.linalg.cholesky(_nearest_correlation(latent))
    for array in (threshold, rho, factor):
        array.flags.writeable = False  # cached: nobody may change them
    return names, threshold, rho, factor


def _nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """A positive definite correlation matrix near ``matrix``, by eigenvalue clipping.

    Higham's alternating projections: clip the eigenvalues (positive definite), reset the
    diagonal to 1 (a correlation matrix), with Dykstra's correction so that the iteration moves
    towards the nearest such matrix. A last clip and rescale guarantees both properties exactly.
    """
    y = (matrix + matrix.T) / 2.0
    correction = np.zeros_like(y)
    for _ in range(_REPAIR_ITERATIONS):
        r = y - correction
        x = _clip_eigenvalues(r)
        correction = x - r
        y = x.copy()
        np.fill_diagonal(y, 1.0)
    x = _clip_eigenvalues(y)
    scale = np.sqrt(np.diag(x))
    return x / np.outer(scale, scale)


def _clip_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.maximum(values, _EIGENVALUE_FLOOR)) @ vectors.T


def demo_table(
    n_images: int = 20000, *, images_per_identity: int = 20, seed: int = DEMO_SEED
) -> pd.DataFrame:
    """A synthetic face-attribute table shaped like CelebA's, with identities.

    Parameters
    ----------
    n_images : int, default 20000
        Number of rows (photos).
    images_per_identity : int, default 20
        Photos per synthetic person; the last person gets fewer when ``n_images`` is not a
        multiple.
    seed : int, default 0
        Seed of the generator. Fixed by default on purpose: the demo is a data set, and the same
        seed gives the same table on every machine. It is not privacy randomness.

    Returns
    -------
    pandas.DataFrame
        Like :func:`~privface.privmetrics.readers.read_celeba_attributes`: indexed by image name
        (``demo_000001.jpg``, ...; index name ``"image_id"``), CelebA's 40 attributes as ``int8``
        columns of 1 / -1 in CelebA's order, plus an ``int64`` ``"identity"`` column (1-based;
        photos of one person are spread over the table, as in CelebA).

    Raises
    ------
    InputError
        When ``n_images`` or ``images_per_identity`` is not a positive integer.

    Examples
    --------
    >>> table = demo_table(1000, images_per_identity=10)
    >>> table.shape, table["identity"].nunique()
    ((1000, 41), 100)
    >>> table.index[0], table.columns[20], str(table["Male"].dtype)
    ('demo_000001.jpg', 'Male', 'int8')
    """
    for name, value in (("n_images", n_images), ("images_per_identity", images_per_identity)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    names, threshold, rho, factor = _model()
    n, m = int(n_images), len(names)
    rng = np.random.default_rng(seed)
    people = -(-n // images_per_identity)
    # Row -> person: each person gets images_per_identity rows, shuffled over the table.
    owner = rng.permutation(np.repeat(np.arange(people), images_per_identity)[:n])
    # float32 halves the time and memory; thresholds on a latent need no more precision.
    factor32 = factor.T.astype(np.float32)
    person_part = rng.standard_normal((people, m), dtype=np.float32) @ factor32
    person_part *= np.sqrt(rho).astype(np.float32)
    latent = rng.standard_normal((n, m), dtype=np.float32) @ factor32
    latent *= np.sqrt(1.0 - rho).astype(np.float32)
    latent += person_part[owner]
    values = (latent > threshold.astype(np.float32)).astype(np.int8)
    values *= 2
    values -= 1  # True/False -> 1/-1
    index = pd.Index(_image_names(n), name="image_id", dtype=object)
    table = pd.DataFrame(values, index=index, columns=pd.Index(names, dtype=object), copy=False)
    table["identity"] = (owner + 1).astype(np.int64)
    return table


def _image_names(n: int) -> np.ndarray:
    """``demo_000001.jpg`` ... as Python strings, built from digit bytes rather than row by row.

    Numbers are zero-padded to at least 6 digits, like CelebA's, and all to the same width, so that
    the names sort in row order.
    """
    width = max(6, len(str(n)))
    numbers = np.arange(1, n + 1, dtype=np.int64)[:, None]
    digits = (numbers // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 10
    prefix, suffix = np.frombuffer(b"demo_", np.uint8), np.frombuffer(b".jpg", np.uint8)
    name_bytes = np.concatenate(
        [np.broadcast_to(prefix, (n, prefix.size)), (digits + ord("0")).astype(np.uint8),
         np.broadcast_to(suffix, (n, suffix.size))], axis=1)
    size = name_bytes.shape[1]
    return name_bytes.view(f"S{size}").ravel().astype(f"U{size}").astype(object)
