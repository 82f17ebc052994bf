#!/usr/bin/env python
"""Audit a 100-million-row face table through Dask and through the chunked in-memory engine.

Data
    ``--rows`` rows (default 100,000,000) of synthetic CelebA-like faces in ``--files`` Parquet
    files (default 20), written once under ``--dir`` (default ``/tmp/privface-bench-dask``, outside
    the repository) and reused by later runs. File i is ``demo_table(rows / files,
    images_per_identity=20, seed=20240601 + i)`` (privface's embedded generator, fitted to CelebA's
    attribute statistics) with its identities shifted past the previous files' (each file holds
    its own persons, about 20 photos each as in CelebA: 5 million persons at 100M rows) and
    without image names: 40 ``int8`` attributes (1/-1) and an ``int64`` ``identity``. Row groups
    are pyarrow's default (1,048,576 rows).

Setting
    10 quasi-identifiers a viewer reads off a face, the attributes a face-attribute release would
    publish first (sex, age, glasses, bald, four hair colours, hat, smile), and the person
    (``identity``) as the sensitive attribute: "given what anyone can see, how well does the
    released class tell who it is?" With 2**10 possible classes over 100M faces, k-anonymity is
    a real question only for the rare combinations; l-diversity and t-closeness over 5M persons
    are the hard part, and counting them is the largest contingency table (tens of millions of
    (class, person) cells) a 10-QI audit can meet. Requirements k=5, l=2, t=0.2; distinguishing
    power on.

Engines, each in a fresh process (``--engines``)
    * ``dask``: ``dask_files_contingency`` on a ``dask.distributed.LocalCluster`` of ``--workers``
      worker processes (default 2) with one thread each; each task reads one row group
      (``--chunk-rows`` 1,000,000) and counts it; partial counts are summed 8 at a time.
    * ``chunked``: ``stream_contingency`` in the one process, ``--chunk-rows`` rows at a time.
    * ``whole`` (optional): the 11 columns read at once with ``pandas.read_parquet`` and audited
      in memory, the reference engine; needs several GB.
    Each then runs the same ``audit()`` on the counts.

Measured
    Wall time of counting (reading included) and of the audit; peak memory: the peak RSS of the
    engine's process and the peak of the sum of the RSS of its child processes (the Dask
    nanny and worker processes), sampled every 50 ms with psutil (``ru_maxrss`` is no use here:
    Linux carries it across the exec from the parent). The reports are compared as JSON text
    (every engine gets the same source label) and the contingency tables through a SHA-256 of
    their arrays.

Run from the repository root (single-threaded numerics: ``OMP_NUM_THREADS=1``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dask.py --out /tmp/bench_dask.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dask.py --rows 2000000 --files 4  # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import log, machine_info, write_json

QI = ["Male", "Young", "Eyeglasses", "Bald", "Blond_Hair", "Black_Hair", "Brown_Hair",
      "Gray_Hair", "Wearing_Hat", "Smiling"]
SA = ["identity"]
REQUIREMENTS = dict(k=5, l=2, t=0.2)
SEED = 20240601
IMAGES_PER_IDENTITY = 20
SOURCE = "bench_dask parquet files"


def data_folder(root: Path, rows: int, files: int) -> Path:
    return root / f"rows-{rows}-files-{files}"


def generate(folder: Path, rows: int, files: int) -> dict:
    """Write the Parquet files (once); returns the manifest."""
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        log(f"reusing {manifest['files']} files, {manifest['rows']:,} rows in {folder}")
        return manifest
    import pandas as pd

    from privface.privmetrics.demo import demo_table

    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    start = time.perf_counter()
    written, first_identity = 0, 0
    for i in range(files):
        n = min(per_file, rows - written)
        table = demo_table(n, images_per_identity=IMAGES_PER_IDENTITY, seed=SEED + i)
        table = table.reset_index(drop=True)
        table["identity"] += first_identity
        first_identity = int(table["identity"].max())
        tmp = folder / f".part-{i:03d}.parquet.tmp"
        table.to_parquet(tmp, index=False)
        tmp.rename(folder / f"part-{i:03d}.parquet")
        written += n
        log(f"  file {i + 1}/{files}: {n:,} rows ({time.perf_counter() - start:.0f} s)")
        del table
    size = sum(p.stat().st_size for p in folder.glob("part-*.parquet"))
    manifest = {"rows": written, "files": files, "persons": first_identity, "bytes": size,
                "seed": SEED, "images_per_identity": IMAGES_PER_IDENTITY,
                "generation_s": round(time.perf_counter() - start, 1),
                "dtypes": {str(k): str(v) for k, v in pd.read_parquet(
                    folder / "part-000.parquet").dtypes.value_counts().items()}}
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


class PeakRSS:
    """Sample the RSS of this process and of all its descendants until stopped."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self.own = self.children = self.total = 0
        self.child_cpu: dict[int, float] = {}  # last CPU seconds seen per child process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                own = self.me.memory_info().rss
                kids = 0
                for child in self.me.children(recursive=True):
                    try:
                        kids += child.memory_info().rss
                        times = child.cpu_times()
                        self.child_cpu[child.pid] = times.user + times.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                continue
            self.own, self.children = max(self.own, own), max(self.children, kids)
            self.total = max(self.total, own + kids)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def table_digest(ct) -> str:
    """SHA-256 over every array of a contingency table (classes, sizes, cells of every SA)."""
    h = hashlib.sha256()
    for array in [ct.class_keys, ct.class_sizes]:
        h.update(array.tobytes())
    for name in ct.sensitive:
        sc = ct[name]
        h.update(repr(list(sc.values[:1000])).encode())
        for array in [sc.overall, sc.cell_class, sc.cell_value, sc.cell_count, sc.class_start]:
            h.update(array.tobytes())
    return h.hexdigest()


