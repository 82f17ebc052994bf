"""Helpers the benchmark scripts share: where the data is, log lines, and what a result file
records besides the numbers (the machine, the commit) and how it is written.

The scripts run as ``python benchmarks/bench_*.py``, so this folder is on ``sys.path`` and they
import it as ``common``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """``$PRIVFACE_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("PRIVFACE_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def find_celeba(data_dir: Path, *needed: str) -> Path:
    """The CelebA folder (``data_dir/celeba`` or ``data_dir``) holding every name in ``needed``.

    Exits with a message naming what is missing where, for a script's ``--data`` option.
    """
    for cand in (data_dir / "celeba", data_dir):
        if all((cand / name).exists() for name in needed):
            return cand
    raise SystemExit(f"cannot find {' and '.join(needed)} under {data_dir} or "
                     f"{data_dir / 'celeba'} (set --data or $PRIVFACE_DATA)")


def log(msg: str) -> None:
    """Print a line with the time of day, flushed (benchmarks run for minutes under nohup)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def git_state(*, untracked: bool = True) -> dict:
    """The commit the benchmark ran on and the files changed since (untracked ones too unless
    ``untracked=False``); ``None`` where git is not available."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = ["status", "--short"] + ([] if untracked else ["--untracked-files=no"])
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "dirty": (git(*status) or "").splitlines()}


def versions(*names: str) -> dict[str, str | None]:
    """The installed version of each package (distribution or module name), ``None`` if absent."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            try:
                found[name] = __import__(name).__version__
            except (ImportError, AttributeError):
                found[name] = None
    return found


def _first_field(path: str, key: str) -> str | None:
    try:
        with open(path) as handle:
            return next((line.split(":", 1)[1].strip() for line in handle
                         if line.startswith(key)), None)
    except OSError:
        return None


def machine_info(**extra) -> dict:
    """The machine a result was measured on: CPUs, CPU model, memory, Python, platform, and
    whatever the script adds (package versions, thread settings)."""
    memory = _first_field("/proc/meminfo", "MemTotal:")
    return {"nproc": os.cpu_count(),
            "sched_affinity": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else None,
            "cpu": _first_field("/proc/cpuinfo", "model name"),
            "ram_gib": int(memory.split()[0]) / 2**20 if memory else None,
            "python": platform.python_version(), "platform": platform.platform(), **extra}


def write_json(path: Path | None, doc: dict, *, indent: int = 2,
               default: Callable | None = None) -> None:
    """Write a result file whole (through a temporary file and a rename); nothing if no path."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=indent, default=default))
    tmp.replace(path)
