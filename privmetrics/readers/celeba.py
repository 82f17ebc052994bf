"""CelebA's official text layouts: the 40-attribute file and the identity file.

Reading is vectorised: the fixed layout CelebA and privface write is parsed from its bytes with
NumPy (about 11x pandas' whitespace tokeniser); any other spacing goes through pandas' C parser.
Only when a check fails does the reader scan the file line by line, to point at the first
offending line with an exact message.
"""

from __future__ import annotations

import csv
import functools
import itertools
import os
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.files import PathLike, atomic_write

from ..encoding import GENERALISED  # "*" in memory, written as 0 in this layout
from .files import HEAD_BYTES, LINE_BREAK_RE, check_readable, head_lines, iter_lines

#: Values of an attribute: 1 present, -1 absent, 0 generalised (suppressed) by privface.
ATTRIBUTE_VALUES: tuple[int, ...] = (1, -1, 0)

INDEX_NAME = "image_id"

# Rows per chunk when parsing a CelebA file: values are parsed as int64 (see below), and chunking
# bounds that temporary to ~20 MB whatever the file size, before it shrinks to int8.
_CHUNK_ROWS = 1 << 16
_INT_RE = re.compile(r"\+?[0-9]+")
_SPACE_RE = re.compile(r"[\s\x00]")
_VALUE_TOKENS = frozenset({"1", "-1", "0"})
_EXPECTED_VALUES = "expected 1, -1 or 0"
# The byte-level parser of the official layout (see _parse_fixed_layout).
_BLOCK_BYTES = 1 << 19  # small enough for the masks of _cell_words and the cache
_GUARD = 8  # bytes before a block in its buffer: the byte before the first row is readable
_THREADED_BYTES = 1 << 23  # smaller files are parsed on the calling thread
_PAD_BYTES = 1 << 12  # the longest image name the byte parser takes; longer ones go the slow way
_LF, _CR, _SPACE, _MINUS, _ZERO, _ONE = (ord(c) for c in "\n\r -01")
_FIRST_PRINTABLE, _LAST_PRINTABLE = 0x21, 0x7E


class _Malformed(Exception):
    """Internal signal: the fast path met something odd; scan the file for the exact message."""


def read_celeba_attributes(path: PathLike) -> pd.DataFrame:
    """Read a CelebA attribute file (``list_attr_celeba.txt`` layout).

    The layout is: line 1 an image count, line 2 the attribute names separated by spaces, then one
    line per image, ``NNNNNN.jpg`` followed by one value per attribute, separated by one or two
    spaces (the official file right-aligns the values). Line ends may be CRLF or LF.

    The count line is checked to be an integer and otherwise ignored: the official 20k slice still
    says 202599, so the rows are the truth. Values are 1 (present) and -1 (absent); 0 is accepted
    too, as privface writes it for a generalised (suppressed) value.

    Parameters
    ----------
    path : str or os.PathLike
        The attribute file.

    Returns
    -------
    pandas.DataFrame
        Indexed by image file name (index name ``"image_id"``, str), one ``int8`` column per
        attribute, in file order.

    Raises
    ------
    InputError
        Missing, unreadable or empty file; a count line that is not an integer; a missing header;
        no rows; a row with the wrong number of fields or a value other than 1, -1 or 0; a
        duplicate image name. The message names the file, the 1-based line and the attribute.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "attrs.txt").write_bytes(
    ...     b"99\\r\\nMale Smiling \\r\\n000001.jpg -1  1\\r\\n000002.jpg  1 -1\\r\\n")
    >>> table = read_celeba_attributes(folder / "attrs.txt")
    >>> table  # doctest: +NORMALIZE_WHITESPACE
                Male  Smiling
    image_id
    000001.jpg    -1        1
    000002.jpg     1       -1
    >>> table.dtypes.unique().tolist()
    [dtype('int8')]
    """
    file = check_readable(path)
    names = celeba_header(file)
    # The fixed layout that CelebA and privface write is parsed from its bytes; any other
    # spacing, and every malformed file, goes through the general parser, which names the line.
    parsed = _parse_fixed_layout(file, len(names))
    if parsed is None:
        images, values = _parse_celeba_rows(file, names)
        unique = False
    else:
        images, values, unique = parsed
    index = pd.Index(images, name=INDEX_NAME, dtype=object)
    if not unique:
        _check_unique_images(index, file, first_line=3)
    return pd.DataFrame(values, index=index, columns=pd.Index(names, dtype=object), copy=False)


