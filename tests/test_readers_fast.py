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
