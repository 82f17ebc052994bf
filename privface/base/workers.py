"""Worker processes that start clean and never outlive the process that started them.

Face analysis, the photo pipeline's writing step, evaluation and training spread chunks of work
over processes. They all use :func:`worker_pool`:

* the processes are **spawned**, not forked: OpenCV and dlib hold threads and state that a fork
  would copy half-way;
* on an error or Ctrl-C the chunks not started are cancelled and the workers ended at once,
  instead of after the chunks already handed out;
* every worker watches its parent and exits when the parent is gone, so killing the main process
  (SIGKILL, or SIGTERM where no handler runs) leaves no orphan computing on.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_PARENT_CHECK_SECONDS = 0.5


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            os._exit(1)


def _start(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="privface-parent-watch").start()
    if initializer is not None:
        initializer(*initargs)


def spawn_pool(processes: int, initializer: Callable | None = None,
               initargs: tuple = ()) -> ProcessPoolExecutor:
    """A process pool of spawned workers that exit when this process does.

    Examples
    --------
    >>> pool = spawn_pool(1)
    >>> pool.submit(abs, -3).result()
    3
    >>> pool.shutdown()
    """
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start, initargs=(os.getpid(), initializer, initargs))


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the chunks not started and end the workers at once.

    Examples
    --------
    >>> pool = spawn_pool(1)
    >>> stop_workers(pool)
    """
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)


@contextmanager
def worker_pool(processes: int, initializer: Callable | None = None, initargs: tuple = (), *,
                finish_running: bool = False) -> Iterator[ProcessPoolExecutor]:
    """:func:`spawn_pool` as a context: waits for the work on success, stops it on an error.

    With ``finish_running``, an error cancels the chunks not started but lets the running ones
    end: for workers that write files, which a terminated process would leave half-written.

    Examples
    --------
    >>> with worker_pool(2) as pool:
    ...     list(pool.map(abs, [-1, -2, 3]))
    [1, 2, 3]
    """
    pool = spawn_pool(processes, initializer, initargs)
    try:
        yield pool
    except BaseException:
        if finish_running:
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            stop_workers(pool)
        raise
    pool.shutdown(wait=True)
