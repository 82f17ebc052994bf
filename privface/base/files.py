"""Writing files safely: atomic writes, writes committed together, output paths checked.

Every file privface writes goes through :func:`atomic_write`, so an error or a crash never leaves
a half-written output, and a planted symbolic link never redirects a write (docs/files.md).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]
# Absent on Windows, where links need privileges.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def fsync_folder(folder: PathLike) -> None:
    """Flush a folder's entries to disk, so that a rename in it survives a power cut.

    A rename is atomic but lives in the folder's metadata until the folder is flushed: without
    this, a power cut could keep a later rename (a photo moved in) and lose an earlier one (its
    certificate). Where folders cannot be opened (Windows) this does nothing.

    Examples
    --------
    >>> import tempfile
    >>> fsync_folder(tempfile.mkdtemp())
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot flush a folder: nothing more can be done
        pass
    finally:
        os.close(fd)
# Inside ``committed_together``: the (temporary, target) pairs written but not yet renamed.
_STAGED: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("_STAGED", default=None)


def atomic_write(path: PathLike, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp)`` to a temporary file beside ``path``, then rename it over.

    Inside :func:`committed_together` the rename waits for the end of the block.

    The temporary file lies in a fresh folder that only this user can enter (``mkdtemp``, mode
    0700) and is created with ``O_CREAT | O_EXCL | ONOFOLLOW``: a symbolic link planted at any
    name, guessed or not, can never redirect the write, even when ``write`` reopens the path.
    The target itself is replaced by a rename, which never follows a link at the target.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, lambda tmp: tmp.write_text("hello"))
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('hello', ['a.txt'])
    """
    target = Path(path)
    if target.is_dir():
        raise InputError("is a folder: expected a file to write", file=str(target))
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"cannot write: the folder {str(folder)!r} does not exist",
                         file=str(target))
    private: Path | None = None
    tmp = folder / target.name  # only named in messages until the private folder exists
    try:
        private = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder))
        # The same name as the target, for writers that read the format off the suffix.
        tmp = private / target.name
        # os.open with mode 0o666 lets the umask decide, as for any new file (mkstemp would
        # force 0o600); an existing target keeps its permissions.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666))
        if target.is_file():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        write(tmp)
        # on disk before the rename, so a crash leaves the old or the new file
        fd = os.open(tmp, os.O_RDONLY | NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        staged = _STAGED.get()
        if staged is not None:  # committed_together renames it, then removes the folder
            staged.append((tmp, target))
            return
        os.replace(tmp, target)
        fsync_folder(folder)
    except OSError as exc:
        _remove_private(private, tmp)
        raise InputError(f"cannot write: {exc.strerror or exc}", file=str(target)) from None
    except BaseException:
        _remove_private(private, tmp)
        raise
    _remove_private(private, tmp)


def _remove_private(private: Path | None, tmp: Path) -> None:
    if private is None:
        return
    _remove_quietly(tmp)
    try:
        private.rmdir()
    except OSError:
        pass


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def committed_together() -> Iterator[None]:
    """Files written by :func:`atomic_write` inside the block replace their targets together.

    Each file is written to its temporary name as usual; the renames wait until the block ends
    without an error, and then run in the order of the writes. An error inside the block leaves
    every target as it was. Should a rename fail, the targets already replaced get their old
    content back (kept through a hard link), so a table never sits beside a certificate that
    does not describe it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     with committed_together():
    ...         atomic_write(folder / "a.txt", lambda tmp: tmp.write_text("a"))
    ...         raise RuntimeError("the second file cannot be made")
    ... except RuntimeError:
    ...     pass
    >>> sorted(p.name for p in folder.iterdir())
    []
    """
    staged: list[tuple[Path, Path]] = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _ in staged:
            _remove_private(tmp.parent, tmp)
        raise
    finally:
        _STAGED.reset(token)
    try:
        _commit(staged)
    finally:
        for tmp, _ in staged:
            _remove_private(tmp.parent, tmp)


def _commit(staged: list[tuple[Path, Path]]) -> None:
    """Rename every staged file over its target, or restore the targets already replaced."""
    backups: list[Path | None] = []
    done = 0
    try:
        for tmp, target in staged:
            backup = None
            if target.is_file():
                backup = tmp.with_name(tmp.name + ".old")
                os.link(target, backup)
            backups.append(backup)
            os.replace(tmp, target)
            fsync_folder(target.parent)
            done += 1
    except OSError as exc:
        for (_, target), backup in zip(staged[:done], backups):
            if backup is not None:
                os.replace(backup, target)
            else:
                _remove_quietly(target)
        for tmp, _ in staged[done:]:
            _remove_quietly(tmp)
        raise InputError(f"cannot write: {exc.strerror or exc}; nothing was replaced",
                         file=str(staged[min(done, len(staged) - 1)][1])) from None
    finally:
        for backup in backups:
            if backup is not None:
                _remove_quietly(backup)


def check_distinct_paths(inputs: Mapping[str, PathLike | None],
                         outputs: Mapping[str, PathLike | None]) -> None:
    """Refuse outputs that would overwrite an input or another output, before any work.

    Two paths are the same file when they resolve to one path (symbolic links followed) or,
    when both exist, to one device and inode (hard links). An input that is a folder holds its
    files: an output inside it, or a hard link to one of the files directly in it, is refused.

    Parameters
    ----------
    inputs, outputs : mapping of str to path or None
        What the command reads and writes, each under the name the user knows it by (an option
        such as ``"--out"``, or ``"DATA"``); ``None`` entries are skipped.

    Raises
    ------
    InputError
        Naming the output, and the input or output it would overwrite.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = pathlib.Path(tempfile.mkdtemp()) / "faces.csv"
    >>> _ = table.write_text("Male\\n1\\n")
    >>> check_distinct_paths({"DATA": table}, {"--out": table.parent / "out.csv"})
    >>> try:
    ...     check_distinct_paths({"DATA": table}, {"--out": table.parent / "." / "faces.csv"})
    ... except InputError as exc:
    ...     print(exc.message)
    --out would overwrite the input DATA: privface never writes over what it reads
    """
    ins = [(name, Path(p)) for name, p in inputs.items() if p is not None]
    outs = [(name, Path(p)) for name, p in outputs.items() if p is not None]
    for i, (name, out) in enumerate(outs):
        for in_name, source in ins:
            if _same_file(out, source) or _inside_folder(out, source):
                raise InputError(f"{name} would overwrite the input {in_name}: privface never "
                                 "writes over what it reads", file=str(out))
        for other_name, other in outs[:i]:
            if _same_file(out, other):
                raise InputError(f"{name} and {other_name} name the same file: give each "
                                 "output its own path", file=str(out))


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def _inside_folder(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in the folder ``folder`` (an existing one) or is a hard link to a
    file directly in it."""
    if not folder.is_dir():
        return False
    real, root = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([real, root]) == root:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return False
    try:
        with os.scandir(folder) as entries:
            return any(e.inode() == st.st_ino and e.stat().st_dev == st.st_dev
                       for e in entries if e.is_file())
    except OSError:
        return False


#: The lock file :func:`lock_output` holds in an output folder.
LOCK = ".privface.lock"


@contextmanager
def lock_output(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder ``out`` (created if need be) while in use.

    Raises
    ------
    InputError
        Another run holds the lock: the message names its process id.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with lock_output(folder):
    ...     with lock_output(folder):
    ...         pass
    Traceback (most recent call last):
    ...
    privface.base.errors.InputError: ...another privface run (PID ...) is writing into ...
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the staging still protects every photo
        yield
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
    except OSError as exc:
        raise InputError(f"cannot use the output folder: {exc.strerror or exc}",
                         file=str(out)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise InputError(f"another privface run (PID {holder}) is writing into this folder; "
                             "wait for it to end, or choose another --out",
                             file=str(out)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:  # a run that stops on an error or Ctrl-C leaves no PID behind either
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock; the file stays, so that no two runs lock two files
