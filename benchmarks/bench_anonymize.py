#!/usr/bin/env python
"""Benchmark privface's ``anonymize_table`` against anjana on CelebA attribute tables.

Tables
    * the real CelebA slice: the 20,000 rows of ``list_attr_celeba_first20k.txt`` joined with their
      identities from ``identity_CelebA.txt`` (read with privface's CelebA readers);
    * larger tables (1M rows by default) resampled *with replacement* from those 20,000 rows with
      ``numpy.random.default_rng(SEED)`` (``SEED = 20240517``, row indices
      ``rng.integers(0, 20000, n)``: the same tables as ``bench_audit.py``).

    Both anonymisers get the same table: the 10 QI columns (int8, values 1/-1) and the sensitive
    attribute, with a RangeIndex. privface gets the SA as read (identity int64, Heavy_Makeup
    int8); anjana gets it as ``str``, so that its internal t-closeness check (pycanon's) uses the
    nominal "equal distance" EMD like privface, not pycanon's ordered EMD for numbers (for the
    binary Heavy_Makeup the two are equal anyway).

Settings
    (id) QIs = the first 10 attributes in file order (5_o_Clock_Shadow ... Blond_Hair), SA identity;
    (hm) the same 10 QIs, SA Heavy_Makeup (t=0.2 on identity generalises everything to "*", so
         this setting is where t-closeness says something).

Requirement sets
    k=5; k=5, l=2; k=5, t=0.2; k=5, l=2, t=0.2.

Methods
    * privface: ``anonymize_table(table, qi, sa, k=..., l=..., t=...)``: Mondrian local recoding,
      a QI cell is kept or becomes "*", no row is suppressed. Its time includes its own final
      audit of the output.
    * anjana (1.2.3): full-domain generalisation with the hierarchy ``{0: [-1, 1], 1: ["*", "*"]}``
      for every QI, plus record suppression up to ``supp_level`` percent (``--supp``, default
      0 and 5). The closest call per requirement set: ``k_anonymity`` for k; ``l_diversity`` for
      k+l; ``t_closeness`` for k+t. anjana has no call for k+l+t: the k+t output (the same
      ``t_closeness`` call, run once) is checked for l as well.

Measured
    Every anonymiser call runs in its own spawned process, which builds the table, warms up on a
    200-row table, then times the call alone; it is killed after ``--timeout`` seconds. A call
    that finishes in under 5 s is repeated (3 runs in all) and the best time kept. A peer call
    that times out at one size is recorded, without running, as a timeout at every larger size.

    The output is normalised before anything is measured: anjana's ``index`` column (added by its
    ``reset_index`` after suppression) is dropped, any QI value outside the input's domain
    {-1, 1} counts as generalised and becomes "*", QIs and SA become ``str``, RangeIndex.
    From the normalised release, for ``n`` input rows and ``|QI| = 10``:

    * suppressed: ``n - len(release)``;
    * gen. share: ("*" cells in the release + 10 per suppressed row) / (10 n), i.e. a suppressed
      row counts as fully generalised;
    * classes: equivalence classes (distinct QI tuples) of the release;
    * DM: LeFevre's discernibility, sum over classes of ``|E|^2`` plus ``n`` for every suppressed
      row (C_DM = sum_{|E|>=k} |E|^2 + sum_{suppressed} n);
    * privface audit: ``privface.privmetrics.audit`` of the release with the requested k, l, t
      (pass/fail);
    * pycanon audit: pycanon's ``k_anonymity``, ``l_diversity``, ``t_closeness`` (nominal EMD, SA
      as str) of the release, in a spawned process killed after ``--pycanon-timeout``. pycanon
      loops over classes and, for t, over every SA value in every class, so above 20,000 rows it is
      run only when the release has at most ``--pycanon-max-classes`` (1000) classes, and its t
      only when the SA has at most ``--pycanon-max-sa-values`` (100) values; otherwise "not
      checked (size)" (for the whole audit, or for t alone).

Run from the repository root::

    .venv/bin/python benchmarks/bench_anonymize.py --out /tmp/anon.json --md /tmp/anon_table.md
    .venv/bin/python benchmarks/bench_anonymize.py --sizes 20000 --supp 5 --timeout 120
    .venv/bin/python benchmarks/bench_anonymize.py --render /tmp/anon.json   # table only
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from common import (default_data_dir, find_celeba, git_state, log, machine_info, versions,
                    write_json)

SEED = 20240517
REPO = Path(__file__).resolve().parents[1]
ATTR_FILE = "list_attr_celeba_first20k.txt"
ID_FILE = "identity_CelebA.txt"
N_QI = 10
DOMAIN = {"-1", "1"}
GEN = "*"

SETTINGS = {
    "id": {"label": "10 QI / identity", "sa": "identity"},
    "hm": {"label": "10 QI / Heavy_Makeup", "sa": "Heavy_Makeup"},
}
REQUIREMENTS = {
    "k": {"k": 5},
    "k+l": {"k": 5, "l": 2},
    "k+t": {"k": 5, "t": 0.2},
    "k+l+t": {"k": 5, "l": 2, "t": 0.2},
}
ANJANA_CALL = {"k": "k_anonymity", "k+l": "l_diversity", "k+t": "t_closeness",
               "k+l+t": "t_closeness"}
FAST_S = 5.0
REPEATS = 3


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def celeba_dir(data_dir: Path) -> Path:
    return find_celeba(data_dir, ATTR_FILE, ID_FILE)


def load_base(data_dir: Path):
    """The real 20k CelebA slice: 40 int8 attributes + int64 identity, RangeIndex."""
    from privface.privmetrics.readers import (join_identities, read_celeba_attributes,
                                              read_celeba_identities)

    d = celeba_dir(data_dir)
    attrs = read_celeba_attributes(d / ATTR_FILE)
    ids = read_celeba_identities(d / ID_FILE)
    return join_identities(attrs, ids, source=d / ID_FILE).reset_index(drop=True)


def make_table(base, n: int, seed: int = SEED):
    """``base`` itself when ``n`` is its length, else ``n`` rows drawn from it with replacement."""
    import numpy as np
    import pandas as pd

    if n == len(base):
        return base
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=n)
    return pd.DataFrame({c: base[c].to_numpy()[idx] for c in base.columns})


def columns(base, setting: str) -> tuple[list[str], str]:
    attrs = [c for c in base.columns if c != "identity"]
    return attrs[:N_QI], SETTINGS[setting]["sa"]


def build(data_dir: str, n: int, setting: str, seed: int):
    base = load_base(Path(data_dir))
    qi, sa = columns(base, setting)
    table = make_table(base, n, seed)[qi + [sa]].reset_index(drop=True)
    return table, qi, sa


# --------------------------------------------------------------------------------------------
# The anonymisers
# --------------------------------------------------------------------------------------------

def hierarchies(qi: list[str]) -> dict:
    """anjana's hierarchy format: per QI, level -> array of values, aligned by position."""
    import numpy as np

    return {q: {0: np.array([-1, 1]), 1: np.array([GEN, GEN])} for q in qi}


