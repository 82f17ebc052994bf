"""Compute the small CelebA statistics behind the embedded demo table.

Usage::

    python benchmarks/make_demo_stats.py ../shared/data

(``--out PATH`` writes elsewhere than ``privmetrics/data/celeba_attribute_stats.json``.)

Reads the shared CelebA slice (``celeba/list_attr_celeba_first20k.txt`` and
``celeba/identity_CelebA.txt`` under the data folder) and writes, rounded to 4 decimals:

- ``frequency``: per attribute, the share of images where it is present (value 1);
- ``latent_correlation``: the 40x40 tetrachoric correlation matrix, i.e. the correlation of the
  latent Gaussians of a Gaussian copula that reproduces every 2x2 table of two attributes;
- ``intra_identity_correlation``: per attribute, the tetrachoric correlation between two different
  photos of the same person (Male ~ 1: a person keeps it; Smiling low: it changes per photo).

:func:`privface.privmetrics.demo.demo_table` samples from exactly this model. The JSON records
the input files' SHA-256, so anyone with CelebA can check that the numbers came from them.
Only these aggregate statistics are committed, never CelebA's rows: CelebA is licensed for
non-commercial research use only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from privface.privmetrics.readers import (join_identities, read_celeba_attributes,
                                          read_celeba_identities)

ATTRIBUTE_FILE = "list_attr_celeba_first20k.txt"
IDENTITY_FILE = "identity_CelebA.txt"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "privmetrics" / "data" / (
    "celeba_attribute_stats.json")
LICENCE = ("CelebA (Liu, Luo, Wang and Tang, 'Deep Learning Face Attributes in the Wild', "
           "ICCV 2015) is released for non-commercial research use only; images are copyright "
           "their owners. This file holds only aggregate statistics of its labels, used to "
           "synthesise privface's demo table; no CelebA row or image is included.")
DECIMALS = 4
# Gauss-Legendre nodes for the bivariate normal integral below (smooth integrand: 64 is plenty).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


def bivariate_normal_cdf(h: float, k: float, rho: float) -> float:
    """P(X <= h, Y <= k) for standard normals with correlation ``rho``.

    Uses Sheppard's formula, Phi2 = Phi(h) Phi(k) + 1/(2 pi) int_0^asin(rho) exp(-(h^2 - 2hk sin t
    + k^2) / (2 cos^2 t)) dt, whose integrand stays smooth up to |rho| = 1; deterministic, unlike
    scipy's quasi-Monte-Carlo multivariate normal CDF.
    """
    top = np.arcsin(np.clip(rho, -1.0, 1.0))
    theta = 0.5 * top * (_NODES + 1.0)
    cos2 = np.maximum(np.cos(theta) ** 2, 1e-300)
    integrand = np.exp(-(h * h - 2.0 * h * k * np.sin(theta) + k * k) / (2.0 * cos2))
    return float(special.ndtr(h) * special.ndtr(k) + 0.5 * top * (_WEIGHTS @ integrand)
                 / (2.0 * np.pi))


def tetrachoric(p_both_absent: float, p_first_absent: float, p_second_absent: float) -> float:
    """The latent correlation that reproduces a 2x2 table (given by its 00 cell and margins)."""
    h, k = stats.norm.ppf(p_first_absent), stats.norm.ppf(p_second_absent)
    low = max(0.0, p_first_absent + p_second_absent - 1.0)  # Phi2 at rho = -1
    high = min(p_first_absent, p_second_absent)  # Phi2 at rho = +1
    if p_both_absent <= low + 1e-12:
        return -1.0
    if p_both_absent >= high - 1e-12:
        return 1.0
    return float(optimize.brentq(lambda r: bivariate_normal_cdf(h, k, r) - p_both_absent,
                                 -1.0, 1.0, xtol=1e-10))


def latent_correlation(present: np.ndarray) -> np.ndarray:
    """Tetrachoric correlation of every pair of columns of a boolean (n, m) matrix."""
    x = present.astype(np.float64)
    n, m = x.shape
    absent = 1.0 - x
    p_absent = absent.mean(axis=0)
    both_absent = (absent.T @ absent) / n  # all 2x2 tables at once
    out = np.eye(m)
    for j in range(m):
        for k in range(j + 1, m):
            out[j, k] = out[k, j] = tetrachoric(both_absent[j, k], p_absent[j], p_absent[k])
    return out


def intra_identity_correlation(
    present: pd.DataFrame, identity: pd.Series
) -> tuple[np.ndarray, int]:
    """Per attribute, the tetrachoric correlation of two different photos of one person.

    Pools every ordered pair of different photos of the same identity: with n photos of which a
    show the attribute, a(a - 1) pairs show it twice, (n - a)(n - a - 1) never, 2a(n - a) once.
    Returns the correlations and the number of unordered pairs.
    """
    groups = present.groupby(identity.to_numpy())
    n = groups.size().to_numpy(dtype=np.float64)[:, None]
    a = groups.sum().to_numpy(dtype=np.float64)
    b = n - a
    pairs = (n * (n - 1)).sum()
    both_absent = (b * (b - 1)).sum(axis=0) / pairs
    first_absent = (b * (n - 1)).sum(axis=0) / pairs  # margin of the pooled pair table
    rho = np.array([tetrachoric(both_absent[j], first_absent[j], first_absent[j])
                    for j in range(present.shape[1])])
    return rho, int(pairs // 2)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compute_stats(data: Path) -> dict:
    """All statistics of the demo model, from the shared data folder."""
    celeba = data / "celeba"
    attributes = read_celeba_attributes(celeba / ATTRIBUTE_FILE)
    table = join_identities(attributes, read_celeba_identities(celeba / IDENTITY_FILE),
                            source=celeba / IDENTITY_FILE)
    present = attributes == 1
    rho, pairs = intra_identity_correlation(present, table["identity"])
    r = np.round
    return {
        "description": "Aggregate statistics of CelebA's 40 face attributes, from which "
                       "privface.privmetrics.demo.demo_table synthesises its demo table: a "
                       "Gaussian copula (one latent normal per attribute, thresholded at the "
                       "attribute's frequency) whose latent is the sum of a per-identity part "
                       "(variance intra_identity_correlation) and a per-photo part.",
        "source": {
            "dataset": "CelebA",
            "files": {
                ATTRIBUTE_FILE: {"sha256": sha256(celeba / ATTRIBUTE_FILE),
                                 "rows": int(len(attributes))},
                IDENTITY_FILE: {"sha256": sha256(celeba / IDENTITY_FILE)},
            },
            "images": int(len(attributes)),
            "identities": int(table["identity"].nunique()),
            "same_identity_photo_pairs": pairs,
            "script": "benchmarks/make_demo_stats.py",
            "licence": LICENCE,
        },
        "attributes": list(map(str, attributes.columns)),
        "frequency": r(present.mean().to_numpy(), DECIMALS).tolist(),
        "intra_identity_correlation": r(rho, DECIMALS).tolist(),
        "latent_correlation": r(latent_correlation(present.to_numpy()), DECIMALS).tolist(),
    }


def dumps(stats_: dict) -> str:
    """JSON with one list (or matrix row) per line: small, and readable in a diff."""
    head = {k: v for k, v in stats_.items() if k in ("description", "source")}
    parts = [json.dumps(head, indent=2)[:-2]]  # drop the closing "\n}"
    for key in ("attributes", "frequency", "intra_identity_correlation"):
        parts.append(f',\n  "{key}": {json.dumps(stats_[key])}')
    rows = ",\n    ".join(json.dumps(row) for row in stats_["latent_correlation"])
    parts.append(f',\n  "latent_correlation": [\n    {rows}\n  ]\n}}\n')
    return "".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the shared data folder (holds celeba/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON to write")
    args = parser.parse_args(argv)
    text = dumps(compute_stats(args.data))
    json.loads(text)  # never write a file that does not parse
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode())} bytes)")


if __name__ == "__main__":
    main()
