#!/usr/bin/env python
"""How many of a k-Same photo run's groups mix an attribute, and how few the persons allow.

Reads a finished run (``OUT/.privface-run/faces.csv`` for each face's readings and person,
``OUT/certificates`` for each face's k-Same group) and prints, per attribute, the groups whose
members (the faces that received their own group's average) mix faces that show it and faces that
do not. For ``--bound`` it also prints a lower bound on the groups that must mix it, from the
persons alone: a group holds ``--persons`` different persons (2k with the face region), so a
person with more photos of one side in a class than that side has pure groups leaves the rest to
distinct mixed groups::

    .venv/bin/python benchmarks/ksame_mixing.py OUT --bound Eyeglasses

(benchmarks/README.md, "The third round".)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

ATTRIBUTES = ["Smiling", "Mouth_Slightly_Open", "Eyeglasses"]


def groups_of(run: Path) -> pd.DataFrame:
    """Each face's readings and person with its k-Same group and whether that is its own."""
    faces = pd.read_csv(run / ".privface-run" / "faces.csv")
    rows = []
    for path in sorted((run / "certificates").glob("*.json")):
        certificate = json.loads(path.read_text())
        for face in certificate["faces"]:
            if "ksame" in face:
                rows.append((certificate["file"], face["face"], face["ksame"]["group"],
                             face["ksame"]["own_group"]))
    groups = pd.DataFrame(rows, columns=["file", "face", "group", "own"])
    return faces.merge(groups, on=["file", "face"])


def mixed_groups(members: pd.DataFrame, attribute: str) -> tuple[int, int, float]:
    """(groups mixing ``attribute``, groups, mean minority share in the mixed ones)."""
    share = (members[attribute] == 1).groupby(members["group"]).mean()
    mixed = share[(share > 0) & (share < 1)]
    minority = float(np.minimum(mixed, 1 - mixed).mean()) if len(mixed) else 0.0
    return len(mixed), len(share), minority


def must_mix(photos_per_person: np.ndarray, size: int) -> int:
    """Fewest mixed groups one side of a class needs: with G pure groups of ``size`` persons
    (possible while the persons' photos, at most G each, fill them), a person's photos beyond G
    go to distinct mixed groups.

    Examples
    --------
    >>> must_mix(np.array([3, 1, 1]), 3)  # one pure group; the first person has 2 left
    2
    >>> must_mix(np.array([1, 1]), 3)  # no pure group at all
    1
    """
    counts = np.asarray(photos_per_person)
    best = int(counts.max(initial=0))
    for pure in range(1, int(counts.sum()) // size + 1):
        if np.minimum(counts, pure).sum() < size * pure:
            break
        best = min(best, int(np.maximum(counts - pure, 0).max(initial=0)))
    return best


def mixing_bound(faces: pd.DataFrame, attribute: str, classes: list[str], size: int) -> int:
    """Sum over classes of the mixed groups the persons force (:func:`must_mix`, both sides)."""
    total = 0
    for _, block in faces.groupby(classes):
        shows = block[attribute] == 1
        total += max(must_mix(block.loc[shows, "person"].value_counts().to_numpy(), size),
                     must_mix(block.loc[~shows, "person"].value_counts().to_numpy(), size))
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="OUT of a k-Same photo run")
    parser.add_argument("--bound", nargs="*", default=[], help="attributes to bound")
    parser.add_argument("--classes", nargs="*", default=["Male", "Young"],
                        help="the columns the groups form within (the run's editable QIs)")
    parser.add_argument("--persons", type=int, default=10, help="persons per group (2k)")
    args = parser.parse_args(argv)
    faces = groups_of(args.run)
    members = faces[faces["own"]]
    print(f"{len(faces):,} faces, {len(members):,} in their own group, "
          f"{members['group'].nunique():,} groups")
    for attribute in ATTRIBUTES + [a for a in args.bound if a not in ATTRIBUTES]:
        mixed, groups, minority = mixed_groups(members, attribute)
        line = f"{attribute}: {mixed} of {groups} groups mix it (minority share {minority:.3f})"
        if attribute in args.bound:
            line += (f"; the persons force at least "
                     f"{mixing_bound(faces, attribute, args.classes, args.persons)}")
        print(line)


if __name__ == "__main__":
    main()
