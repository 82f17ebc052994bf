"""File plumbing shared by the readers and writers: checks, line access, atomic writes."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Union

from ..errors import InputError

PathLike = Union[str, "os.PathLike[str]"]
# The sniff and the header reader look at no more than this many bytes.
_HEAD_BYTES = 1 << 16
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")


def _check_readable(path: PathLike) -> Path:
    """The path, if it names a readable non-empty file; else an InputError naming it."""
    file = Path(path)
    if not file.exists():
        raise InputError("no such file", file=str(file))
    if file.is_dir():
        raise InputError("is a folder: expected a table file", file=str(file))
    try:
        with open(file, "rb") as handle:
            empty = handle.read(1) == b""
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=str(file)) from None
    if empty:
        raise InputError("the file is empty", file=str(file))
    return file


def _head_lines(file: Path, n: int) -> list[str]:
    """The first ``n`` lines (fewer if the file is shorter), without line ends or a UTF-8 BOM."""
    with open(file, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
        complete = len(head) < _HEAD_BYTES
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if complete or exc.start < _HEAD_BYTES - 4:  # not just a character cut by the block end
            line = head[: exc.start].count(b"\n") + 1
            raise InputError("not UTF-8 text", file=str(file), row=line) from None
        text = head[: exc.start].decode("utf-8-sig")
    pieces = _LINE_BREAK_RE.split(text, maxsplit=n)
    if len(pieces) > n:  # n complete lines, and more text after them
        return pieces[:n]
    if not complete:
        raise InputError(f"line {len(pieces)} is longer than {_HEAD_BYTES} bytes",
                         file=str(file), row=len(pieces))
    # The whole file is shorter than n lines; a trailing "" is only the last line's end.
    return pieces[:-1] if pieces[-1] == "" else pieces


def _iter_lines(file: Path) -> Iterator[tuple[int, str]]:
    """Stream (1-based number, text) per line, splitting on CRLF, LF and lone CR as pandas does."""
    with open(file, "rb") as handle:
        number = 0
        for raw in handle:  # split on b"\n"; an old-Mac lone b"\r" is split below
            for piece in raw.rstrip(b"\n").removesuffix(b"\r").split(b"\r"):
                number += 1
                try:
                    text = piece.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise InputError("not UTF-8 text", file=str(file), row=number) from None
                yield number, text


def atomic_write(path: PathLike, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp)`` to a temporary file beside ``path``, then rename it over.

    The temporary file lies in a fresh folder that only this user can enter (``mkdtemp``, mode
    0700) and is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: a symbolic link planted at any
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
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666))
        if target.is_file():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        write(tmp)
        # on disk before the rename, so a crash leaves the old or the new file
        fd = os.open(tmp, os.O_RDONLY | _NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        _remove_private(private, tmp)
        raise InputError(f"cannot write: {exc.strerror or exc}", file=str(target)) from None
    except BaseException:
        _remove_private(private, tmp)
        raise
    _remove_private(private, tmp)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where links need privileges


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