def celeba_header(file: Path) -> list[str]:
    """Validate lines 1 and 2 of a CelebA attribute file and return the attribute names."""
    lines = head_lines(file, 2)
    count = lines[0].strip() if lines else ""
    if not _INT_RE.fullmatch(count):
        problem = _count_line_problem(head_lines(file, 3))
        raise InputError(f"expected the image count (an integer) on line 1, found "
                         f"{count[:60]!r}{problem or ''}", file=str(file), row=1)
    if len(lines) < 2:
        raise InputError("missing header: expected the attribute names on line 2, "
                         "found the end of the file", file=str(file), row=2)
    names = lines[1].split()
    if not names:
        raise InputError("missing header: line 2 is empty, expected the attribute names "
                         "separated by spaces", file=str(file), row=2)
    if len(names) > 1 and set(names[1:]) <= _VALUE_TOKENS:
        raise InputError(
            f"missing header: line 2 looks like an image row ({names[0]!r} followed by values); "
            "expected the attribute names separated by spaces", file=str(file), row=2)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError("attribute appears twice in the header", file=str(file), row=2,
                             column=name)
        seen.add(name)
    return names


def _parse_fixed_layout(file: Path, m: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Parse the image rows of the official layout from bytes; None when a row is not in it.

    The official row (and privface's, see :func:`_celeba_row_bytes`) is the image name, a
    space, the first value unpadded, then every further value as ``" %2d"``, then CRLF or LF.
    Counted from its line end back, a row is then m cells of 3 bytes, ``[space, sign, digit]``
    (the first cell's "space" is the name's last byte when the first value has no sign), so a
    block of rows is one gather and a few word operations on an (n, words) uint64 array, with
    no tokenising. The file is read in blocks into a few reused buffers (fresh memory costs a
    page fault per page, which at this speed is much of the time), and blocks are parsed on as
    many threads as there are idle cores (see :func:`_threads`): NumPy releases the GIL, so one
    thread's arithmetic runs while another builds its Python names.

    Only rows the general parser reads to the same result are accepted: printable ASCII names
    without spaces, values 1, -1, 0 (or -0). Anything else (other spacing, a blank line, a
    lone CR, a bad value, non-ASCII names) returns None, and the general parser reads the file
    and names the line at fault.

    Returns (names, values, unique): ``unique`` is True when the names are in strictly
    ascending byte order (as CelebA's are), which proves that none repeats and spares hashing a
    million Python strings; when False the caller checks them.
    """
    try:
        return _parse_fixed_blocks(file, m)
    finally:
        # The masks are tiled to a block's rows (a few MB): kept for a file, not a process.
        _cell_words.cache_clear()


def _parse_fixed_blocks(file: Path, m: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Read the file's blocks and parse them (on threads when the file is large)."""
    with open(file, "rb") as handle:
        start = _data_offset(handle.read(HEAD_BYTES))
        if start is None:
            return None
        body = os.fstat(handle.fileno()).st_size - start
        handle.seek(start)
        # Every block writes its rows straight into one matrix, sized for the most rows the
        # file can hold (the shortest row is 3m bytes and a line end); the pages of rows that
        # never come are never touched, so they cost no memory.
        values = np.empty((body // (3 * m + 1) + 1, m), dtype=np.int8)
        workers = _threads() if body >= _THREADED_BYTES else 1
        if workers == 1:
            parsed = _parse_block_stream(handle, values, _parse_now, 1)
        else:
            with ThreadPoolExecutor(workers) as pool:
                parsed = _parse_block_stream(
                    handle, values, functools.partial(pool.submit, _parse_block), workers + 1)
    if not parsed:
        return None
    rows = sum(len(names) for names, _ in parsed)
    images = np.fromiter(itertools.chain.from_iterable(names for names, _ in parsed),
                         dtype=object, count=rows)
    ascending = all(up for _, up in parsed) and all(
        a[0][-1] < b[0][0] for a, b in zip(parsed, parsed[1:]))
    return images, values[:rows], ascending


def _threads() -> int:
    """Threads for the byte parser: one, plus one per other core the load average leaves idle.

    As ``make -l`` judges a machine's load: on a busy machine a second thread only adds
    switching (measured: 8-11% slower at load 8-9 on 2 cores), on an idle one it parses while
    the first builds its Python names. The caller's own work counts in the load, hence the
    one thread more. At most four.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        load = 0.0
    return max(1, min(4, cores, int(cores - load) + 1))


def _parse_block_stream(handle: BinaryIO, values: np.ndarray, submit: Callable[..., Future],
                        buffers: int) -> list[tuple[list[str], bool]] | None:
    """Cut the rest of the file into blocks of whole lines and parse each, in file order.

    The line ends of a block are found here, which places its rows in ``values``;
    ``submit(buffer, ends, out)`` starts :func:`_parse_block` on them and returns its future.
    Each block is read into one of ``buffers`` reused buffers, which is refilled only once its
    block is parsed; the partial line at a block's end is carried to the next. None as soon
    as a block is not in the layout.
    """
    ring = [np.empty(_GUARD + _BLOCK_BYTES + _PAD_BYTES + 16, dtype=np.uint8)
            for _ in range(buffers)]
    jobs: deque[Future] = deque()
    results: list[tuple[list[str], bool]] = []

    def collect() -> bool:
        parsed = jobs.popleft().result()
        if parsed is not None:
            results.append(parsed)
        return parsed is not None

    tail = ring[0][:0]  # the partial line carried to the next block
    slot = row = 0
    try:
        while True:
            if len(jobs) == buffers and not collect():  # the job still reading this buffer
                return None
            buffer = ring[slot]
            carry = len(tail)
            buffer[_GUARD:_GUARD + carry] = tail
            got = handle.readinto(memoryview(buffer)[_GUARD + carry:_GUARD + _BLOCK_BYTES])
            size = carry + got
            if size == 0:
                break
            ends = np.flatnonzero(buffer[_GUARD:_GUARD + size] == _LF)
            ends += _GUARD
            if got == 0:  # the last line has no line end: give it one
                buffer[_GUARD + size] = _LF
                ends = np.append(ends, _GUARD + size)
            elif len(ends) == 0:  # no line end yet: read on into the same buffer
                if size >= _BLOCK_BYTES:
                    return None  # a line longer than a block is not this layout
                tail = buffer[_GUARD:_GUARD + size]
                continue
            n = len(ends)
            if row + n > len(values):
                return None  # rows shorter than the layout's
            jobs.append(submit(buffer, ends, values[row:row + n]))
            row += n
            tail = buffer[int(ends[-1]) + 1:_GUARD + size]
            slot = (slot + 1) % buffers
            if got == 0:
                break
        while jobs:
            if not collect():
                return None
    finally:
        for job in jobs:
            job.cancel()
    return results


def _parse_now(buffer: np.ndarray, ends: np.ndarray, out: np.ndarray) -> Future:
    """:func:`_parse_block` on the calling thread, as a finished future."""
    done: Future = Future()
    done.set_result(_parse_block(buffer, ends, out))
    return done


def _data_offset(head: bytes) -> int | None:
    """Byte offset of line 3 in the file's first bytes; None if lines 1-2 end unusually."""
    first = head.find(b"\n")
    second = head.find(b"\n", first + 1) if first >= 0 else -1
    # A lone CR also ends a line for the general parser; line numbers would then differ.
    if second < 0 or head[:second + 1].replace(b"\r\n", b"").find(b"\r") >= 0:
        return None
    return second + 1


def _parse_block(buffer: np.ndarray, ends: np.ndarray, out: np.ndarray
                 ) -> tuple[list[str], bool] | None:
    """Parse the lines that end at ``ends`` (their LFs in ``buffer``; the first line starts
    at ``_GUARD``, after a readable byte) into ``out``, an (n, m) int8 matrix.

    Returns the names and whether they strictly ascend; None when a line is not in the
    layout.
    """
    m = out.shape[1]
    n = len(ends)
    starts = np.empty_like(ends)
    starts[0] = _GUARD
    starts[1:] = ends[:-1] + 1
    # The m cells of 3 bytes end at the line end (before a CR). The shortest row is a
    # one-byte name, then its cells; a shorter one would start its cells in the row before.
    cells = ends - 3 * m - (buffer[ends - 1] == _CR)
    if (cells < starts).any():
        return None
    # Each cell is "  1", " -1", "  0" or " -0" (-0 reads as 0, as pandas reads it), checked
    # eight bytes at a time: the bits of a cell outside 0x0D in the sign and 0x01 in the digit
    # must be those of "  0" (the first byte of a row excepted: it may be the name's last),
    # and the sign, plus 3, must have bits 2 and 3 clear, which among 0x20 + subsets of 0x0D
    # only " " and "-" do. Nothing carries between bytes, so one word operation checks eight.
    words = -(-3 * m // 8)
    # The masks come tiled to whole blocks: an operation between two equal-shaped contiguous
    # arrays runs as one long loop, where broadcasting a row of 15 words runs 15 at a time.
    fixed, expected, sign_add, sign_bits, digit_bit = (
        mask[:n * words] for mask in _cell_words(m, _tile_rows(n)))
    rows = _gather_rows(buffer, cells, 8 * words)
    y = rows.reshape(-1).view(np.uint64)
    bad = y & fixed
    bad ^= expected
    sign = y + sign_add
    sign &= sign_bits
    bad |= sign
    if np.bitwise_or.reduce(bad):
        return None
    # The value of a cell, in its digit byte: the digit's bit 0 (0 or 1), XOR 0xFE where the
    # sign's bit 0 is set (only "-" has it) and the digit is 1, which makes it 0xFF, i.e. -1.
    # The sign comes one byte before the digit: the same gather from one byte earlier puts it
    # in the digit's place, also across words.
    digit = np.bitwise_and(y, digit_bit, out=bad)
    negative = _gather_rows(buffer, cells - 1, 8 * words).reshape(-1).view(np.uint64)
    negative &= digit
    negative *= 0xFE
    digit ^= negative
    if 3 * m == 8 * words:  # rows are whole words (m = 40 is): one long strided copy
        out.reshape(-1)[:] = digit.view(np.int8)[2::3]
    else:
        out[:] = digit.view(np.int8).reshape(n, 8 * words)[:, 2:3 * m:3]
    # The name ends where the first cell's sign is a space, or one byte earlier before a "-"
    # (that byte must then be a space: _row_names checks the byte after every name).
    first_negative = rows[:, 1] == _MINUS
    return _row_names(buffer, starts, cells + 1 - first_negative - starts)


def _tile_rows(n: int) -> int:
    """Rows the masks of :func:`_cell_words` are tiled to: n rounded up to a power of two."""
    return 1 << max(int(n - 1).bit_length(), 10)


@functools.lru_cache(maxsize=4)
def _cell_words(m: int, rows: int) -> tuple[np.ndarray, ...]:
    """Word masks that check a row of m cells, tiled to ``rows`` rows (flat).

    fixed: per byte the bits whose value is fixed (all but 0x0D in the sign and 0x01 in the
    digit; none in a row's first byte and past its cells); expected: those bits in "  0";
    sign_add, sign_bits: 3 is added to the sign, after which " " and "-" (the only values
    wanted there) are the only ones with bits 2 and 3 clear; digit_bit: bit 0 of each digit.
    """
    width = 3 * m
    words = -(-width // 8)
    patterns = np.zeros((5, 8 * words), dtype=np.uint8)
    for offset, column in enumerate([(0xFF, _SPACE, 0, 0, 0), (0xF2, _SPACE, 3, 0x0C, 0),
                                     (0xFE, _ZERO, 0, 0, 1)]):
        patterns[:, offset:width:3] = np.array(column, dtype=np.uint8)[:, None]
    patterns[:2, 0] = 0  # the first cell's "space" may be the name's last byte
    return tuple(np.tile(row.view(np.uint64), rows) for row in patterns)


def _gather_rows(buffer: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``buffer[starts[i]:starts[i] + width]`` for every i, as one (n, width) copy.

    Each row is taken as one opaque ``width``-byte item: one memcpy per row, where indexing a
    sliding-window view moves byte by byte.
    """
    rows = np.ndarray((len(buffer) - width + 1,), dtype=np.dtype((np.void, width)),
                      buffer=buffer, strides=(1,))
    return rows[starts].view(np.uint8).reshape(len(starts), width)


def _row_names(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray
               ) -> tuple[list[str], bool] | None:
    """The image names (``lengths[i]`` bytes at ``starts[i]``) and whether they strictly ascend.

    None unless every name is printable ASCII and followed by a space.
    """
    if (lengths < 1).any():
        return None
    longest = int(lengths.max())
    if longest > _PAD_BYTES:
        return None
    n = len(starts)
    if int(lengths.min()) == longest:  # CelebA's names all have the same length
        # Each name with the byte after it, which must be a space; then one decode and split.
        joined = _gather_rows(buffer, starts, longest + 1)
        if (joined[:, longest] != _SPACE).any():
            return None
        # Bytes outside 0x21-0x7E wrap to above 0x5D; there must be n of them, the spaces.
        outside = np.subtract(joined, np.uint8(_FIRST_PRINTABLE))
        np.greater(outside, _LAST_PRINTABLE - _FIRST_PRINTABLE, out=outside.view(bool))
        if np.count_nonzero(outside.view(bool)) != n:
            return None
        # Equal widths: byte order is the order of the fixed-width byte strings.
        keys = joined.reshape(-1).view(f"S{longest + 1}")
        ascending = bool((keys[1:] > keys[:-1]).all())
        return joined.tobytes().decode("ascii").split(" ")[:-1], ascending
    if (buffer[starts + lengths] != _SPACE).any():
        return None
    # LF after each name, then one decode and split for all (no name can hold an LF).
    joined = np.empty((n, longest + 1), dtype=np.uint8)
    joined[:, :longest] = _gather_rows(buffer, starts, longest)
    joined[np.arange(n), lengths] = _LF
    text = joined[np.arange(longest + 1) <= lengths[:, None]]
    # A line holds no LF, so every LF here is a separator; the rest must be printable ASCII.
    if (((text < _FIRST_PRINTABLE) | (text > _LAST_PRINTABLE)) & (text != _LF)).any():
        return None
    return text.tobytes().decode("ascii").split("\n")[:-1], False


def _parse_celeba_rows(file: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse the image rows (line 3 on): the image names and an (n, m) int8 value matrix.

    Values go through int64 rather than straight to int8 on purpose: pandas casts parsed integers
    to a narrower dtype without an overflow check, so ``300`` would silently become ``44`` and
    ``255`` would become ``-1``. int64 plus a range check cannot be fooled that way.
    """
    m = len(names)
    dtype: dict[int, object] = {0: str, **{j: np.int64 for j in range(1, m + 1)}}
    images: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    try:
        reader = pd.read_csv(
            file, sep=r"\s+", engine="c", header=None, skiprows=2, dtype=dtype,
            # Literal text: no quotes, no NA guessing (an image called "NA" stays "NA"), and blank
            # lines kept as rows so that row i is always line i + 3 of the file.
            quoting=csv.QUOTE_NONE, na_filter=False, skip_blank_lines=False,
            encoding="utf-8", chunksize=_CHUNK_ROWS,
        )
        with reader:
            for chunk in reader:
                if chunk.shape[1] != m + 1:
                    raise _Malformed
                values = chunk.iloc[:, 1:].to_numpy()
                if values.dtype.kind != "i" or values.min() < -1 or values.max() > 1:
                    raise _Malformed
                images.append(chunk[0].to_numpy(dtype=object))
                blocks.append(values.astype(np.int8))
    except (_Malformed, ValueError, UnicodeDecodeError, OverflowError, TypeError) as exc:
        # pandas' own errors (ParserError, EmptyDataError, "Integer column has NA values", ...)
        # are ValueErrors but say little; the scan finds the first bad line and says what is wrong.
        problem = _scan_celeba_rows(file, names)
        if problem is None:  # pragma: no cover - the scan checks everything the fast path does
            problem = InputError(f"cannot parse the file: {exc}", file=str(file))
        raise problem from None
    if not images:
        raise _scan_celeba_rows(file, names) or InputError(
            "no rows: expected image rows after the header", file=str(file), row=3)
    return np.concatenate(images), np.concatenate(blocks)


def _scan_celeba_rows(file: Path, names: list[str]) -> InputError | None:
    """Error path only: find the first bad image row and describe it (None when all are good)."""
    m = len(names)
    rows = 0
    try:
        for number, line in iter_lines(file):
            if number <= 2:
                continue
            fields = line.split()
            if not fields:
                return InputError(f"empty line: expected an image name and {m} values",
                                  file=str(file), row=number)
            found = len(fields) - 1
            if found < m:
                # The row ends early: the first attribute without a value is the one at fault.
                return InputError(f"expected an image name and {m} values, found {found} values",
                                  file=str(file), row=number, column=names[found])
            if found > m:
                return InputError(f"expected an image name and {m} values, found {found} values "
                                  f"({found - m} more than the header's {m} attributes)",
                                  file=str(file), row=number)
            if not set(fields[1:]) <= _VALUE_TOKENS:
                for name, token in zip(names, fields[1:]):
                    if not _is_attribute_token(token):
                        return InputError(f"{_EXPECTED_VALUES}, found {token!r}",
                                          file=str(file), row=number, column=name)
            rows += 1
    except InputError as exc:  # a line that is not UTF-8 text
        return exc
    if rows == 0:
        return InputError("no rows: expected image rows after the header", file=str(file),
                          row=3)
    return None


def _is_attribute_token(token: str) -> bool:
    """What pandas' int parser accepts as -1, 0 or 1 (so the scan agrees with the fast path)."""
    if token in _VALUE_TOKENS:
        return True
    try:
        return float(token) in (-1.0, 0.0, 1.0)
    except ValueError:
        return False


def read_celeba_identities(path: PathLike) -> pd.Series:
    """Read CelebA's identity file (``identity_CelebA.txt``): ``NNNNNN.jpg IDENTITY`` per line.

    Parameters
    ----------
    path : str or os.PathLike
        The identity file: no header, one image name and one integer identity per line, CRLF or LF
        line ends.

    Returns
    -------
    pandas.Series
        ``int64`` identities named ``"identity"``, indexed by image name (index name
        ``"image_id"``).

    Raises
    ------
    InputError
        Missing, unreadable or empty file; a line without exactly two fields; an identity that
        is not an integer; a duplicate image name. The message names the file and line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "ids.txt").write_bytes(b"000001.jpg 2880\\r\\n000002.jpg 2937\\r\\n")
    >>> read_celeba_identities(folder / "ids.txt")
    image_id
    000001.jpg    2880
    000002.jpg    2937
    Name: identity, dtype: int64
    """
    file = check_readable(path)
    try:
        table = pd.read_csv(
            file, sep=r"\s+", engine="c", header=None, dtype={0: str, 1: np.int64},
            quoting=csv.QUOTE_NONE, na_filter=False, skip_blank_lines=False, encoding="utf-8",
        )
        if table.shape[1] != 2 or table[1].dtype.kind != "i":
            raise _Malformed
    except (_Malformed, ValueError, UnicodeDecodeError, OverflowError, TypeError) as exc:
        problem = _scan_identity_rows(file)
        if problem is None:  # pragma: no cover - the scan checks everything the fast path does
            problem = InputError(f"cannot parse the file: {exc}", file=str(file))
        raise problem from None
    index = pd.Index(table[0].to_numpy(dtype=object), name=INDEX_NAME, dtype=object)
    _check_unique_images(index, file, first_line=1)
    return pd.Series(table[1].to_numpy(dtype=np.int64), index=index, name="identity")


def _scan_identity_rows(file: Path) -> InputError | None:
    """Error path only: the first line of an identity file that is not ``IMAGE IDENTITY``."""
    try:
        for number, line in iter_lines(file):
            fields = line.split()
            if not fields:
                return InputError("empty line: expected an image name and an identity",
                                  file=str(file), row=number)
            if len(fields) != 2:
                return InputError(f"expected an image name and an identity, found {len(fields)} "
                                  f"field{'s' if len(fields) != 1 else ''}",
                                  file=str(file), row=number)
            try:
                value = int(fields[1])
            except ValueError:
                return InputError(f"expected an integer identity, found {fields[1]!r}",
                                  file=str(file), row=number, column="identity")
            if not -(2**63) <= value < 2**63:
                return InputError(f"identity {fields[1]} does not fit in 64 bits",
                                  file=str(file), row=number, column="identity")
    except InputError as exc:
        return exc
    return None


def _check_unique_images(index: pd.Index, file: Path, *, first_line: int) -> None:
    """Raise for the first image name that appears twice; row i of the index is line i + first."""
    duplicated = index.duplicated()
    if duplicated.any():
        again = int(np.flatnonzero(duplicated)[0])
        name = index[again]
        first = int(np.flatnonzero(index == name)[0])
        raise InputError(
            f"duplicate image name {name!r}: it is also on line {first + first_line}",
            file=str(file), row=again + first_line)


def join_identities(
    table: pd.DataFrame, identities: pd.Series, *, source: PathLike | None = None
) -> pd.DataFrame:
    """Add an ``"identity"`` column to a table indexed by image name.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by image name, e.g. from :func:`read_celeba_attributes`.
    identities : pandas.Series
        Identity per image name, e.g. from :func:`read_celeba_identities`; it may hold more
        images than the table.
    source : str or os.PathLike, optional
        The identity file, named in error messages.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with an ``int64`` ``"identity"`` column appended.

    Raises
    ------
    InputError
        When the table already has an ``"identity"`` column, when an image has two identities,
        or when some images of the table have no identity (the message says how many and names
        the first).

    Examples
    --------
    >>> table = pd.DataFrame({"Male": [1, -1]}, index=pd.Index(["1.jpg", "2.jpg"], name="image_id"))
    >>> ids = pd.Series([7, 9, 7], index=["1.jpg", "2.jpg", "3.jpg"], name="identity")
    >>> join_identities(table, ids)  # doctest: +NORMALIZE_WHITESPACE
              Male  identity
    image_id
    1.jpg        1         7
    2.jpg       -1         9
    """
    file = None if source is None else str(source)
    if "identity" in table.columns:
        raise InputError("the table already has an 'identity' column; drop it before joining "
                         "identities", file=file, column="identity")
    if not identities.index.is_unique:
        twice = identities.index[identities.index.duplicated()][0]
        raise InputError(f"image {twice!r} has more than one identity", file=file)
    matched = identities.reindex(table.index)
    missing = matched.isna().to_numpy()
    if missing.any():
        first = table.index[int(np.flatnonzero(missing)[0])]
        where = "" if file is None else " in this identity file"
        raise InputError(f"{int(missing.sum())} of {len(table)} images of the table have no "
                         f"identity{where}; the first is {first!r}", file=file)
    out = table.copy()
    out["identity"] = matched.to_numpy().astype(np.int64)
    return out



def is_celeba_attribute_file(path: PathLike) -> bool:
    """Whether a file looks like a CelebA attribute file, from its first three lines.

    Line 1 must be a lone integer and line 2 whitespace-separated attribute names (not numbers,
    not an image row); neither line 2 nor line 3 may contain a comma or a tab. A file that passes
    but is malformed further down is still routed to :func:`read_celeba_attributes`, whose errors
    say precisely what is wrong, instead of to the CSV reader. Never raises: an unreadable file
    is simply not a CelebA file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to sniff.

    Returns
    -------
    bool

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("2\\nMale Smiling\\n1.jpg 1 -1\\n")
    >>> _ = (folder / "b.txt").write_text("image_id,Male\\n1.jpg,1\\n")
    >>> is_celeba_attribute_file(folder / "a.txt"), is_celeba_attribute_file(folder / "b.txt")
    (True, False)
    """
    try:
        with open(path, "rb") as handle:
            # A bad byte further down must not hide the layout: the reader will name its line.
            head = handle.read(HEAD_BYTES).decode("utf-8-sig", errors="replace")
    except OSError:
        return False
    lines = LINE_BREAK_RE.split(head, maxsplit=3)[:3]
    if len(lines) >= 2 and not _INT_RE.fullmatch(lines[0].strip()):
        # A broken count line (or none) must not send the file to the CSV reader, whose
        # message would mislead: rows of 1/-1/0 under space-separated names are CelebA's.
        return _count_line_problem(lines) is not None
    if len(lines) < 2:
        return False
    names = lines[1].split()
    if not names or any(c in line for line in lines[1:] for c in ",\t"):
        return False
    numeric = [n for n in names if _INT_RE.fullmatch(n.lstrip("-"))]
    return len(numeric) < len(names) and not (len(names) > 1 and set(names[1:]) <= _VALUE_TOKENS)



def _count_line_problem(lines: list[str]) -> str | None:
    """What is wrong with line 1 of a file laid out as CelebA's apart from its count line.

    None when the file does not look like CelebA's layout at all (it is then not one).
    """
    def image_row(line: str, m: int) -> bool:
        fields = line.split()
        return (len(fields) == m + 1 and set(fields[1:]) <= _VALUE_TOKENS
                and not any(c in line for c in ",\t"))

    def attribute_names(line: str) -> list[str]:
        names = line.split()
        if any(c in line for c in ",\t") or any(_INT_RE.fullmatch(n.lstrip("-")) for n in names):
            return []
        return names

    names = attribute_names(lines[0]) if lines else []
    if names and len(lines) > 1 and image_row(lines[1], len(names)):
        return ("; line 1 holds the attribute names and line 2 an image row: the count line is "
                "missing (CelebA's layout: line 1 the number of images, line 2 the names)")
    names = attribute_names(lines[1]) if len(lines) > 1 else []
    if names and len(lines) > 2 and image_row(lines[2], len(names)):
        return ("; the rest is laid out as a CelebA attribute file, whose line 1 is the number "
                "of images")
    return None


def write_celeba_attributes(table: pd.DataFrame, path: PathLike) -> None:
    """Write a table of -1/0/1 attributes in CelebA's official layout, atomically.

    The layout matches the official file byte for byte: line 1 the number of rows, line 2 the
    attribute names separated by spaces (with the official trailing space), then per image its
    name, a space, the first value, and every further value right-aligned in a two-character field
    after a space (``" -1"``, ``"  1"``, ``"  0"``); CRLF line ends, the last line included.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by image name; every column an attribute with values in {1, -1, 0}. Non-attribute
        columns (such as ``"identity"``) must be dropped first.
    path : str or os.PathLike
        The file to write; replaced atomically if it exists.

    Raises
    ------
    InputError
        An empty table, a value outside {1, -1, 0} (naming image and column), a name with
        whitespace, a duplicate image name, or a target that cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "attrs.txt"
    >>> table = pd.DataFrame({"Male": [-1, 1], "Smiling": [1, 0]},
    ...                      index=pd.Index(["000001.jpg", "000002.jpg"], name="image_id"))
    >>> write_celeba_attributes(table, path)
    >>> path.read_bytes()
    b'2\\r\\nMale Smiling \\r\\n000001.jpg -1  1\\r\\n000002.jpg 1  0\\r\\n'
    >>> read_celeba_attributes(path).equals(table.astype("int8"))
    True
    """
    images, values = _celeba_rows_to_write(table)
    head = f"{len(table)}\r\n{' '.join(map(str, table.columns))} \r\n".encode()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(head)
            for start in range(0, len(values), _CHUNK_ROWS):  # chunks bound the memory
                stop = start + _CHUNK_ROWS
                handle.write(_celeba_row_bytes(images[start:stop], values[start:stop]))

    atomic_write(path, write)


def _celeba_rows_to_write(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Validate a table for CelebA's layout: image names as UTF-8 bytes, values as int8."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, got {type(table).__name__}")
    if table.shape[1] == 0:
        raise InputError("the table has no attribute columns")
    if len(table) == 0:
        raise InputError("the table is empty: a CelebA attribute file needs at least one row")
    names = [str(c) for c in table.columns]
    for name in names:
        if not name or _SPACE_RE.search(name):
            raise InputError("an attribute name in CelebA's layout must be non-empty and without "
                             "whitespace", column=name)
    if len(set(names)) != len(names):
        raise InputError("attribute appears twice",
                         column=next(n for i, n in enumerate(names) if n in names[:i]))
    values = _attribute_matrix(table)
    images = table.index.astype(str)
    # One regex pass over all names joined (not one per name); NUL is banned too because the
    # row builder uses it as padding.
    if _SPACE_RE.search("/".join(images)) or (images.str.len() == 0).any():
        bad = next(x for x in images if not x or _SPACE_RE.search(x))  # error path only
        raise InputError(f"image name {bad!r} is empty or contains whitespace; CelebA's layout "
                         "cannot hold it")
    if not images.is_unique:
        raise InputError(f"duplicate image name {images[images.duplicated()][0]!r}")
    as_str = images.to_numpy(dtype=str)
    try:
        encoded = as_str.astype("S")  # C speed, ASCII only: CelebA's names are ASCII
    except UnicodeEncodeError:
        encoded = np.char.encode(as_str, "utf-8")
    return encoded, values


def _celeba_row_bytes(images: np.ndarray, values: np.ndarray) -> bytes:
    """Rows of CelebA's layout for a block of images, built as one byte matrix, no Python loop.

    The official row is the name, a space, the first value unpadded, then every further value as
    ``" %2d"`` (checked against all 20,000 rows of the shared slice). Each row is laid out fixed
    width, with the name NUL-padded to the longest and the first value padded like the others;
    a mask then drops the NUL padding and the first value's pad space, and the kept bytes are the
    rows, CRLF included.
    """
    n, m = values.shape
    width = images.dtype.itemsize
    name_bytes = np.frombuffer(images.tobytes(), dtype=np.uint8).reshape(n, width)
    cells = np.empty((n, m, 3), dtype=np.uint8)
    # uint8 arithmetic straight into the byte matrix: " " + (" " or "-") + ("0" or "1").
    cells[:, :, 0] = ord(" ")
    np.add((values == -1).view(np.uint8) * np.uint8(ord("-") - ord(" ")), np.uint8(ord(" ")),
           out=cells[:, :, 1])
    np.add((values != 0).view(np.uint8), np.uint8(ord("0")), out=cells[:, :, 2])
    rows = np.concatenate(
        [name_bytes, cells.reshape(n, 3 * m), np.broadcast_to(np.frombuffer(b"\r\n", np.uint8),
                                                              (n, 2))], axis=1)
    keep = np.ones(rows.shape, dtype=bool)
    keep[:, :width] = name_bytes != 0
    keep[:, width + 1] = values[:, 0] == -1  # the first value's pad space exists only for -1
    return rows[keep].tobytes()


def _attribute_matrix(table: pd.DataFrame) -> np.ndarray:
    """The values as an int8 matrix; raises for the first cell outside {1, -1, 0}.

    A generalised value, ``"*"`` in privface's anonymised tables, is written as 0.
    """
    table = table.copy(deep=False)
    for column in table.columns:
        series = table[column]
        if series.dtype == object and (series == GENERALISED).any():
            generalised = series == GENERALISED
            numeric = pd.to_numeric(series.where(~generalised, 0), errors="coerce")
            if not numeric.isna().any():
                series = numeric.astype(np.int64)
                table[column] = series
        ok = (pd.api.types.is_numeric_dtype(series.dtype)
              and not pd.api.types.is_bool_dtype(series.dtype))
        cells = series.to_numpy(dtype=object) if not ok else series.to_numpy()
        bad = ~np.isin(cells, ATTRIBUTE_VALUES) if ok else np.ones(len(series), dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            cell = cells[i].item() if isinstance(cells[i], np.generic) else cells[i]
            hint = (" (CelebA attribute files hold attributes only: drop it first)"
                    if column == "identity" else "")
            raise InputError(f"{_EXPECTED_VALUES}, found {cell!r} for image "
                             f"{table.index[i]!r}{hint}", column=str(column))
    return table.to_numpy(dtype=np.int8)


