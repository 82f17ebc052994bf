"""Photos per second of privface's photo commands beside deface's, on the same photos, in one run.

Runs, each as its own process and on the first N photos of the shared 200-identity set:

* deface (PyPI ``deface``: CenterFace detection + blur), the tool a user compares with;
* ``privface anonymize PHOTOS --t 0.2 --out OUT`` (the default run, with its checks);
* ``privface evaluate PHOTOS OUT`` (leakage, quality and utility of that run's photos);
* ``privface predict PHOTOS`` (stage I: the 40 attributes of each photo's largest face).

For each: wall seconds, photos (or pairs) per second, CPU seconds (user + system of the process
and its workers) and peak memory (the largest resident set of the process or any of its workers,
from ``wait4``), and the wall time as a multiple of deface's. deface is no dependency of
privface: install it in a separate environment (``python -m venv /work/venv-deface &&
/work/venv-deface/bin/pip install deface==1.5.0 onnxruntime``) and pass ``--deface``; it runs
offline (its CenterFace model ships in the wheel). deface writes its output beside each input, so
it gets a copy of the photos.

    python benchmarks/bench_throughput.py --photos 200 --deface /work/venv-deface/bin/deface
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import default_data_dir, find_celeba, log

PHOTOS = "img_align_celeba_200ids"


def run(command: list[str], cwd: Path) -> dict:
    """Run one command; its wall time, CPU seconds and peak resident memory (with workers)."""
    start = time.perf_counter()
    with open(cwd / "stderr.txt", "ab") as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    shown = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command))
    for folder, placeholder in ((cwd / "photos", "PHOTOS"), (cwd / "deface", "COPIES"),
                                (cwd / "out", "OUT"), (cwd, "TMP")):
        shown = shown.replace(str(folder), placeholder)
    return {"command": shown.replace("python -m privface.cli.main", "privface"),
            "exit": process.returncode, "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200, help="how many photos (default 200)")
    parser.add_argument("--deface", type=Path, help="the deface command of its own environment")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["deface", "anonymize", "evaluate", "predict"])
    args = parser.parse_args(argv)
    source = find_celeba(args.data, PHOTOS) / PHOTOS
    files = sorted(source.glob("*.jpg"))[:args.photos]
    privface = [sys.executable, "-m", "privface.cli.main"]
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        work = Path(tmp)
        photos, copies = work / "photos", work / "deface"
        photos.mkdir()
        copies.mkdir()
        for f in files:
            (photos / f.name).symlink_to(f)
            shutil.copy(f, copies / f.name)
        plan = [
            ("deface", [str(args.deface), str(copies)] if args.deface else None),
            ("anonymize", [*privface, "anonymize", str(photos), "--t", "0.2", "--out",
                           str(work / "out")]),
            ("evaluate", [*privface, "evaluate", str(photos), str(work / "out")]),
            ("predict", [*privface, "predict", str(photos), "--output",
                         str(work / "attrs.txt")]),
        ]
        rows = []
        for name, command in plan:
            if name in args.skip or command is None:
                continue
            log(f"{name}: {' '.join(command)}")
            row = run(command, work)
            row["name"] = name
            rows.append(row)
            log(f"{name}: exit {row['exit']}, {row['wall_s']:.1f} s")
        errors = (work / "stderr.txt").read_text(errors="replace")
    deface = next((r for r in rows if r["name"] == "deface" and r["exit"] == 0), None)
    print(f"\n{len(files)} photos of {PHOTOS}; {os.cpu_count()} cores\n")
    print("| run | exit | wall s | photos/s | CPU s | peak MB | wall / deface |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        ratio = f"{r['wall_s'] / deface['wall_s']:.1f}x" if deface else "-"
        print(f"| `{r['command']}` | {r['exit']} | {r['wall_s']:.1f} | "
              f"{len(files) / r['wall_s']:.2f} | {r['cpu_s']:.1f} | {r['peak_mb']:.0f} | "
              f"{ratio} |")
    if any(r["exit"] != 0 for r in rows):
        print("\nstandard error of the runs:\n" + errors[-4000:])
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
