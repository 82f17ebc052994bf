"""The byte-level parser of CelebA's fixed layout against the general (pandas) parser.

The byte parser takes the official layout only and hands anything else to the general parser,
so on every file the two must give the same table, or the same InputError (message, line,
column). Hypothesis writes the files: official spacing or not, CRLF/LF, with and without a
last line end, and with malformed lines; small blocks exercise rows cut across reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privface.base.errors import InputError
from privface.privmetrics.readers import celeba, read_celeba_attributes


def general_read(path: Path, monkeypatch) -> pd.DataFrame:
    """What the reader gave before the byte parser: the general parser alone."""
    with monkeypatch.context() as patch:
        patch.setattr(celeba, "_parse_fixed_layout", lambda file, m: None)
        return read_celeba_attributes(path)


def outcome(call):
    try:
        return "table", call()
    except InputError as error:
        return "error", (error.message, error.file, error.row, error.column)


def assert_same(path: Path, monkeypatch) -> None:
    new_kind, new = outcome(lambda: read_celeba_attributes(path))
    old_kind, old = outcome(lambda: general_read(path, monkeypatch))
    assert new_kind == old_kind, (new, old)
    if new_kind == "table":
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        assert new.index.dtype == object and all(type(x) is str for x in new.index)
    else:
        assert new == old


def official_row(name: str, values: list[int]) -> str:
    return name + " " + str(values[0]) + "".join(f" {v:2d}" for v in values[1:])


@pytest.mark.realdata
def test_real_file_is_read_by_bytes_and_equals_the_general_parser(celeba_dir, monkeypatch):
    path = celeba_dir / "list_attr_celeba_first20k.txt"
    assert celeba._parse_fixed_layout(path, 40) is not None  # the official layout is taken
    assert_same(path, monkeypatch)


def test_the_official_layout_is_parsed_without_pandas_tokeniser(tmp_path, monkeypatch):
    rows = [official_row(f"{i:06d}.jpg", [(-1) ** (i + j) for j in range(5)]) for i in range(50)]
    path = tmp_path / "a.txt"
    path.write_text("50\r\nA B C D E \r\n" + "\r\n".join(rows) + "\r\n")

    def no_pandas(*args, **kwargs):
        raise AssertionError("the fixed layout must not go through pandas.read_csv")

    monkeypatch.setattr(pd, "read_csv", no_pandas)
    table = read_celeba_attributes(path)
    assert table.shape == (50, 5) and table.iloc[3].tolist() == [-1, 1, -1, 1, -1]


def test_a_duplicate_name_is_named_as_before_when_names_do_not_ascend(tmp_path, monkeypatch):
    rows = [official_row(name, [1, -1]) for name in ["b.jpg", "a.jpg", "c.jpg", "a.jpg"]]
    path = tmp_path / "a.txt"
    path.write_text("4\nX Y\n" + "\n".join(rows) + "\n")
    error = outcome(lambda: read_celeba_attributes(path))
    assert error[0] == "error" and error[1][2] == 6 and "also on line 4" in error[1][0]
    assert_same(path, monkeypatch)


NAMES = st.one_of(
    st.from_regex(r"[0-9]{6}\.jpg", fullmatch=True),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12),
    st.sampled_from(["NA", "nan", "-1", "1", "0", "é.jpg", "a b", "#x", "\"q\""]),
)
BAD_TOKENS = ["2", "300", "255", "yes", "-", "--1", "+1", "01", "1e0", "-0", "1.0", "", "\t1"]


@st.composite
def celeba_files(draw) -> bytes:
    m = draw(st.integers(1, 6) | st.integers(2, 4))
    n = draw(st.integers(0, 25))
    names = draw(st.lists(NAMES, min_size=n, max_size=n))
    if draw(st.booleans()):
        names = sorted(names)
    values = draw(st.lists(st.lists(st.sampled_from([1, -1, 0]), min_size=m, max_size=m),
                           min_size=n, max_size=n))
    # Mostly the official layout (the byte parser's), often with one malformed line.
    spacing = draw(st.sampled_from(["official"] * 4 + ["single", "padded-first"]))
    lines = []
    for name, row in zip(names, values):
        if spacing == "official":
            lines.append(official_row(name, row))
        elif spacing == "single":
            lines.append(" ".join([name, *map(str, row)]))
        else:
            lines.append(name + "".join(f" {v:2d}" for v in row))
    if lines and draw(st.integers(0, 2)) == 0:  # one malformed line
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["token", "drop", "extra", "blank", "lone-cr", "tab",
                                     "duplicate", "trailing-space"]))
        fields = lines[i].split(" ")
        if kind == "token":
            j = draw(st.integers(1, len(fields) - 1)) if len(fields) > 1 else 0
            fields[j] = draw(st.sampled_from(BAD_TOKENS))
            lines[i] = " ".join(fields)
        elif kind == "drop":
            lines[i] = lines[i].rsplit(" ", 1)[0]
        elif kind == "extra":
            lines[i] += "  1"
        elif kind == "blank":
            lines.insert(i, "")
        elif kind == "lone-cr":
            lines[i] = lines[i].replace(" ", "\r", 1)
        elif kind == "tab":
            lines[i] = lines[i].replace(" ", "\t", 1)
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines[i] += " "
    end = draw(st.sampled_from(["\r\n", "\n"]))
    header = " ".join(f"A{j}" for j in range(m)) + draw(st.sampled_from(["", " "]))
    text = f"{n}{end}{header}{end}" + end.join(lines)
    if lines and draw(st.booleans()):
        text += end
    return text.encode("utf-8")


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=celeba_files(), block=st.sampled_from([16, 64, 1 << 21]))
def test_byte_parser_agrees_with_the_general_parser(tmp_path, monkeypatch, content, block):
    # Small blocks cut rows across reads (and a row longer than a block goes the general way).
    monkeypatch.setattr(celeba, "_BLOCK_BYTES", block)
    path = tmp_path / "attrs.txt"
    path.write_bytes(content)
    assert_same(path, monkeypatch)


def test_values_of_every_kind_are_read_in_every_position(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    values = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(300, 41))
    rows = [official_row(f"{i:07d}.jpg", list(map(int, row))) for i, row in enumerate(values)]
    path = tmp_path / "a.txt"
    path.write_bytes(("300\r\n" + " ".join(f"c{j}" for j in range(41)) + " \r\n"
                      + "\r\n".join(rows)).encode())
    assert celeba._parse_fixed_layout(path, 41) is not None
    np.testing.assert_array_equal(read_celeba_attributes(path).to_numpy(), values)
    assert_same(path, monkeypatch)


def threaded(monkeypatch, block: int, threads: int) -> None:
    """Parse in blocks of ``block`` bytes on ``threads`` threads, whatever the file's size."""
    monkeypatch.setattr(celeba, "_BLOCK_BYTES", block)
    monkeypatch.setattr(celeba, "_THREADED_BYTES", 0)
    monkeypatch.setattr(celeba, "_threads", lambda: threads)


