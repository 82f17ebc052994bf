"""Tables end to end: ``privface audit`` of a 10M-row Parquet file, and CelebA's text layout read.

Writes its files under ``--dir`` (default /tmp/privface-bench-io; never the repository), drawn
with replacement from the 20,000 real CelebA rows (40 attributes, identity), then measures:

* the command ``privface audit t10m.parquet --qi <40 attributes> --sensitive identity --k 5``
  in a fresh process each time (wall and CPU seconds, best and median of ``--repeats``);
* its parts in one process: the imports, ``read_table`` of the Parquet file, the audit;
* ``read_celeba_attributes`` of a 1M-row file in the official layout (rows/s), and of the same
  rows through the general (pandas) parser the byte parser falls back to.

    python benchmarks/bench_tables_io.py --repeats 5
    python benchmarks/bench_tables_io.py --celeba-only --repeats 9 --against HEAD~1  # A/B
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, default_data_dir, find_celeba, log

ATTR_FILE = "list_attr_celeba_first20k.txt"
ID_FILE = "identity_CelebA.txt"


def make_files(data_dir: Path, folder: Path, parquet_rows: int, text_rows: int) -> None:
    import numpy as np
    import pandas as pd

    from privface.privmetrics.readers import (read_celeba_attributes, read_celeba_identities,
                                              write_celeba_attributes)

    folder.mkdir(parents=True, exist_ok=True)
    celeba = find_celeba(data_dir, ATTR_FILE, ID_FILE)
    attrs = read_celeba_attributes(celeba / ATTR_FILE)
    ids = read_celeba_identities(celeba / ID_FILE).reindex(attrs.index).to_numpy(np.int64)
    rng = np.random.default_rng(0)
    parquet = folder / "t10m.parquet"
    if parquet_rows and not parquet.exists():
        pick = rng.integers(0, len(attrs), parquet_rows)
        table = pd.DataFrame(attrs.to_numpy()[pick], columns=attrs.columns)
        table["identity"] = ids[pick]
        table.to_parquet(parquet)
        log(f"wrote {parquet} ({parquet_rows:,} rows)")
    text = folder / "celeba_1m.txt"
    if not text.exists():
        pick = rng.integers(0, len(attrs), text_rows)
        names = pd.Index([f"{i:07d}.jpg" for i in range(1, text_rows + 1)], name="image_id")
        write_celeba_attributes(pd.DataFrame(attrs.to_numpy()[pick], index=names,
                                             columns=attrs.columns), text)
        log(f"wrote {text} ({text_rows:,} rows)")


def cli_runs(parquet: Path, repeats: int) -> list[tuple[float, float]]:
    import pyarrow.parquet as pq

    qi = ",".join(n for n in pq.read_schema(parquet).names
                  if n not in ("identity", "__index_level_0__"))
    command = [sys.executable, "-m", "privface.cli.main", "audit", str(parquet), "--qi", qi,
               "--sensitive", "identity", "--k", "5"]
    runs = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append((time.perf_counter() - start, (after.ru_utime - before.ru_utime)
                     + (after.ru_stime - before.ru_stime)))
    return runs


def parts(parquet: Path) -> dict[str, float]:
    """Imports, read and audit, in a fresh process (the numbers a cold command sees)."""
    code = f"""
import time; t0 = time.perf_counter()
import privface.cli.main
from privface.privmetrics import audit
from privface.privmetrics.readers import read_table
t1 = time.perf_counter()
table = read_table({str(parquet)!r})
t2 = time.perf_counter()
qi = [c for c in table.columns if c != "identity"]
audit(table, qi, ["identity"], k=5)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return dict(zip(("imports", "read_table", "audit (first call)"), map(float, out)))


def celeba_rates(text: Path, repeats: int, against: str | None = None) -> dict[str, float]:
    """Rows/s (best of ``repeats``) of each reader, the readers taking turns in every round.

    ``against``: a git revision whose ``privmetrics/readers/celeba.py`` is timed as well, for
    an A/B in the same minutes on a noisy machine.
    """
    import pandas as pd

    from privface.privmetrics.readers import celeba

    def general() -> pd.DataFrame:
        names = celeba.celeba_header(text)
        images, values = celeba._parse_celeba_rows(text, names)
        return pd.DataFrame(values, index=pd.Index(images, dtype=object), columns=names)

    calls = {"byte parser": lambda: celeba.read_celeba_attributes(text),
             "general parser (before)": general}
    if against:
        old = reader_at(against)
        calls[f"byte parser at {against}"] = lambda: old.read_celeba_attributes(text)
        pd.testing.assert_frame_equal(calls["byte parser"](), calls[f"byte parser at {against}"](),
                                      check_exact=True)
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            table = call()
            best[name] = min(best[name], time.perf_counter() - start)
            rows = len(table)
            del table  # freeing a million names is not reading them: outside the timing
    return {name: rows / seconds for name, seconds in best.items()}


def reader_at(revision: str):
    """``privface.privmetrics.readers.celeba`` as it was at a git revision, as a module."""
    import importlib.util
    import tempfile

    source = subprocess.run(["git", "show", f"{revision}:privmetrics/readers/celeba.py"],
                            check=True, capture_output=True, cwd=REPO).stdout
    path = Path(tempfile.mkdtemp()) / "celeba_at_revision.py"
    path.write_bytes(source)
    # A name inside the package, so that its relative imports resolve as the original's.
    spec = importlib.util.spec_from_file_location("privface.privmetrics.readers._celeba_at", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/privface-bench-io"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--celeba-only", action="store_true",
                        help="only the CelebA text reader (no Parquet file, no audit)")
    parser.add_argument("--against", metavar="REVISION",
                        help="also time the CelebA reader of this git revision, taking turns")
    args = parser.parse_args(argv)
    make_files(args.data, args.dir, 0 if args.celeba_only else 10_000_000, 1_000_000)
    if not args.celeba_only:
        audit_runs(args)
    for name, rate in celeba_rates(args.dir / "celeba_1m.txt", args.repeats,
                                          args.against).items():
        print(f"CelebA text layout, 1M rows, {name}: {rate / 1e6:.2f}M rows/s (best of "
              f"{args.repeats}; load {os.getloadavg()[0]:.1f})")
    return 0


def audit_runs(args: argparse.Namespace) -> None:
    runs = cli_runs(args.dir / "t10m.parquet", args.repeats)
    walls = [w for w, _ in runs]
    print(f"privface audit (10M x 41 Parquet): wall best {min(walls):.2f} s, median "
          f"{statistics.median(walls):.2f} s; CPU best {min(c for _, c in runs):.2f} s "
          f"({args.repeats} runs, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    for name, seconds in parts(args.dir / "t10m.parquet").items():
        print(f"  {name}: {seconds:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
