"""Worker processes stop with the work, and never outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from privface.base.workers import HANDOFF_IN_FILE_BYTES, worker_pool


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended; only its entry is left


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_when_the_process_that_started_them_is_killed(how):
    script = textwrap.dedent("""
        import time
        from privface.base.workers import spawn_pool
        pool = spawn_pool(2)
        futures = [pool.submit(time.sleep, 120) for _ in range(2)]
        time.sleep(1.0)
        while len(pool._processes) < 2:
            time.sleep(0.1)
        print(" ".join(str(pid) for pid in pool._processes), flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        parent.send_signal(how)  # no handler runs: the pool cannot shut itself down
        parent.wait(30)
        assert _wait_gone(workers, 20) == []
    finally:
        parent.kill()


def test_an_error_in_the_pool_stops_long_work_at_once():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="stop"):
        with worker_pool(1) as pool:
            pool.submit(time.sleep, 120)
            time.sleep(2.0)  # the worker has started the sleep
            raise RuntimeError("stop")
    assert time.monotonic() - started < 60  # the 120 s task did not run to its end


def test_finish_running_lets_a_writing_worker_end_its_file(tmp_path):
    target = tmp_path / "out.txt"
    # A builtin runs the task: spawned workers cannot import this test module.
    task = "import pathlib, time; time.sleep(3.0); pathlib.Path(target).write_text('done')"
    with pytest.raises(RuntimeError, match="stop"):
        with worker_pool(1, finish_running=True) as pool:
            running = pool.submit(exec, task, {"target": str(target)})
            while not running.running():
                time.sleep(0.05)
            raise RuntimeError("stop")
    assert target.read_text() == "done"


def test_the_command_line_turns_sigterm_into_an_exit_status():
    # main() with a command that takes its time: SIGTERM unwinds it (workers stopped, temporary
    # files removed by their `finally`) and the exit status is 143 (128 + 15).
    script = textwrap.dedent("""
        import time
        from privface.cli import main as cli
        def slow_command():
            try:  # "ready" inside: a SIGTERM right after it must still unwind through `finally`
                print("ready", flush=True)
                time.sleep(60)
            finally:
                print("unwound", flush=True)
        cli.app = slow_command
        cli.main()
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(30) == 143
        assert process.stdout.read().strip() == "unwound"
    finally:
        process.kill()


@pytest.mark.parametrize("size", [10, 1_000_000])
def test_a_script_without_a_main_guard_gets_a_clear_error_not_a_hang(tmp_path, size):
    # Each spawned worker imports the calling script again; unguarded, the script starts a pool
    # there too and the worker dies at start. With an initializer's arguments over a pipe's
    # 64 KB in the start-up message, the parent then blocked for ever on writing it.
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        from privface.base.workers import HANDOFF_IN_FILE_BYTES, worker_pool
        with worker_pool(2, len, (bytes(1_000_000),)) as pool:
            print(list(pool.map(abs, [1, -2])))
    """))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env={**os.environ, "TMPDIR": str(scratch)})
    assert done.returncode == 1
    # The error is the last thing the script says; the standard library's resource tracker
    # may add, after it, its shutdown warning about the broken pool's queue semaphores it
    # cleans up (a CI run under pandas 3 caught it there once, in 1 of 2 sizes).
    said = [line for line in done.stderr.strip().splitlines() if "resource_tracker" not in line]
    last = said[-1]
    assert last.startswith("privface.base.workers.WorkersLost: a worker process ended abruptly")
    assert "if __name__ == \"__main__\":" in last
    assert list(scratch.iterdir()) == []  # the parent's and the workers' hand-off files


@pytest.mark.parametrize("size", [10, 1_000_000])
def test_the_initializer_runs_in_every_worker_and_its_file_is_removed(tmp_path, size):
    marks = tmp_path / "marks"
    marks.mkdir()
    # Builtins only: spawned workers cannot import this test module. The padding makes the
    # arguments travel in the start-up message (small) or in a hand-off file (large).
    mark = "import os, pathlib; pathlib.Path(folder, str(os.getpid())).write_text('')"
    with worker_pool(2, exec, (mark, {"folder": str(marks), "padding": bytes(size)})) as pool:
        handoff = pool._handoff
        assert (handoff is not None) == (size > HANDOFF_IN_FILE_BYTES)
        assert handoff is None or os.path.exists(handoff)
        pids = {pool.submit(os.getpid).result() for _ in range(8)}
    assert handoff is None or not os.path.exists(handoff)
    assert {p.name for p in marks.iterdir()} >= {str(pid) for pid in pids}


def test_without_a_writable_temporary_folder_the_arguments_go_in_the_message(tmp_path,
                                                                              monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with worker_pool(1, len, (bytes(1_000_000),)) as pool:
        assert pool._handoff is None
        assert pool.submit(abs, -3).result() == 3


def test_a_hand_off_file_left_by_a_killed_process_is_removed_by_the_next_pool(tmp_path,
                                                                                monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = tmp_path / f"privface-workers-{int(gone.stdout)}-abc.pickle"
    alive = tmp_path / f"privface-workers-{os.getpid()}-def.pickle"  # a pool of this process
    orphan.write_bytes(b"x")
    alive.write_bytes(b"x")
    with worker_pool(1, len, (bytes(1_000_000),)) as pool:
        assert pool.submit(abs, -3).result() == 3
    assert not orphan.exists() and alive.exists()


def test_a_worker_knows_it_is_one_and_sizes_its_thread_pools_to_one_core():
    from privface.base.workers import in_worker

    with worker_pool(2) as pool:
        assert all(pool.submit(in_worker).result() for _ in range(4))
    assert not in_worker()


def test_sface_runs_on_one_thread_in_a_worker_and_on_every_core_elsewhere(monkeypatch):
    pytest.importorskip("onnxruntime")
    from privface.attributes import sface_network
    from privface.base import workers

    assert sface_network._threads() == 0  # onnxruntime's default: a thread per core
    monkeypatch.setattr(workers, "_IN_WORKER", True)
    assert sface_network._threads() == 1
    sface_network.load_sface()
    options = sface_network._session(1).get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