def call_privface(table, qi, sa, reqs):
    from privface.privmetrics import anonymize_table

    return anonymize_table(table, qi, sa, **reqs).table, ""


def call_anjana(table, qi, sa, reqs, supp):
    import anjana.anonymity as aa

    data = table.copy()
    data[sa] = data[sa].astype(str)
    hier = hierarchies(qi)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if "t" in reqs:
            out = aa.t_closeness(data, [], qi, sa, reqs["k"], reqs["t"], supp, hier)
        elif "l" in reqs:
            out = aa.l_diversity(data, [], qi, sa, reqs["k"], reqs["l"], supp, hier)
        else:
            out = aa.k_anonymity(data, [], qi, reqs["k"], supp, hier)
    return out, buf.getvalue().strip()


def normalise(out, qi: list[str], sa: str):
    """The release as both audits see it: QI and SA as str, "*" for generalised, RangeIndex."""
    import pandas as pd

    if len(out.columns) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in qi + [sa]})
    rel = out[qi + [sa]].reset_index(drop=True)  # drops anjana's "index" column
    res = {}
    for q in qi:
        s = rel[q].astype(str)
        res[q] = s.where(s.isin(DOMAIN), GEN)
    res[sa] = rel[sa].astype(str)
    return pd.DataFrame(res)


