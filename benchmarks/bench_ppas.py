#!/usr/bin/env python
"""Time PPAS (``select_attributes``) for 100,000 faces against the 20,000-row CelebA reference.

Reference
    R = the first 20,000 rows of ``list_attr_celeba_first20k.txt`` joined with their identities
    from ``identity_CelebA.txt`` (40 int8 attributes, 1/-1, and an int64 ``identity``).
Faces
    ``--faces`` rows (100,000 by default) drawn with replacement from the 40 attributes of the
    slice with ``numpy.random.default_rng(SEED)`` (``SEED = 20240517``).
Settings (QIs are the attributes in file order, leaving out the SA)
    * 10 or 40 QIs (39 when the SA is an attribute), editable = all QIs or the first half;
    * SA ``identity``: k=5, l=2 and t=0.95 for 10 QIs (t=0.2 is unreachable: the best class's
      nominal EMD to the identity distribution is 0.7816 over 10 QIs and 0.9929 over 40), no t
      for 40 QIs; the t=0.2 attempt is timed too (it fails fast with PPASInfeasibleError);
    * SA ``Heavy_Makeup`` (binary): k=5, l=2, t=0.2 as asked;
    * worst case: 40 QIs, no requirement at all, so every one of R's 16,579 classes is a
      candidate and the distance matrix is 100,000 x 16,579.
    Every run uses epsilon=2, seed=1 and ``on_infeasible="skip"`` (with half the QIs fixed, many
    faces share their fixed QIs with no feasible class), except the t=0.2 attempt, which raises.

Each setting is timed end to end (contingency table of R, feasible classes, DP, projection,
certificates arrays), best of ``--repeat`` runs, in this process.

Run from the repository root::

    PRIVFACE_DATA=/work/shared/data .venv/bin/python benchmarks/bench_ppas.py
    .venv/bin/python benchmarks/bench_ppas.py --data /path/to/data --faces 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from privface.privmetrics.ppas import PPASInfeasibleError, select_attributes
from privface.privmetrics.readers import (
    join_identities,
    read_celeba_attributes,
    read_celeba_identities,
)

SEED = 20240517


def _settings(columns: list[str]) -> list[tuple[str, list[str], list[str], str, dict, str]]:
    """(label, qi, editable, sa, requirements, on_infeasible) for every timed run."""
    out = []

    def qis(n: int, sa: str) -> list[str]:
        return [c for c in columns if c != sa][:n]

    for n, sa, req in [
        (10, "identity", dict(k=5, l=2, t=0.95)),
        (10, "Heavy_Makeup", dict(k=5, l=2, t=0.2)),
        (40, "identity", dict(k=5, l=2)),
        (39, "Heavy_Makeup", dict(k=5, l=2, t=0.2)),
    ]:
        qi = qis(n, sa)
        for editable, what in [(qi, "all"), (qi[: n // 2], f"first {n // 2}")]:
            out.append((f"{n} QIs, A={what}", qi, editable, sa, req, "skip"))
    qi = qis(40, "identity")
    out.append(("40 QIs, A=all, t=0.2 (unreachable)", qi, qi, "identity",
                dict(k=5, l=2, t=0.2), "raise"))
    out.append(("40 QIs, A=all, no requirement (worst case)", qi, qi, "identity", {}, "skip"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("PRIVFACE_DATA"),
                        help="the shared data folder (holding celeba/); default $PRIVFACE_DATA")
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set PRIVFACE_DATA")
    celeba = Path(args.data) / "celeba"
    attrs = read_celeba_attributes(celeba / "list_attr_celeba_first20k.txt")
    R = join_identities(attrs, read_celeba_identities(celeba / "identity_CelebA.txt"))
    rng = np.random.default_rng(SEED)
    faces = attrs.iloc[rng.integers(0, len(attrs), args.faces)]
    print(f"# PPAS: {len(faces):,} faces against a {len(R):,}-row reference; numpy "
          f"{np.__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'setting':<44} {'SA':<13} {'req':<18} {'feasible':>8} {'skipped':>8} "
          f"{'mean chg':>8} {'time (s)':>9}")
    for label, qi, editable, sa, req, mode in _settings(list(attrs.columns)):
        best = float("inf")
        result = error = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            try:
                result = select_attributes(R, faces, qi=qi, editable=editable, sensitive=sa,
                                           epsilon=2.0, seed=1, on_infeasible=mode, **req)
            except PPASInfeasibleError as exc:
                error = exc
            best = min(best, time.perf_counter() - start)
        req_text = ",".join(f"{k}={v}" for k, v in req.items()) or "none"
        if error is not None:
            print(f"{label:<44} {sa:<13} {req_text:<18} {0:>8} {'all':>8} {'-':>8} "
                  f"{best:>9.3f}   (infeasible: best t={error.best_t:.4f})")
            continue
        s = result.summary
        print(f"{label:<44} {sa:<13} {req_text:<18} {s['feasible_classes']:>8} "
              f"{s['skipped']:>8} {s['mean_changed']:>8.2f} {best:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
