"""File plumbing shared by the table readers: checks and line access."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from privface.base.errors import InputError
from privface.base.files import PathLike

# The sniff and the header reader look at no more than this many bytes.
HEAD_BYTES = 1 << 16
LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")


def check_readable(path: PathLike) -> Path:
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


def head_lines(file: Path, n: int) -> list[str]:
    """The first ``n`` lines (fewer if the file is shorter), without line ends or a UTF-8 BOM."""
    with open(file, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        complete = len(head) < HEAD_BYTES
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if complete or exc.start < HEAD_BYTES - 4:  # not just a character cut by the block end
            line = head[: exc.start].count(b"\n") + 1
            raise InputError("not UTF-8 text", file=str(file), row=line) from None
        text = head[: exc.start].decode("utf-8-sig")
    pieces = LINE_BREAK_RE.split(text, maxsplit=n)
    if len(pieces) > n:  # n complete lines, and more text after them
        return pieces[:n]
    if not complete:
        raise InputError(f"line {len(pieces)} is longer than {HEAD_BYTES} bytes",
                         file=str(file), row=len(pieces))
    # The whole file is shorter than n lines; a trailing "" is only the last line's end.
    return pieces[:-1] if pieces[-1] == "" else pieces


def iter_lines(file: Path) -> Iterator[tuple[int, str]]:
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


def not_utf8_error(file: Path, what: str) -> InputError:
    """Error path only: the line and byte offset of the first byte that is not UTF-8."""
    offset = 0
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return InputError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at byte offset "
                                  f"{offset + exc.start:,} of the file; expected {what}",
                                  file=str(file), row=number)
            offset += len(raw)
    return InputError(f"not UTF-8 text; expected {what}", file=str(file))