def loss(rel, qi: list[str], n: int, k: int) -> dict:
    import numpy as np

    kept = len(rel)
    supp = n - kept
    cells = int((rel[qi].to_numpy() == GEN).sum()) if kept else 0
    sizes = rel.groupby(qi, sort=False).size().to_numpy(dtype=np.int64) if kept else \
        np.zeros(0, np.int64)
    return {
        "kept_rows": kept,
        "suppressed_rows": supp,
        "generalised_cells_in_release": cells,
        "generalised_share": (cells + supp * len(qi)) / (n * len(qi)),
        "generalised_share_of_release": cells / (kept * len(qi)) if kept else float("nan"),
        "n_classes": int(len(sizes)),
        "discernibility": int((sizes ** 2).sum()) + supp * n,
        "discernibility_release_only": int((sizes ** 2).sum()),
        "normalized_average_class_size": (kept / len(sizes)) / k if len(sizes) else float("nan"),
    }


def privface_audit(rel, qi, sa, reqs) -> dict:
    from privface.privmetrics import audit

    if len(rel) == 0:
        return {"passed": None, "note": "empty release"}
    rep = audit(rel, qi, sa, **reqs)
    return {"passed": bool(rep.passed),
            "metrics": {m: _num(rep.metrics.get(m)) for m in
                        {"k": "k_anonymity", "l": "l_diversity", "t": "t_closeness"}.values()
                        if m in rep.metrics},
            "failed": [r.name for r in rep.failed]}


def anonymize_sha() -> str:
    """Short hash of the anonymize.py that this process imported (the code moves under us)."""
    import hashlib

    import privface.privmetrics.anonymize as mod

    return hashlib.sha256(Path(mod.__file__).read_bytes()).hexdigest()[:12]


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f) or math.isinf(f):
        return str(f)
    return f


def _anon_worker(conn, job: dict) -> None:
    try:
        import pandas as pd

        t0 = time.perf_counter()
        table, qi, sa = build(job["data"], job["n"], job["setting"], job["seed"])
        build_s = time.perf_counter() - t0
        reqs = job["reqs"]
        if job["method"] == "privface":
            def fn(tab):
                return call_privface(tab, qi, sa, reqs)
        else:
            def fn(tab):
                return call_anjana(tab, qi, sa, reqs, job["supp"])
        # Warm up imports (beartype, pycanon, privface's modules) on a small table.
        with contextlib.suppress(Exception):
            fn(table.iloc[:200].reset_index(drop=True))
        gc.collect()
        conn.send(("ready", build_s))
        times = []
        t = time.perf_counter()
        out, said = fn(table)
        times.append(time.perf_counter() - t)
        while times[0] < FAST_S and len(times) < REPEATS:
            del out
            gc.collect()
            t = time.perf_counter()
            out, said = fn(table)
            times.append(time.perf_counter() - t)
        rel = normalise(out, qi, sa)
        res = {"seconds": min(times), "times_s": times, "build_s": build_s,
               "message": said[-500:], "empty": len(out.columns) == 0,
               "loss": loss(rel, qi, len(table), reqs["k"])}
        res["anonymize_sha"] = anonymize_sha()
        if job["method"] == "privface":
            # privface's own loss report, to cross-check ours.
            from privface.privmetrics import anonymize_table

            own = anonymize_table(table, qi, sa, **reqs).loss
            res["own_loss"] = {k: _num(v) for k, v in own.to_dict().items()
                               if k != "per_attribute"}
        audits = {}
        for name, rq in job["audits"].items():
            audits[name] = privface_audit(rel, qi, sa, rq)
        res["privface_audit"] = audits
        pd.to_pickle(rel, job["release_path"])
        conn.send(("ok", res))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _pycanon_worker(conn, path: str, qi: list[str], sa: str, reqs: dict) -> None:
    try:
        import pandas as pd
        from pycanon import anonymity

        rel = pd.read_pickle(path)
        conn.send(("ready", None))
        t = time.perf_counter()
        vals = {"k": int(anonymity.k_anonymity(rel, qi))}
        if "l" in reqs:
            vals["l"] = int(anonymity.l_diversity(rel, qi, [sa]))
        if "t" in reqs:
            vals["t"] = float(anonymity.t_closeness(rel, qi, [sa]))
        conn.send(("ok", {"values": vals, "seconds": time.perf_counter() - t}))
    except BaseException as exc:  # noqa: BLE001
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _run(ctx, target, args, timeout: float, build_timeout: float = 1800) -> dict:
    """Run ``target`` in a spawned process; the timeout counts from its "ready" message."""
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(child, *args))
    proc.start()
    child.close()
    try:
        if not parent.poll(build_timeout):
            return {"status": "error", "error": "not ready in time"}
        status, payload = parent.recv()
        if status != "ready":
            return {"status": "error", "error": payload}
        t0 = time.perf_counter()
        if not parent.poll(timeout):
            return {"status": "timeout", "seconds": float(timeout),
                    "waited_s": time.perf_counter() - t0}
        status, payload = parent.recv()
    except EOFError:
        return {"status": "error", "error": f"worker died (exit code {proc.exitcode})"}
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(10)
    if status != "ok":
        return {"status": "error", "error": payload}
    payload["status"] = "ok"
    return payload