def value_token(value: int, first: bool) -> str:
    """A value as the official layout writes it: the first unpadded, the others " %2d"."""
    return str(value) if first else f" {value:2d}"


ODD_LINES = ["none"] * 3 + [
    "wider-name", "narrower-name", "lf-in-crlf", "cr-cr-lf", "trailing-space", "leading-space",
    "padded-first", "double-space", "tab", "bad-token", "minus-zero", "plus-one", "missing",
    "extra", "blank", "lone-cr", "nul", "non-ascii", "duplicate", "descending", "space-in-name"]


@st.composite
def official_files(draw) -> tuple[bytes, int, bool]:
    """CelebA's own layout (fixed-width names, CRLF), often with one odd line or header.

    Returns the file, its number of attributes, and whether every line is in the layout.
    """
    m = draw(st.sampled_from([1, 2, 3, 7, 8, 16, 40, 41]))
    n = draw(st.integers(1, 40))
    first = draw(st.integers(1, 10 ** 5))
    names = [f"{first + i:06d}.jpg" for i in range(n)]
    values = draw(st.lists(st.lists(st.sampled_from([1, -1, 0]), min_size=m, max_size=m),
                           min_size=n, max_size=n))
    lines = [official_row(name, row) for name, row in zip(names, values)]
    ends = ["\r\n"] * n
    odd = draw(st.sampled_from(ODD_LINES))
    i = draw(st.integers(0, n - 1))
    cut = lines[i].index(" ")  # the name's end
    cell = cut + 1 + draw(st.integers(0, m - 1)) * 3  # some cell's start (after the first)
    if odd == "wider-name":
        lines[i] = "0" + lines[i]
    elif odd == "narrower-name":
        lines[i] = lines[i][1:]
    elif odd == "lf-in-crlf":
        ends[i] = "\n"
    elif odd == "cr-cr-lf":
        ends[i] = "\r\r\n"
    elif odd == "trailing-space":
        lines[i] += " "
    elif odd == "leading-space":
        lines[i] = " " + lines[i]
    elif odd == "padded-first":
        lines[i] = lines[i][:cut] + value_token(values[i][0], False) + lines[i][
            cut + 1 + len(str(values[i][0])):]
    elif odd == "double-space":
        lines[i] = lines[i][:cell] + " " + lines[i][cell:]
    elif odd == "tab":
        lines[i] = lines[i][:cut] + "\t" + lines[i][cut + 1:]
    elif odd in ("bad-token", "minus-zero", "plus-one"):
        token = {"bad-token": draw(st.sampled_from(["2", "9", "-2", "-", "x", "11", "--"])),
                 "minus-zero": "-0", "plus-one": "+1"}[odd]
        fields = lines[i].split()
        j = draw(st.integers(1, m))
        fields[j] = token
        lines[i] = fields[0] + " " + fields[1] + "".join(f" {f:>2}" for f in fields[2:])
    elif odd == "missing":
        lines[i] = lines[i][:-3] if m > 1 else lines[i][:cut]
    elif odd == "extra":
        lines[i] += "  1"
    elif odd == "blank":
        lines.insert(i, "")
        ends.insert(i, "\r\n")
    elif odd == "lone-cr":
        ends[i] = "\r"
    elif odd == "nul":
        lines[i] = lines[i][:cut - 1] + "\x00" + lines[i][cut:]
    elif odd == "non-ascii":
        lines[i] = lines[i][:cut - 1] + "é" + lines[i][cut:]
    elif odd == "duplicate" and n > 1:
        lines[i] = lines[i - 1 if i else 1][:cut] + lines[i][cut:]
    elif odd == "descending" and n > 1:
        j = i - 1 if i else 1
        lines[i], lines[j] = lines[j], lines[i]
    elif odd == "space-in-name":
        lines[i] = lines[i][:2] + " " + lines[i][3:]
    header = draw(st.sampled_from(["official", "no-trailing-space", "lf", "count", "short",
                                   "long", "no-count"] + ["official"] * 4))
    names_line = " ".join(f"A{j}" for j in range(m + {"short": -1, "long": 1}.get(header, 0)))
    head_end = "\n" if header == "lf" else "\r\n"
    count = {"count": "202599", "no-count": ""}.get(header, str(n))
    text = (f"{count}{head_end}" if header != "no-count" else "") + names_line + (
        "" if header == "no-trailing-space" else " ") + head_end
    body = "".join(line + end for line, end in zip(lines, ends))
    final_newline = draw(st.booleans()) or odd == "none"
    if not final_newline:
        body = body[:-len(ends[-1])]
    in_layout = (odd == "none" or odd in ("lf-in-crlf", "minus-zero") or (
        odd in ("duplicate", "descending") and n == 1)) and header not in ("short", "long",
                                                                            "no-count")
    return (text + body).encode("utf-8"), m, in_layout


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=official_files(), block=st.sampled_from([64, 300, 4096, 1 << 19]),
       threads=st.sampled_from([1, 2, 3]))
