"""Helpers the benchmark scripts share: where the data is, and timestamped log lines.

The scripts run as ``python benchmarks/bench_*.py``, so this folder is on ``sys.path`` and they
import it as ``common``.
"""

from __future__ import annotations

import os
import time
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