def pycanon_check(ctx, path, qi, sa, reqs, n, res, args) -> dict:
    lo = res["loss"]
    skipped_t = False
    if lo["kept_rows"] == 0:
        return {"status": "skipped", "why": "empty release"}
    if n > 20000:
        if lo["n_classes"] > args.pycanon_max_classes:
            return {"status": "skipped", "why": "size"}
        if "t" in reqs and res.get("sa_values", 0) > args.pycanon_max_sa_values:
            reqs = {k: v for k, v in reqs.items() if k != "t"}
            skipped_t = True
    r = _run(ctx, _pycanon_worker, (str(path), qi, sa, reqs), args.pycanon_timeout)
    if skipped_t:
        r["t_skipped"] = "size"
    if r["status"] == "ok":
        v = r["values"]
        ok = v["k"] >= reqs["k"]
        if "l" in reqs:
            ok &= v["l"] >= reqs["l"]
        if "t" in reqs:
            ok &= v["t"] <= reqs["t"] + 1e-9
        r["passed"] = bool(ok)
    return r


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _fmt_time(r: dict) -> str:
    if r.get("status") == "timeout":
        return f">{r['seconds']:g}" + ("†" if r.get("inferred") else "")
    if r.get("status") != "ok":
        return "error"
    s = r["seconds"]
    return f"{s:.3g}" if s < 100 else f"{s:.0f}"


def _fmt_audit(a: dict | None) -> str:
    if a is None:
        return "-"
    if a.get("passed") is None:
        return a.get("note", "-")
    txt = "pass" if a["passed"] else "FAIL"
    if not a["passed"] and a.get("failed"):
        txt += " (" + ",".join(a["failed"]) + ")"
    return txt


def _fmt_pycanon(p: dict | None) -> str:
    if p is None:
        return "-"
    if p["status"] == "skipped":
        return f"not checked ({p['why']})"
    if p["status"] == "timeout":
        return f"not checked (timeout {p['seconds']:g} s)"
    if p["status"] != "ok":
        return "error"
    v = p["values"]
    vals = ", ".join(f"{k}={v[k]:.3g}" if k == "t" else f"{k}={v[k]}" for k in v)
    if p.get("t_skipped"):
        vals += f"; t not checked ({p['t_skipped']})"
    return ("pass" if p["passed"] else "FAIL") + f" ({vals})"


