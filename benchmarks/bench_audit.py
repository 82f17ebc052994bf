#!/usr/bin/env python
"""Benchmark privface's full ``audit()`` against pycanon on CelebA attribute tables.

Tables
    * the real CelebA slice: the first 20,000 rows of ``list_attr_celeba_first20k.txt`` joined with
      their identities from ``identity_CelebA.txt``;
    * larger tables (200k, 1M, 10M rows by default) resampled *with replacement* from those 20,000
      rows with ``numpy.random.default_rng(SEED)`` (``SEED = 20240517``, row indices drawn with
      ``rng.integers(0, 20000, n)``), so every size is reproducible.

    The 40 attribute columns are int8 (values 1/-1); ``identity`` is int64 (as pandas reads it).
    Every table has a RangeIndex (pycanon's grouping relies on it).

Settings
    (a) 10 QIs (the first 10 attributes in file order: 5_o_Clock_Shadow ... Blurry), SA
        Heavy_Makeup;
    (b) all 40 attributes as QIs, SA identity.

Measured, for every size and setting
    * privface: one ``audit()`` call computing every metric with the requirements
      k=5, l=2, entropy_l=2, c=2, t=0.2, beta=1, enhanced_beta=1, delta=1 (so all per-class failure
      counts are computed too); best wall time of a few repeats (5 up to 200k rows, 3 up to 1M,
      1 above), in a fresh spawned process;
    * privface's peak memory: the peak RSS *increase* during one audit, in that fresh process. The
      table is built first, garbage is collected, freed heap goes back to the OS (glibc
      ``malloc_trim``), the kernel's RSS high-water mark is reset
      (``echo 5 > /proc/self/clear_refs``), the audit runs, and the peak is read with
      ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (cross-checked with ``VmHWM`` from
      ``/proc/self/status``). RSS is what the machine has to provide, including pandas/numpy
      temporaries and allocator slack, which tracemalloc would only partly see; the reset makes the
      number the audit's own rather than the table generation's. A tracemalloc peak (numpy buffers
      are traced) is recorded as a second opinion;
    * pycanon 1.3.6: each of k_anonymity, l_diversity, entropy_l_diversity,
      recursive_c_l_diversity, t_closeness, basic_beta_likeness, enhanced_beta_likeness,
      delta_disclosure on the same table, each in its own spawned process that builds the table,
      then times only the call and is killed after ``--pycanon-timeout`` seconds. A timeout at
      one size is recorded, without running, as a timeout at every larger size.

Run from the repository root::

    .venv/bin/python benchmarks/bench_audit.py --out /tmp/bench.json
    .venv/bin/python benchmarks/bench_audit.py --sizes 20000,200000 --pycanon-timeout 60

Where pycanon and privface compute the same quantity (k-anonymity, distinct l-diversity, basic
beta-likeness, and t-closeness on Heavy_Makeup: pycanon uses the ordered EMD for a numeric SA,
which for a binary SA equals privface's nominal one) the script says whether the values agree. The
other metrics are printed for information: pycanon floors entropy-l to an int, returns (c, l) for
recursive diversity where privface returns the largest l that holds for the given c, caps enhanced
beta differently and skips absent values in delta-disclosure (privface reports inf).
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

from common import (default_data_dir, find_celeba, git_state, log, machine_info, versions,
                    write_json)

SEED = 20240517
REPO = Path(__file__).resolve().parents[1]
ATTR_FILE = "list_attr_celeba_first20k.txt"
ID_FILE = "identity_CelebA.txt"

REQUIREMENTS = dict(k=5, l=2, entropy_l=2, c=2, t=0.2, beta=1, enhanced_beta=1, delta=1)
PYCANON_METRICS = ["k_anonymity", "l_diversity", "entropy_l_diversity", "recursive_c_l_diversity",
                   "t_closeness", "basic_beta_likeness", "enhanced_beta_likeness",
                   "delta_disclosure"]
SHORT = {"k_anonymity": "k", "l_diversity": "l", "entropy_l_diversity": "ent-l",
         "recursive_c_l_diversity": "rec-cl", "t_closeness": "t",
         "basic_beta_likeness": "beta", "enhanced_beta_likeness": "enh-beta",
         "delta_disclosure": "delta"}
SETTINGS = {
    "a": {"label": "(a) 10 QI / Heavy_Makeup", "n_qi": 10, "sa": "Heavy_Makeup"},
    "b": {"label": "(b) 40 QI / identity", "n_qi": 40, "sa": "identity"},
}
# Values expected to agree between the libraries (setting -> metrics).
COMPARABLE = {"a": ["k_anonymity", "l_diversity", "t_closeness", "basic_beta_likeness"],
              "b": ["k_anonymity", "l_diversity", "basic_beta_likeness"]}
WHY_NOT = {
    "entropy_l_diversity": "pycanon floors exp(H) to an int",
    "recursive_c_l_diversity": "pycanon returns (c, l); privface the largest l for c=2",
    "t_closeness": "identity is int, so pycanon uses the ordered EMD; privface nominal",
    "enhanced_beta_likeness": "pycanon caps with -ln of the rarest value; privface per value",
    "delta_disclosure": "pycanon skips values absent from a class; privface gives inf",
}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def celeba_dir(data_dir: Path) -> Path:
    return find_celeba(data_dir, ATTR_FILE, ID_FILE)


def load_base(data_dir: Path):
    """The real 20k CelebA slice: 40 int8 attributes + int64 identity, RangeIndex.

    Uses privface's CelebA readers when the installed privface has them, else plain pandas (the
    two give the same table).
    """
    import numpy as np
    import pandas as pd

    d = celeba_dir(data_dir)
    try:
        from privface.privmetrics.readers import read_celeba_attributes, read_celeba_identities
    except ImportError:
        attrs = pd.read_csv(d / ATTR_FILE, sep=r"\s+", skiprows=1)  # image name -> index
        ids = pd.read_csv(d / ID_FILE, sep=r"\s+", header=None, names=["image", "identity"],
                          index_col=0)["identity"]
    else:
        attrs = read_celeba_attributes(d / ATTR_FILE)
        ids = read_celeba_identities(d / ID_FILE)
    identity = ids.reindex(attrs.index)
    if identity.isna().any():
        raise SystemExit(f"{int(identity.isna().sum())} images have no identity in {ID_FILE}")
    base = attrs.astype(np.int8)
    base["identity"] = identity.to_numpy(dtype=np.int64)
    return base.reset_index(drop=True)


def make_table(base, n: int, seed: int = SEED):
    """``base`` itself when ``n`` is its length, else ``n`` rows drawn from it with replacement."""
    import numpy as np
    import pandas as pd

    if n == len(base):
        return base
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=n)
    return pd.DataFrame({c: base[c].to_numpy()[idx] for c in base.columns})


def setting_columns(base, setting: str) -> tuple[list[str], str]:
    attrs = [c for c in base.columns if c != "identity"]
    s = SETTINGS[setting]
    return attrs[: s["n_qi"]], s["sa"]


# --------------------------------------------------------------------------------------------
# Memory helpers (Linux)
# --------------------------------------------------------------------------------------------

def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc), so that memory freed while building the
    table does not hide the audit's own allocations from the RSS peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _maxrss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


# --------------------------------------------------------------------------------------------
# Workers (run in spawned processes)
# --------------------------------------------------------------------------------------------

def _jsonable(v):
    import numpy as np

    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return v
    return v


def _privface_worker(conn, data_dir: str, n: int, setting: str, repeats: int, seed: int,
                     profile: bool, use_tracemalloc: bool) -> None:
    try:
        import numpy as np

        from privface.privmetrics import audit, contingency_table

        t0 = time.perf_counter()
        base = load_base(Path(data_dir))
        df = make_table(base, n, seed)
        qi, sa = setting_columns(base, setting)
        del base
        build_s = time.perf_counter() - t0
        # Warm up imports and caches on a tiny table so the measured runs are the audit alone.
        audit(df.iloc[:100], qi, sa, **REQUIREMENTS)
        gc.collect()
        _trim_heap()

        # 1) peak memory of one audit
        rss_before = _status_kb("VmRSS")
        reset_ok = _reset_peak()
        maxrss_before = _maxrss_kb()
        t = time.perf_counter()
        report = audit(df, qi, sa, **REQUIREMENTS)
        first_s = time.perf_counter() - t
        maxrss_after = _maxrss_kb()
        hwm_after = _status_kb("VmHWM")
        mem = {
            "method": "getrusage ru_maxrss after clear_refs reset" if reset_ok
                      else "getrusage ru_maxrss (no reset: lower bound masked by earlier peak)",
            "reset_ok": reset_ok,
            "rss_before_mb": rss_before / 1024 if rss_before is not None else None,
            "peak_rss_mb": maxrss_after / 1024,
            # max(0, .): at small sizes the audit fits in memory the allocator already holds.
            "peak_increase_mb": max(0, maxrss_after - (rss_before if reset_ok
                                                       else maxrss_before)) / 1024,
            "vmhwm_peak_mb": hwm_after / 1024 if hwm_after is not None else None,
            "vmhwm_increase_mb": max(0, hwm_after - rss_before) / 1024
                                 if hwm_after is not None and rss_before is not None else None,
            "table_mb": float(df.memory_usage(index=False, deep=True).sum()) / 2**20,
        }
        result = {
            "n_classes": int(report.n_classes),
            "metrics": {k: _jsonable(v) for k, v in report.metrics.items()},
            "requirements": [{"name": r.name, "value": _jsonable(r.value), "passed": r.passed,
                              "classes_failing": r.classes_failing,
                              "records_failing": r.records_failing}
                             for r in report.requirements],
        }
        del report
        gc.collect()

        # 2) tracemalloc peak (second opinion; numpy registers its buffers with tracemalloc)
        if use_tracemalloc:
            import tracemalloc

            tracemalloc.start()
            audit(df, qi, sa, **REQUIREMENTS)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            mem["tracemalloc_peak_mb"] = peak / 2**20
            gc.collect()

        # 3) timing: best of `repeats`
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            audit(df, qi, sa, **REQUIREMENTS)
            times.append(time.perf_counter() - t)
            gc.collect()

        # 4) how much of it is grouping (the contingency table) alone
        t = time.perf_counter()
        contingency_table(df, qi, [sa])
        ct_s = time.perf_counter() - t
        gc.collect()

        prof_text = None
        if profile:
            import cProfile
            import io
            import pstats

            pr = cProfile.Profile()
            pr.enable()
            audit(df, qi, sa, **REQUIREMENTS)
            pr.disable()
            buf = io.StringIO()
            st = pstats.Stats(pr, stream=buf)
            st.sort_stats("tottime").print_stats(20)
            st.sort_stats("cumulative").print_stats(25)
            prof_text = buf.getvalue()

        result.update({"build_s": build_s, "first_s": first_s, "times_s": times,
                       "best_s": min(times) if times else first_s,
                       "contingency_s": ct_s, "memory": mem, "profile": prof_text,
                       "numpy": np.__version__})
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _pycanon_call(metric: str, df, qi: list[str], sa: str):
    from pycanon import anonymity

    fn = getattr(anonymity, metric)
    if metric == "k_anonymity":
        return fn(df, qi)
    return fn(df, qi, [sa])


def _pycanon_worker(conn, data_dir: str, n: int, setting: str, metric: str, seed: int) -> None:
    try:
        import pycanon.anonymity  # noqa: F401  (import before timing)

        base = load_base(Path(data_dir))
        df = make_table(base, n, seed)
        qi, sa = setting_columns(base, setting)
        del base
        gc.collect()
        _trim_heap()
        rss_before = _status_kb("VmRSS")
        reset_ok = _reset_peak()
        conn.send(("ready", None))
        t = time.perf_counter()
        value = _pycanon_call(metric, df, qi, sa)
        elapsed = time.perf_counter() - t
        peak = _maxrss_kb()
        inc = (peak - rss_before) / 1024 if reset_ok and rss_before is not None else None
        conn.send(("ok", {"seconds": elapsed, "value": _jsonable(value),
                          "peak_increase_mb": inc}))
    except BaseException as exc:  # noqa: BLE001
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _stop(proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(10)


def run_privface(ctx, data_dir, n, setting, repeats, seed, profile, use_tracemalloc,
                 timeout=3600):
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_privface_worker,
                       args=(child, str(data_dir), n, setting, repeats, seed, profile,
                             use_tracemalloc))
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            return {"status": "error", "error": f"no result within {timeout} s"}
        status, payload = parent.recv()
    except EOFError:
        return {"status": "error", "error": f"worker died (exit code {proc.exitcode})"}
    finally:
        _stop(proc)
    if status != "ok":
        return {"status": "error", "error": payload}
    payload["status"] = "ok"
    return payload


def run_pycanon(ctx, data_dir, n, setting, metric, seed, timeout, build_timeout=1800):
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_pycanon_worker,
                       args=(child, str(data_dir), n, setting, metric, seed))
    proc.start()
    child.close()
    try:
        if not parent.poll(build_timeout):
            return {"status": "error", "error": "table not built in time"}
        status, payload = parent.recv()
        if status != "ready":
            return {"status": "error", "error": payload}
        t0 = time.perf_counter()
        if not parent.poll(timeout):
            return {"status": "timeout", "seconds": timeout, "inferred": False,
                    "waited_s": time.perf_counter() - t0}
        status, payload = parent.recv()
    except EOFError:
        return {"status": "error", "error": f"worker died (exit code {proc.exitcode})"}
    finally:
        _stop(proc)
    if status != "ok":
        return {"status": "error", "error": payload}
    payload["status"] = "ok"
    return payload


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def reader_used() -> str:
    try:
        from privface.privmetrics.readers import read_celeba_attributes  # noqa: F401
    except ImportError:
        return "pandas.read_csv"
    return "privface.privmetrics.readers"


def _fmt_s(r: dict | None) -> str:
    if r is None:
        return "-"
    if r["status"] == "timeout":
        return f">{r['seconds']:g}" + ("*" if r.get("inferred") else "")
    if r["status"] != "ok":
        return "err"
    s = r["seconds"]
    return f"{s:.3g}" if s < 100 else f"{s:.0f}"


def _pycanon_sum(pc: dict) -> tuple[float, bool, bool, bool]:
    """(sum of seconds, any timeout (so a lower bound), complete, any inferred timeout)."""
    total, lower, complete, inferred = 0.0, False, True, False
    for m in PYCANON_METRICS:
        r = pc.get(m)
        if r is None or r["status"] == "error":
            complete = False
            continue
        total += r["seconds"]
        lower |= r["status"] == "timeout"
        inferred |= bool(r.get("inferred"))
    return total, lower, complete, inferred


def _fmt_ratio(num: float, lower: bool, den: float) -> str:
    if not den:
        return "-"
    ratio = num / den
    txt = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"
    return (">" if lower else "") + txt + "x"


def results_table(results: list[dict]) -> str:
    head = (["rows", "setting", "privface audit (s)", "privface peak +MB"]
            + [f"pycanon {SHORT[m]} (s)" for m in PYCANON_METRICS]
            + ["pycanon sum (s)", "sum / privface", "pycanon k / privface"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        pf = r["privface"]
        if pf.get("status") == "ok":
            pf_s = pf["best_s"]
            pf_txt = f"{pf_s:.3g}"
            mem_txt = f"{pf['memory']['peak_increase_mb']:.0f}"
        else:
            pf_s, pf_txt, mem_txt = None, "err", "err"
        pc = r.get("pycanon", {})
        cells = [_fmt_s(pc.get(m)) for m in PYCANON_METRICS]
        if pc:
            total, lower, complete, inferred = _pycanon_sum(pc)
            sum_txt = ((">" if lower else "") + (f"{total:.3g}" if total < 100 else f"{total:.0f}")
                       + ("*" if inferred else ""))
            if not complete:
                sum_txt += " (partial)"
            ratio_sum = _fmt_ratio(total, lower, pf_s) if pf_s else "-"
            k = pc.get("k_anonymity")
            ratio_k = (_fmt_ratio(k["seconds"], k["status"] == "timeout", pf_s)
                       if pf_s and k and k["status"] != "error" else "-")
        else:
            sum_txt = ratio_sum = ratio_k = "-"
        lines.append("| " + " | ".join([f"{r['n']:,}", SETTINGS[r["setting"]]["label"], pf_txt,
                                         mem_txt] + cells + [sum_txt, ratio_sum, ratio_k])
                     + " |")
    return "\n".join(lines)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def value_checks(r: dict) -> list[dict]:
    pf = r["privface"]
    pc = r.get("pycanon", {})
    if pf.get("status") != "ok":
        return []
    out = []
    for m in PYCANON_METRICS:
        got = pc.get(m)
        if not got or got["status"] != "ok":
            continue
        mine = pf["metrics"][m]
        theirs = got["value"]
        if m in COMPARABLE[r["setting"]]:
            verdict = "agree" if _same(mine, theirs) else "DISAGREE"
        elif m == "entropy_l_diversity" and not isinstance(mine, str):
            verdict = ("agree after floor" if int(math.floor(mine + 1e-9)) == theirs
                       else "differ (" + WHY_NOT[m] + ")")
        else:
            verdict = "not comparable: " + WHY_NOT.get(m, "different definitions")
        out.append({"metric": m, "privface": mine, "pycanon": theirs, "verdict": verdict})
    return out


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir(),
                   help=f"data folder holding celeba/{ATTR_FILE} and celeba/{ID_FILE} "
                        "(default: $PRIVFACE_DATA or ../shared/data relative to the repository)")
    p.add_argument("--sizes", default="20000,200000,1000000,10000000",
                   help="comma-separated row counts (the base size 20000 is the real slice)")
    p.add_argument("--settings", default="a,b", help="which settings to run: a, b or a,b")
    p.add_argument("--pycanon-timeout", type=float, default=120.0,
                   help="seconds before a pycanon call is killed (default 120)")
    p.add_argument("--pycanon-metrics", default=",".join(PYCANON_METRICS),
                   help="pycanon functions to time (default: all eight)")
    p.add_argument("--no-pycanon", action="store_true", help="time privface only")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed audit repeats (default: 5 up to 200k rows, 3 up to 1M, else 1)")
    p.add_argument("--seed", type=int, default=SEED, help=f"resampling seed (default {SEED})")
    p.add_argument("--profile", action="store_true",
                   help="cProfile one audit at the largest size and print the top costs")
    p.add_argument("--no-tracemalloc", action="store_true",
                   help="skip the extra tracemalloc run used as a memory cross-check")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for s in settings:
        if s not in SETTINGS:
            raise SystemExit(f"unknown setting {s!r} (use a, b)")
    metrics = [] if args.no_pycanon else [m.strip() for m in args.pycanon_metrics.split(",")
                                          if m.strip()]
    for m in metrics:
        if m not in PYCANON_METRICS:
            raise SystemExit(f"unknown pycanon metric {m!r}")
    celeba_dir(args.data)  # fail early with a clear message

    ctx = mp.get_context("spawn")
    info = machine_info(**versions("numpy", "pandas", "pycanon"))
    doc = {"machine": info, "git": git_state(untracked=False), "reader": reader_used(),
           "seed": args.seed,
           "requirements": REQUIREMENTS,
           "settings": {k: {"label": v["label"], "sa": v["sa"], "n_qi": v["n_qi"]}
                        for k, v in SETTINGS.items()},
           "pycanon_timeout_s": args.pycanon_timeout, "results": []}
    log(f"machine: {info}")
    log(f"privface at {doc['git']}, tables read with {doc['reader']}")
    timed_out_at: dict[tuple[str, str], int] = {}  # (setting, metric) -> smallest size
    largest = max(sizes)
    for n in sizes:
        for setting in settings:
            label = SETTINGS[setting]["label"]
            repeats = args.repeats or (5 if n <= 200_000 else 3 if n <= 1_000_000 else 1)
            log(f"privface  n={n:,} {label}: audit x{repeats}")
            pf = run_privface(ctx, args.data, n, setting, repeats, args.seed,
                              args.profile and n == largest, not args.no_tracemalloc)
            if pf["status"] == "ok":
                log(f"  best {pf['best_s']:.3f} s (runs {[round(t, 3) for t in pf['times_s']]}, "
                    f"grouping {pf['contingency_s']:.3f} s), peak +"
                    f"{pf['memory']['peak_increase_mb']:.0f} MB, "
                    f"{pf['n_classes']:,} classes, table built in {pf['build_s']:.1f} s")
                if pf.get("profile"):
                    print(pf["profile"], flush=True)
            else:
                log(f"  privface error: {pf['error']}")
            entry = {"n": n, "setting": setting, "privface": pf, "pycanon": {}}
            doc["results"].append(entry)
            write_json(args.out, doc)
            for m in metrics:
                first = timed_out_at.get((setting, m))
                if first is not None and n > first:
                    entry["pycanon"][m] = {"status": "timeout", "seconds": args.pycanon_timeout,
                                           "inferred": True,
                                           "note": f"timed out at {first:,} rows"}
                    log(f"pycanon   n={n:,} {label} {m}: skipped (timed out at {first:,})")
                    continue
                r = run_pycanon(ctx, args.data, n, setting, m, args.seed, args.pycanon_timeout)
                entry["pycanon"][m] = r
                if r["status"] == "timeout":
                    timed_out_at[(setting, m)] = n
                    log(f"pycanon   n={n:,} {label} {m}: timeout >{args.pycanon_timeout:g} s")
                elif r["status"] == "ok":
                    log(f"pycanon   n={n:,} {label} {m}: {r['seconds']:.3f} s -> {r['value']}")
                else:
                    log(f"pycanon   n={n:,} {label} {m}: error {r['error']}")
                write_json(args.out, doc)
            entry["checks"] = value_checks(entry)
            write_json(args.out, doc)

    print()
    print("Timings (s; '>T' = killed after T s, '>T*' = not run, timed out at a smaller size;"
          " a sum with '>' counts each timeout as T, so it and its ratios are lower bounds)")
    print(results_table(doc["results"]))
    print()
    print("Value checks (privface vs pycanon)")
    for r in doc["results"]:
        for c in r.get("checks", []):
            print(f"  {r['n']:>10,} {SETTINGS[r['setting']]['label']:<26} {c['metric']:<24} "
                  f"privface={c['privface']!s:<22} pycanon={c['pycanon']!s:<22} {c['verdict']}")
    print()
    print("privface memory (MB): peak RSS increase during audit (getrusage after clear_refs) | "
          "VmHWM increase | tracemalloc peak | table | process peak RSS")
    for r in doc["results"]:
        pf = r["privface"]
        if pf.get("status") != "ok":
            continue
        mem = pf["memory"]
        tm = mem.get("tracemalloc_peak_mb")
        print(f"  {r['n']:>10,} {SETTINGS[r['setting']]['label']:<26} "
              f"{mem['peak_increase_mb']:8.0f} | {mem['vmhwm_increase_mb'] or float('nan'):8.0f} | "
              f"{tm if tm is not None else float('nan'):8.0f} | {mem['table_mb']:6.0f} | "
              f"{mem['peak_rss_mb']:6.0f}")
    write_json(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