def test_official_layout_with_one_odd_line_reads_as_the_general_parser(
        tmp_path, monkeypatch, case, block, threads):
    # Every file, official or with one odd line or header, gives the general parser's table or
    # error, on one thread or several, with rows cut across blocks; the byte parser takes
    # every official file whose lines fit in a block.
    content, m, in_layout = case
    threaded(monkeypatch, block, threads)
    path = tmp_path / "attrs.txt"
    path.write_bytes(content)
    assert_same(path, monkeypatch)
    longest = max(len(line) for line in content.split(b"\n"))
    if in_layout and longest + 1 < block:
        assert celeba._parse_fixed_layout(path, m) is not None


@pytest.mark.parametrize("m", [1, 7, 8, 40, 41])
@pytest.mark.parametrize("threads", [1, 3])
def test_the_byte_parser_decodes_every_value_in_every_column(tmp_path, monkeypatch, m, threads):
    # Exact values, not only agreement with the general parser: a sign lost or flipped in any
    # column (the first, whose sign sits before the name's space, included) fails here.
    rng = np.random.default_rng(m)
    values = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(3000, m))
    values[:3] = [[-1] * m, [1] * m, [0] * m]
    names = [f"{i:06d}.jpg" for i in range(1, 3001)]
    rows = [official_row(name, list(map(int, row))) for name, row in zip(names, values)]
    # "-0" reads as 0, in the first column and the others.
    rows[3] = names[3] + " " + "".join(
        ("-0" if j == 0 else " -0") if v == 0 else value_token(v, j == 0)
        for j, v in enumerate(map(int, values[3])))
    path = tmp_path / "a.txt"
    path.write_bytes(("3000\r\n" + " ".join(f"c{j}" for j in range(m)) + " \r\n"
                      + "\r\n".join(rows) + "\r\n").encode())
    threaded(monkeypatch, 4096, threads)
    assert celeba._parse_fixed_layout(path, m) is not None
    table = read_celeba_attributes(path)
    np.testing.assert_array_equal(table.to_numpy(), values)
    assert table.index.tolist() == names and table.dtypes.unique().tolist() == [np.int8]


def test_a_name_repeated_blocks_apart_is_named_as_by_the_general_parser(tmp_path, monkeypatch):
    # Names ascend within every block; the repeat is only seen across blocks (and threads).
    names = [f"{i:06d}.jpg" for i in range(1, 2001)]
    names[1500] = names[20]
    rows = [official_row(name, [1, -1, 1]) for name in names]
    path = tmp_path / "a.txt"
    path.write_bytes(("2000\r\nA B C \r\n" + "\r\n".join(rows) + "\r\n").encode())
    threaded(monkeypatch, 4096, 2)
    error = outcome(lambda: read_celeba_attributes(path))
    assert error == ("error", (f"duplicate image name '{names[20]}': it is also on line 23",
                               str(path), 1503, None))
    assert_same(path, monkeypatch)