def _fmt_ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def rows_for_table(results: list[dict]) -> list[list[str]]:
    rows = []
    for r in results:
        res = r["result"]
        pf_time = r.get("privface_seconds")
        ok = res.get("status") == "ok"
        lo = res.get("loss", {}) if ok else {}
        if ok and r["method"] != "privface" and pf_time:
            ratio = _fmt_ratio(res["seconds"] / pf_time)
        elif res.get("status") == "timeout" and pf_time:
            ratio = ">" + _fmt_ratio(res["seconds"] / pf_time)
        else:
            ratio = "-" if r["method"] != "privface" else "1x"
        method = r["method"] if r["method"] == "privface" else \
            f"anjana {ANJANA_CALL[r['reqs_name']]} supp {r['supp']:g}%"
        if r.get("reused_from"):
            method += " (its k+t release, l checked)"
        if ok and res.get("empty"):
            cells = ["empty output"] * 4
        elif ok:
            cells = [f"{lo['suppressed_rows']:,}", f"{lo['generalised_share']:.3f}",
                     f"{lo['n_classes']:,}", f"{lo['discernibility']:.3g}"]
        else:
            cells = ["-"] * 4
        audit_pf = _fmt_audit(res.get("privface_audit", {}).get(r["reqs_name"])) if ok else "-"
        audit_pc = _fmt_pycanon(r.get("pycanon")) if ok else "-"
        rows.append([f"{r['n']:,}", SETTINGS[r["setting"]]["label"], r["reqs_name"], method,
                     _fmt_time(res) + (" (same call)" if r.get("reused_from") else ""),
                     ratio, *cells, audit_pf, audit_pc])
    return rows


HEAD = ["rows", "setting", "req.", "method", "time (s)", "time / privface", "suppressed",
        "gen. share", "classes", "DM", "privface audit", "pycanon audit"]


