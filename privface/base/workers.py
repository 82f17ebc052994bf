"""Worker processes that start clean and never outlive the process that started them.

Face analysis, the photo pipeline's writing step, evaluation and training spread chunks of work
over processes. They all use :func:`worker_pool`:

* the processes are **spawned**, not forked: OpenCV and dlib hold threads and state that a fork
  would copy half-way;
* on an error or Ctrl-C the chunks not started are cancelled and the workers ended at once,
  instead of after the chunks already handed out;
* OpenCV runs on one thread in each worker (the workers are one per core), and
  :func:`in_worker` tells other libraries' thread pools (onnxruntime's) to do the same;
* every worker watches its parent and exits when the parent is gone, so killing the main process
  (SIGKILL, or SIGTERM where no handler runs) leaves no orphan computing on;
* a worker that dies (killed for memory, or unable to start: a script without an
  ``if __name__ == "__main__":`` guard) raises :class:`WorkersLost`, which says so, instead of
  a bare ``BrokenProcessPool`` or a hang.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

_PARENT_CHECK_SECONDS = 0.5

#: Set in a process that :func:`worker_pool` started (see :func:`in_worker`).
_IN_WORKER = False


def in_worker() -> bool:
    """Whether this process is one of privface's worker processes.

    The workers are one per core, so code that sizes a thread pool gives each of them one
    thread; elsewhere (a single process) it may use every core.

    Examples
    --------
    >>> in_worker()
    False
    """
    return _IN_WORKER


class WorkersLost(RuntimeError):
    """A worker process ended before its work was done.

    Examples
    --------
    >>> str(WorkersLost()).split(":")[0]
    'a worker process ended abruptly'
    """

    def __init__(self) -> None:
        super().__init__(
            "a worker process ended abruptly: it was killed (for memory, say) or could not "
            "start. A script that runs privface with more than one worker must keep its "
            "top-level code under 'if __name__ == \"__main__\":', because each worker process "
            "imports the script again (Python's multiprocessing: \"Safe importing of main "
            "module\"); or pass workers=1.")


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            os._exit(1)


def _one_thread_for_opencv() -> None:
    # The workers are one per core; OpenCV's own pool of a thread per core in each of them ran
    # 2 x 2 threads on 2 cores (privface predict: 27.8 -> 29.0 photos/s with one).
    try:
        import cv2
    except ImportError:  # the light install: no face models, nothing to set
        return
    cv2.setNumThreads(1)


def _start(parent: int, handoff: bytes | str | None) -> None:
    global _IN_WORKER
    _IN_WORKER = True
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="privface-parent-watch").start()
    _one_thread_for_opencv()
    if handoff is None:
        return
    if isinstance(handoff, str):
        # Written by the process that started this one, in a file only its user can read
        # (mkstemp): not untrusted input.
        with open(handoff, "rb") as file:
            handoff = file.read()
    initializer, initargs = pickle.loads(handoff)
    initializer(*initargs)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_orphaned_handoffs() -> None:
    """Remove the hand-off files of processes that are gone (killed outright mid-pool)."""
    for path in Path(tempfile.gettempdir()).glob("privface-workers-*-*.pickle"):
        try:
            pid = int(path.name.split("-")[2])
            os.kill(pid, 0)  # raises when no process has that number
        except ProcessLookupError:
            _remove(str(path))
        except (ValueError, OSError):  # not one of ours, or another user's process
            pass


#: Initializer arguments pickled larger than this reach the workers through a file (a pipe
#: holds 64 KB; see :class:`_Pool`).
HANDOFF_IN_FILE_BYTES = 32 * 1024


class _Pool(ProcessPoolExecutor):
    """A spawn pool whose initializer's arguments, when large, reach the workers in a file.

    CPython writes a new process's start-up message (the initializer's arguments included: an
    attribute model is half a megabyte) into a pipe that the process reads only after importing
    the calling script. A script without an ``if __name__ == "__main__":`` guard dies at that
    import, and a write of more than the pipe's 64 KB then blocked this process for ever; with a
    small message the pool sees the death and breaks (:class:`WorkersLost`). The file is
    removed when the pool shuts down or is stopped; one left by a process killed outright is
    removed by the next pool that writes one.
    """

    def __init__(self, processes: int, initializer: Callable | None, initargs: tuple) -> None:
        self._handoff = None
        handoff = None
        if initializer is not None:
            # multiprocessing's own pickler, as for the start-up message it replaces
            handoff = bytes(ForkingPickler.dumps((initializer, initargs)))
            if len(handoff) > HANDOFF_IN_FILE_BYTES:
                handoff = self._to_file(handoff)
        super().__init__(processes, mp_context=multiprocessing.get_context("spawn"),
                         initializer=_start, initargs=(os.getpid(), handoff))

    def _to_file(self, handoff: bytes) -> bytes | str:
        _remove_orphaned_handoffs()
        try:
            handle, path = tempfile.mkstemp(prefix=f"privface-workers-{os.getpid()}-",
                                            suffix=".pickle")
        except OSError:  # no writable temporary folder: the start-up message, as CPython does
            return handoff
        self._handoff = path
        self._remove_handoff = weakref.finalize(self, _remove, path)
        with os.fdopen(handle, "wb") as file:
            file.write(handoff)
        return path

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait, cancel_futures=cancel_futures)
        if wait:  # no worker is left to start
            self.release()

    def release(self) -> None:
        """Remove the hand-off file, if any (no worker may start after this)."""
        if self._handoff is not None:
            self._remove_handoff()


def spawn_pool(processes: int, initializer: Callable | None = None,
               initargs: tuple = ()) -> ProcessPoolExecutor:
    """A process pool of spawned workers that exit when this process does.

    ``initializer(*initargs)`` runs once in each worker. A worker that dies makes the pool's
    futures raise ``BrokenProcessPool``; :func:`worker_pool` turns that into
    :class:`WorkersLost`.

    Examples
    --------
    >>> pool = spawn_pool(1)
    >>> pool.submit(abs, -3).result()
    3
    >>> pool.shutdown()
    """
    return _Pool(processes, initializer, initargs)


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
    else:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)
    if isinstance(pool, _Pool):
        pool.release()


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
    except BaseException as error:
        if finish_running:
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            stop_workers(pool)
        if isinstance(error, BrokenProcessPool):
            raise WorkersLost() from error
        raise
    pool.shutdown(wait=True)