def run_engine(engine: str, folder: Path, workers: int, chunk_rows: int) -> dict:
    """One engine, in this (fresh) process: counts, audit, timings, peak memory."""
    from privface.privmetrics import audit

    pattern = str(folder / "part-*.parquet")
    out: dict = {"engine": engine}
    cpu_start = time.process_time()
    with PeakRSS() as peak:
        if engine == "dask":
            from distributed import Client, LocalCluster

            from privface.privmetrics.dask_engine import dask_files_contingency

            start = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None, memory_limit=0) as cluster, \
                    Client(cluster) as client:
                # Workers import privface once (a few seconds); that is start-up, not counting.
                client.run(__import__, "privface.privmetrics.dask_engine")
                out["cluster_start_s"] = round(time.perf_counter() - start, 2)
                start = time.perf_counter()
                ct = dask_files_contingency(pattern, QI, SA, chunk_rows=chunk_rows)
                out["count_s"] = round(time.perf_counter() - start, 2)
        elif engine == "chunked":
            from privface.privmetrics.streaming import stream_contingency

            start = time.perf_counter()
            ct = stream_contingency(pattern, QI, SA, chunk_rows=chunk_rows)
            out["count_s"] = round(time.perf_counter() - start, 2)
        elif engine == "whole":
            import pandas as pd

            from privface.privmetrics import contingency_table
            from privface.privmetrics.streaming import find_files

            start = time.perf_counter()
            table = pd.concat([pd.read_parquet(f, columns=QI + SA) for f in find_files(pattern)],
                              ignore_index=True)
            ct = contingency_table(table, QI, SA)
            out["count_s"] = round(time.perf_counter() - start, 2)
        else:
            raise SystemExit(f"unknown engine {engine!r}")
        start = time.perf_counter()
        report = audit(ct, QI, SA, power=True, source=SOURCE, **REQUIREMENTS)
        out["audit_s"] = round(time.perf_counter() - start, 2)
    out["total_s"] = round(out["count_s"] + out["audit_s"], 2)
    # CPU seconds of the process and of its workers (cluster start included): with the wall
    # time, this says how much of the time the machine's other jobs took.
    out["cpu_s"] = round(time.process_time() - cpu_start + sum(peak.child_cpu.values()), 1)
    out["peak_rss_process_gb"] = round(peak.own / 1e9, 2)
    out["peak_rss_children_gb"] = round(peak.children / 1e9, 2)
    out["peak_rss_total_gb"] = round(peak.total / 1e9, 2)
    out["n_records"], out["n_classes"] = ct.n_records, ct.n_classes
    out["n_cells"] = int(len(ct["identity"].cell_count))
    out["table_sha256"] = table_digest(ct)
    out["report_json"] = report.to_json()
    out["metrics"] = report.to_dict()["metrics"]
    out["passed"] = report.passed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/privface-bench-dask"))
    parser.add_argument("--engines", default="dask,chunked",
                        help="comma-separated: dask, chunked, whole")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--run-engine", help=argparse.SUPPRESS)  # internal: one engine, JSON out
    args = parser.parse_args()
    folder = data_folder(args.dir, args.rows, args.files)
    if args.run_engine:
        print(json.dumps(run_engine(args.run_engine, folder, args.workers, args.chunk_rows)))
        return

    manifest = generate(folder, args.rows, args.files)
    results = {"manifest": manifest, "qi": QI, "sensitive": SA, "requirements": REQUIREMENTS,
               "workers": args.workers, "chunk_rows": args.chunk_rows,
               "machine": machine_info(),
               "versions": _versions(), "engines": {}}
    for engine in args.engines.split(","):
        log(f"{engine}: counting and auditing {manifest['rows']:,} rows ...")
        cmd = [sys.executable, __file__, "--rows", str(args.rows), "--files", str(args.files),
               "--dir", str(args.dir), "--workers", str(args.workers), "--chunk-rows",
               str(args.chunk_rows), "--run-engine", engine]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log(f"{engine} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            results["engines"][engine] = {"error": done.stderr[-3000:]}
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results["engines"][engine] = result
        log(f"{engine}: count {result['count_s']} s + audit {result['audit_s']} s "
            f"(CPU {result['cpu_s']} s); peak RSS "
            f"{result['peak_rss_process_gb']} GB (process) + {result['peak_rss_children_gb']} "
            f"GB (workers), {result['n_classes']:,} classes, {result['n_cells']:,} cells")
        write_json(args.out, results)
    ran = [r for r in results["engines"].values() if "error" not in r]
    identical = len(ran) > 1 and all(r["report_json"] == ran[0]["report_json"]
                                     and r["table_sha256"] == ran[0]["table_sha256"]
                                     for r in ran)
    results["identical"] = identical
    log(f"reports and contingency tables identical: {'yes' if identical else 'NO'}")
    if ran:
        log("metrics: " + json.dumps(ran[0]["metrics"]))
    write_json(args.out, results)


def _versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ["numpy", "pandas", "pyarrow", "dask", "distributed"]}


if __name__ == "__main__":
    main()