def markdown_table(results: list[dict]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in rows_for_table(results)]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir(),
                   help=f"data folder holding celeba/{ATTR_FILE} and celeba/{ID_FILE} (default: "
                        "$PRIVFACE_DATA or ../shared/data relative to the repository)")
    p.add_argument("--sizes", default="20000,1000000",
                   help="comma-separated row counts (20000 = the real slice)")
    p.add_argument("--settings", default="id,hm", help="comma-separated: id, hm")
    p.add_argument("--requirements", default="k,k+l,k+t,k+l+t",
                   help="comma-separated: k, k+l, k+t, k+l+t")
    p.add_argument("--supp", default="0,5",
                   help="anjana's supp_level values, percent of records (comma-separated)")
    p.add_argument("--timeout", type=float, default=600,
                   help="seconds per anonymiser call (privface or anjana); the process is killed")
    p.add_argument("--pycanon-timeout", type=float, default=600,
                   help="seconds per pycanon audit of one release")
    p.add_argument("--pycanon-max-classes", type=int, default=1000,
                   help="above 20,000 rows, audit with pycanon only releases with at most this "
                        "many classes")
    p.add_argument("--pycanon-max-sa-values", type=int, default=100,
                   help="above 20,000 rows, check t with pycanon only for an SA with at most "
                        "this many values")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--md", type=Path, default=None,
                   help="write the results table (markdown) here")
    p.add_argument("--render", type=Path, default=None, metavar="JSON",
                   help="run nothing: print (and with --md write) the table of an earlier --out")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        table = markdown_table(json.loads(args.render.read_text())["results"])
        print(table)
        if args.md:
            args.md.write_text(table + "\n")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    req_names = [s.strip() for s in args.requirements.split(",") if s.strip()]
    supps = [float(s) for s in args.supp.split(",") if s.strip()]
    for s in settings:
        if s not in SETTINGS:
            raise SystemExit(f"unknown setting {s!r}")
    for r in req_names:
        if r not in REQUIREMENTS:
            raise SystemExit(f"unknown requirement set {r!r}")
    celeba_dir(args.data)
    ctx = mp.get_context("spawn")
    info = machine_info(**versions("numpy", "pandas", "privface", "anjana", "pycanon"))
    info["git_start"] = {**git_state(untracked=False), "anonymize_sha": anonymize_sha()}
    log(f"machine: {info}")
    doc = {"machine": info, "seed": args.seed, "args": {k: str(v) for k, v in
                                                        vars(args).items()},
           "results": []}
    results = doc["results"]
    timed_out: set[tuple] = set()  # (setting, call) that timed out at a smaller size
    base = load_base(args.data)
    with tempfile.TemporaryDirectory(prefix="privface-bench-anon-") as tmp:
        for n in sorted(sizes):
            for setting in settings:
                qi, sa = columns(base, setting)
                sa_values = int(base[sa].nunique())
                done: dict[tuple, dict] = {}  # anjana (supp, requirement set) -> entry
                for rname in req_names:
                    reqs = REQUIREMENTS[rname]
                    pf_seconds = None
                    for method, supp in [("privface", None)] + [("anjana", s) for s in supps]:
                        entry = {"n": n, "setting": setting, "reqs_name": rname, "reqs": reqs,
                                 "method": method, "supp": supp}
                        call = (method, supp, ANJANA_CALL[rname] if method == "anjana"
                                else rname)
                        release = Path(tmp) / f"{n}_{setting}_{method}_{supp}_{rname}.pkl"
                        reuse = done.get((supp, "k+t")) if (method == "anjana"
                                                            and rname == "k+l+t") else None
                        if reuse is not None:
                            # anjana has no k+l+t call: its k+t release (same t_closeness
                            # call) is audited for k, l and t.
                            entry["reused_from"] = "k+t"
                            res = {k: v for k, v in reuse["result"].items()
                                   if k != "privface_audit"}
                            if res.get("status") == "ok" and not res.get("empty"):
                                import pandas as pd

                                rel = pd.read_pickle(res["release_path"])
                                res["privface_audit"] = {rname: privface_audit(rel, qi, sa,
                                                                               reqs)}
                        elif (setting, call) in timed_out:
                            res = {"status": "timeout", "seconds": args.timeout,
                                   "inferred": True}
                        else:
                            call_reqs = ({k: v for k, v in reqs.items() if k != "l"}
                                         if method == "anjana" and rname == "k+l+t" else reqs)
                            job = {"data": str(args.data), "n": n, "setting": setting,
                                   "seed": args.seed, "method": method, "reqs": call_reqs,
                                   "supp": supp, "release_path": str(release),
                                   "audits": {rname: reqs}}
                            log(f"{n:,} {setting} {rname} {method}"
                                + (f" supp {supp:g}%" if supp is not None else "") + " ...")
                            res = _run(ctx, _anon_worker, (job,), args.timeout)
                            if res["status"] == "timeout":
                                timed_out.add((setting, call))
                            if res["status"] == "ok":
                                res["release_path"] = str(release)
                                res["sa_values"] = sa_values
                        entry["result"] = res
                        if method == "privface" and res.get("status") == "ok":
                            pf_seconds = res["seconds"]
                        entry["privface_seconds"] = pf_seconds
                        if res.get("status") == "ok" and not res.get("empty"):
                            entry["pycanon"] = pycanon_check(ctx, res["release_path"], qi, sa,
                                                             reqs, n, res, args)
                        if method == "anjana":
                            done[(supp, rname)] = entry
                        results.append(entry)
                        log("  " + " | ".join(rows_for_table([entry])[0]))
                        if res.get("status") == "error":
                            log("  error: " + str(res.get("error"))[-2000:])
                        write_json(args.out, doc, default=_num)
    info["git_end"] = {**git_state(untracked=False), "anonymize_sha": anonymize_sha()}
    shas = sorted({e["result"]["anonymize_sha"] for e in results
                   if e["method"] == "privface" and "anonymize_sha" in e["result"]}
                  | {info["git_start"]["anonymize_sha"], info["git_end"]["anonymize_sha"]})
    if len(shas) > 1:
        log(f"WARNING: privmetrics/anonymize.py changed during the run ({', '.join(shas)}); "
            "privface rows were measured on different code")
    doc["anonymize_versions"] = shas
    table = markdown_table(results)
    print()
    print(table)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(table + "\n")
    write_json(args.out, doc, default=_num)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
