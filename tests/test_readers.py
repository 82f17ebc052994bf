"""Table readers and writers: CelebA's official layout, CSV/TSV/Parquet, identities, bad input."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privface.privmetrics import readers
from privface.base.errors import InputError
from privface.privmetrics.readers import (is_celeba_attribute_file, join_identities,
                                          read_celeba_attributes, read_celeba_identities,
                                          read_table, write_celeba_attributes, write_table)

# Exactly the official layout: a count line that does not match the rows (the shared slice says
# 202599 for 20,000 rows), names with a trailing space, the first value after one space and the
# others right-aligned in two characters (so one or two spaces), CRLF line ends.
HEADER = b"202599\r\nBald Male Smiling \r\n"
ROWS = (b"000001.jpg -1  1 -1\r\n"
        b"000002.jpg 1 -1  1\r\n"
        b"000003.jpg -1 -1 -1\r\n")
OFFICIAL = HEADER + ROWS
EXPECTED = pd.DataFrame(
    np.array([[-1, 1, -1], [1, -1, 1], [-1, -1, -1]], dtype=np.int8),
    index=pd.Index(["000001.jpg", "000002.jpg", "000003.jpg"], name="image_id", dtype=object),
    columns=pd.Index(["Bald", "Male", "Smiling"], dtype=object),
)
IDENTITIES = b"000001.jpg 2880\r\n000002.jpg 2937\r\n000003.jpg 8692\r\n"


def put(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def raised(call, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    return info.value


def folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- CelebA attribute files: the good path ------------------------------------------------------


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"], ids=["CRLF", "LF"])
def test_reads_the_official_layout(tmp_path, line_end):
    path = put(tmp_path, "attrs.txt", OFFICIAL.replace(b"\r\n", line_end))
    table = read_celeba_attributes(path)
    pd.testing.assert_frame_equal(table, EXPECTED)
    assert table.index.name == "image_id"
    assert all(dtype == np.int8 for dtype in table.dtypes)


def test_one_or_two_spaces_and_a_missing_last_line_end_are_all_fine(tmp_path):
    # The shared 20k slice ends without a final CRLF; single spaces everywhere also parse.
    text = HEADER + b"000001.jpg -1 1 -1\r\n000002.jpg  1  -1  1\r\n000003.jpg -1 -1 -1"
    pd.testing.assert_frame_equal(read_celeba_attributes(put(tmp_path, "a.txt", text)), EXPECTED)


def test_the_count_line_is_ignored_when_it_is_an_integer(tmp_path):
    for count in (b"3", b"0", b"202599", b"7"):
        path = put(tmp_path, "a.txt", count + OFFICIAL[len(b"202599"):])
        assert len(read_celeba_attributes(path)) == 3


def test_zero_is_read_as_a_generalised_value(tmp_path):
    path = put(tmp_path, "a.txt", HEADER + ROWS.replace(b"000002.jpg 1 -1", b"000002.jpg 0  0"))
    assert read_celeba_attributes(path).loc["000002.jpg"].tolist() == [0, 0, 1]


def test_image_names_are_kept_as_text(tmp_path):
    # pandas would turn an image called "NA" into a missing value; the reader must not.
    path = put(tmp_path, "a.txt", HEADER + ROWS.replace(b"000002.jpg", b"NA"))
    assert read_celeba_attributes(path).index.tolist() == ["000001.jpg", "NA", "000003.jpg"]


# --- CelebA attribute files: every error names file, line and column -----------------------------


def _replace(old: bytes, new: bytes) -> bytes:
    assert old in OFFICIAL
    return OFFICIAL.replace(old, new, 1)


ROW_ERRORS = [
    # (content, line, column, words in the message)
    (_replace(b"000002.jpg 1 -1", b"000002.jpg 1  2"), 4, "Male", "expected 1, -1 or 0, found '2'"),
    (_replace(b"000003.jpg -1 -1 -1", b"000003.jpg -1 -1 yes"), 5, "Smiling", "found 'yes'"),
    # 300 would wrap to 44 in int8 (and 255 to -1): the reader must see the real number.
    (_replace(b"000002.jpg 1 -1", b"000002.jpg 1 300"), 4, "Male", "found '300'"),
    (_replace(b"000002.jpg 1 -1", b"000002.jpg 1 255"), 4, "Male", "found '255'"),
    (_replace(b"000001.jpg -1", b"000001.jpg 1e9"), 3, "Bald", "found '1e9'"),
    (_replace(b"000002.jpg 1 -1  1", b"000002.jpg 1 -1"), 4, "Smiling",
     "expected an image name and 3 values, found 2 values"),
    (_replace(b"000001.jpg -1  1 -1", b"000001.jpg -1  1 -1  1"), 3, None,
     "expected an image name and 3 values, found 4 values"),
    (_replace(b"000003.jpg -1 -1 -1", b"000003.jpg -1 -1 -1 -1"), 5, None, "found 4 values"),
    (_replace(b"000002.jpg", b"\r\n000002.jpg"), 4, None, "empty line"),
    (_replace(b"000001.jpg -1", b"000001.jpg \"1"), 3, "Bald", "found '\"1'"),
]


@pytest.mark.parametrize("content,line,column,words", ROW_ERRORS)
def test_a_bad_row_is_named_by_line_and_column(tmp_path, content, line, column, words):
    path = put(tmp_path, "attrs.txt", content)
    error = raised(read_celeba_attributes, path)
    assert (error.file, error.row, error.column) == (str(path), line, column)
    message = str(error)
    assert message.startswith(f"{path}, line {line}")
    assert words in message
    if column is not None:
        assert f"column {column!r}" in message


HEAD_ERRORS = [
    (b"", None, "the file is empty"),
    (b"three\r\nBald Male Smiling \r\n" + ROWS, 1, "expected the image count (an integer) on line "
                                                   "1, found 'three'"),
    (b"3.0\r\nBald Male Smiling \r\n" + ROWS, 1, "found '3.0'"),
    (b"\r\nBald Male Smiling \r\n" + ROWS, 1, "found ''"),
    (b"3\r\n", 2, "missing header"),
    (b"3\r\n" + ROWS, 2, "missing header: line 2 looks like an image row"),
    (HEADER, 3, "no rows"),
]


@pytest.mark.parametrize("content,line,words", HEAD_ERRORS)
def test_bad_count_header_or_no_rows(tmp_path, content, line, words):
    path = put(tmp_path, "attrs.txt", content)
    error = raised(read_celeba_attributes, path)
    assert error.file == str(path) and error.row == line
    assert words in str(error) and str(path) in str(error)


def test_a_duplicate_attribute_name_is_named(tmp_path):
    path = put(tmp_path, "a.txt", b"3\r\nBald Male Bald \r\n" + ROWS)
    error = raised(read_celeba_attributes, path)
    assert (error.row, error.column) == (2, "Bald")
    assert "appears twice" in str(error)


def test_a_duplicate_image_name_is_named_with_both_lines(tmp_path):
    path = put(tmp_path, "a.txt", _replace(b"000003.jpg", b"000001.jpg"))
    error = raised(read_celeba_attributes, path)
    assert error.row == 5
    assert "duplicate image name '000001.jpg': it is also on line 3" in str(error)


def test_text_that_is_not_utf8_is_named_by_line(tmp_path):
    path = put(tmp_path, "a.txt", _replace(b"000002.jpg", b"00000\xe9.jpg"))
    error = raised(read_celeba_attributes, path)
    assert error.row == 4 and "not UTF-8" in str(error)


def test_missing_file_and_folder_are_named(tmp_path):
    missing = tmp_path / "nope.txt"
    for call in (read_celeba_attributes, read_celeba_identities, read_table):
        error = raised(call, missing)
        assert error.file == str(missing) and "no such file" in str(error)
        error = raised(call, tmp_path)
        assert error.file == str(tmp_path) and "folder" in str(error)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(tmp_path):
    path = put(tmp_path, "a.txt", OFFICIAL)
    path.chmod(0)
    try:
        error = raised(read_table, path)
    finally:
        path.chmod(0o644)
    assert error.file == str(path) and "cannot read" in str(error)


# --- identities ----------------------------------------------------------------------------------


def test_reads_identities(tmp_path):
    ids = read_celeba_identities(put(tmp_path, "ids.txt", IDENTITIES))
    assert ids.name == "identity" and ids.index.name == "image_id"
    assert ids.dtype == np.int64
    assert ids.to_dict() == {"000001.jpg": 2880, "000002.jpg": 2937, "000003.jpg": 8692}


@pytest.mark.parametrize("old,new,line,column,words", [
    (b"2937", b"2937 1", 2, None, "expected an image name and an identity, found 3 fields"),
    (b" 2937", b"", 2, None, "found 1 field"),
    (b"2937", b"Bob", 2, "identity", "expected an integer identity, found 'Bob'"),
    (b"000003.jpg", b"000001.jpg", 3, None, "duplicate image name '000001.jpg': it is also on "
                                            "line 1"),
    (b"000002.jpg", b"\r\n000002.jpg", 2, None, "empty line"),
])
def test_bad_identity_lines_are_named(tmp_path, old, new, line, column, words):
    path = put(tmp_path, "ids.txt", IDENTITIES.replace(old, new, 1))
    error = raised(read_celeba_identities, path)
    assert (error.file, error.row, error.column) == (str(path), line, column)
    assert words in str(error)


def test_join_identities_adds_an_int64_column_by_image_name(tmp_path):
    ids = read_celeba_identities(put(tmp_path, "ids.txt", IDENTITIES + b"000009.jpg 1\r\n"))
    joined = join_identities(EXPECTED.iloc[::-1], ids)
    assert joined["identity"].tolist() == [8692, 2937, 2880]
    assert joined["identity"].dtype == np.int64
    assert "identity" not in EXPECTED.columns  # a copy, the input is untouched


def test_join_identities_names_the_missing_images_and_the_file(tmp_path):
    path = put(tmp_path, "ids.txt", IDENTITIES.split(b"\r\n")[0] + b"\r\n")
    error = raised(join_identities, EXPECTED, read_celeba_identities(path), source=path)
    assert error.file == str(path)
    assert "2 of 3 images of the table have no identity" in str(error)
    assert "the first is '000002.jpg'" in str(error)


def test_join_identities_refuses_a_second_identity_column():
    table = EXPECTED.assign(identity=1)
    ids = pd.Series([1, 2, 3], index=EXPECTED.index, name="identity")
    error = raised(join_identities, table, ids)
    assert error.column == "identity" and "already has an 'identity' column" in str(error)


def test_join_identities_refuses_an_image_with_two_identities():
    ids = pd.Series([1, 2, 3, 4], index=[*EXPECTED.index, "000001.jpg"], name="identity")
    assert "'000001.jpg' has more than one identity" in str(raised(join_identities, EXPECTED, ids))


# --- read_table: one entry point -----------------------------------------------------------------


def test_a_dataframe_is_returned_as_is():
    assert read_table(EXPECTED) is EXPECTED


def test_sniffs_celeba_text_and_csv_text(tmp_path):
    celeba = put(tmp_path, "a.txt", OFFICIAL)
    csv_txt = put(tmp_path, "b.txt", "image_id,Male\n1.jpg,1\n2.jpg,-1\n")
    odd_suffix = put(tmp_path, "c.attrs", OFFICIAL)
    assert is_celeba_attribute_file(celeba) and is_celeba_attribute_file(odd_suffix)
    assert not is_celeba_attribute_file(csv_txt)
    pd.testing.assert_frame_equal(read_table(celeba), EXPECTED)
    pd.testing.assert_frame_equal(read_table(odd_suffix), EXPECTED)
    assert read_table(csv_txt)["Male"].tolist() == [1, -1]


def test_sniff_never_raises(tmp_path):
    assert not is_celeba_attribute_file(tmp_path / "missing.txt")
    assert not is_celeba_attribute_file(tmp_path)
    assert not is_celeba_attribute_file(put(tmp_path, "bin", bytes(range(256))))
    assert not is_celeba_attribute_file(put(tmp_path, "numbers.txt", "1\n2\n3\n"))
    # A malformed CelebA file still counts, so that its reader explains what is wrong.
    assert is_celeba_attribute_file(put(tmp_path, "bad.txt", _replace(b"-1  1 -1", b"-1  9 -1")))


def test_fmt_overrides_the_suffix(tmp_path):
    path = put(tmp_path, "attrs.csv", OFFICIAL)
    pd.testing.assert_frame_equal(read_table(path, fmt="celeba"), EXPECTED)
    error = raised(read_table, path, fmt="xml")
    assert "unknown format 'xml'" in str(error) and error.file == str(path)


@pytest.mark.parametrize("header", ["image_id", ""])
def test_csv_first_column_image_id_or_unnamed_is_the_index(tmp_path, header):
    table = read_table(put(tmp_path, "t.csv", f"{header},Male,Smiling\n1.jpg,1,-1\n2.jpg,-1,1\n"))
    assert table.index.tolist() == ["1.jpg", "2.jpg"]
    assert table.index.name == (header or None)
    assert table.columns.tolist() == ["Male", "Smiling"]


def test_csv_without_image_column_keeps_a_range_index(tmp_path):
    table = read_table(put(tmp_path, "t.csv", "Male,Smiling\n1,-1\n-1,1\n"))
    assert isinstance(table.index, pd.RangeIndex)
    assert table.columns.tolist() == ["Male", "Smiling"]


def test_tsv_is_read_by_suffix(tmp_path):
    table = read_table(put(tmp_path, "t.tsv", "image_id\tMale\n1.jpg\t1\n2.jpg\t-1\n"))
    assert table["Male"].to_dict() == {"1.jpg": 1, "2.jpg": -1}


@pytest.mark.parametrize("text,line,column,words", [
    ("Male,Smiling\n1,-1\n-1,1,3\n", 3, None, "Expected 2 fields in line 3, saw 3"),
    ("Male,Smiling\n", None, None, "the table has a header but no rows"),
    ("\n\n", None, None, "no columns"),
    ("Male,Smiling,Male\n1,1,1\n", 1, "Male", "column appears twice"),
    ("image_id,Male\n1.jpg,1\n2.jpg,1\n1.jpg,-1\n", 4, "image_id",
     "duplicate image name '1.jpg': it is also on line 2"),
])
def test_bad_csv_is_named(tmp_path, text, line, column, words):
    path = put(tmp_path, "t.csv", text)
    error = raised(read_table, path)
    assert (error.file, error.row, error.column) == (str(path), line, column)
    assert words in str(error)


def test_empty_csv_and_parquet_files_are_named(tmp_path):
    for name in ("t.csv", "t.parquet", "t.txt"):
        path = put(tmp_path, name, b"")
        error = raised(read_table, path)
        assert error.file == str(path) and "empty" in str(error)


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    path = put(tmp_path, "t.parquet", b"PAR1 but not really")
    error = raised(read_table, path)
    assert error.file == str(path) and "not a readable Parquet file" in str(error)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = put(tmp_path, "t.parquet", b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    for error in (raised(read_table, path), raised(write_table, EXPECTED, tmp_path / "o.pq")):
        assert 'pip install "privface[parquet]"' in str(error)
    assert folder_listing(tmp_path) == ["t.parquet"]


# --- writers and round trips ---------------------------------------------------------------------


def test_writes_the_official_layout_exactly(tmp_path):
    path = tmp_path / "out.txt"
    write_celeba_attributes(EXPECTED, path)
    assert path.read_bytes() == b"3\r\n" + OFFICIAL[len(b"202599\r\n"):]


def test_celeba_round_trip_with_generalised_values(tmp_path):
    table = EXPECTED.copy()
    table.iloc[1, 0] = 0
    table.iloc[2, 2] = 0
    write_celeba_attributes(table, tmp_path / "out.txt")
    pd.testing.assert_frame_equal(read_celeba_attributes(tmp_path / "out.txt"), table)


def test_celeba_writer_accepts_any_integer_dtype(tmp_path):
    table = EXPECTED.astype(np.int64)
    write_table(table, tmp_path / "out.txt")
    pd.testing.assert_frame_equal(read_table(tmp_path / "out.txt"), EXPECTED)


@given(
    values=st.integers(1, 30).flatmap(lambda n: st.integers(1, 6).flatmap(
        lambda m: st.lists(st.lists(st.sampled_from([-1, 0, 1]), min_size=m, max_size=m),
                           min_size=n, max_size=n))),
    width=st.integers(1, 12),
)
def test_celeba_round_trip_is_exact(values, width):
    n, m = len(values), len(values[0])
    # Image names of different lengths exercise the writer's padding.
    names = [f"{i:0{width}d}.jpg" if i % 3 else f"x{i}.png" for i in range(n)]
    table = pd.DataFrame(np.array(values, dtype=np.int8),
                         index=pd.Index(names, name="image_id", dtype=object),
                         columns=pd.Index([f"A{j}" for j in range(m)], dtype=object))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.txt"
        write_celeba_attributes(table, path)
        pd.testing.assert_frame_equal(read_celeba_attributes(path), table)


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet", "t.pq"])
def test_tabular_round_trips(tmp_path, name):
    if name.endswith(("parquet", "pq")):
        pytest.importorskip("pyarrow")
    table = EXPECTED.assign(identity=np.array([7, 7, 9], dtype=np.int64))
    write_table(table, tmp_path / name)
    back = read_table(tmp_path / name)
    # CSV/TSV carry no dtypes (int8 comes back as int64); Parquet keeps them.
    pd.testing.assert_frame_equal(back, table, check_dtype=name.endswith(("parquet", "pq")))
    assert folder_listing(tmp_path) == [name]  # no temporary file left behind


def test_csv_round_trip_without_an_index(tmp_path):
    table = EXPECTED.reset_index(drop=True)
    write_table(table, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), table, check_dtype=False)


def test_write_table_needs_a_known_format(tmp_path):
    error = raised(write_table, EXPECTED, tmp_path / "t.xlsx")
    assert "cannot tell the format" in str(error) and error.file == str(tmp_path / "t.xlsx")
    write_table(EXPECTED, tmp_path / "t.xlsx", fmt="csv")
    assert read_table(tmp_path / "t.xlsx", fmt="csv")["Male"].tolist() == [1, -1, -1]


@pytest.mark.parametrize("change,column,words", [
    (lambda t: t.assign(Male=[1, 2, 1]), "Male", "expected 1, -1 or 0, found 2 for image "
                                                 "'000002.jpg'"),
    (lambda t: t.assign(Male=[1.0, np.nan, 1.0]), "Male", "found nan"),
    (lambda t: t.assign(Male=["1", "-1", "1"]), "Male", "found '1'"),
    (lambda t: t.assign(identity=[2880, 1, 1]), "identity", "drop it first"),
    (lambda t: t.rename(columns={"Male": "Is Male"}), "Is Male", "without whitespace"),
])
def test_celeba_writer_names_bad_cells(tmp_path, change, column, words):
    error = raised(write_celeba_attributes, change(EXPECTED), tmp_path / "out.txt")
    assert error.column == column and words in str(error)
    assert folder_listing(tmp_path) == []


def test_celeba_writer_refuses_tables_it_cannot_hold(tmp_path):
    assert "empty" in str(raised(write_celeba_attributes, EXPECTED.iloc[:0], tmp_path / "o.txt"))
    spaced = EXPECTED.rename(index={"000002.jpg": "my photo.jpg"})
    assert "'my photo.jpg'" in str(raised(write_celeba_attributes, spaced, tmp_path / "o.txt"))
    twice = EXPECTED.rename(index={"000002.jpg": "000001.jpg"})
    assert "duplicate image name '000001.jpg'" in str(
        raised(write_celeba_attributes, twice, tmp_path / "o.txt"))
    assert folder_listing(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = put(tmp_path, "attrs.txt", OFFICIAL)

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # Fail halfway: after the head is written, while the rows are being built.
    monkeypatch.setattr(readers.celeba, "_celeba_row_bytes", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_celeba_attributes(EXPECTED, path)
    assert path.read_bytes() == OFFICIAL
    assert folder_listing(tmp_path) == ["attrs.txt"]


def test_writing_into_a_missing_folder_or_onto_a_folder_is_named(tmp_path):
    error = raised(write_table, EXPECTED, tmp_path / "no" / "t.csv")
    assert error.file == str(tmp_path / "no" / "t.csv") and "does not exist" in str(error)
    (tmp_path / "d.csv").mkdir()
    assert "folder" in str(raised(write_table, EXPECTED, tmp_path / "d.csv"))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_rewrite_keeps_the_file_permissions(tmp_path):
    path = put(tmp_path, "attrs.txt", OFFICIAL)
    path.chmod(0o640)
    write_celeba_attributes(EXPECTED, path)
    assert path.stat().st_mode & 0o777 == 0o640


# --- the real CelebA data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_attributes(celeba_dir) -> tuple[Path, pd.DataFrame]:
    path = celeba_dir / "list_attr_celeba_first20k.txt"
    return path, read_celeba_attributes(path)


@pytest.mark.realdata
def test_real_attribute_file(real_attributes):
    path, table = real_attributes
    assert table.shape == (20000, 40)
    assert all(dtype == np.int8 for dtype in table.dtypes)
    assert set(np.unique(table.to_numpy())) == {-1, 1}
    assert table.index[0] == "000001.jpg" and table.index[-1] == "020000.jpg"
    assert table.columns[0] == "5_o_Clock_Shadow" and table.columns[-1] == "Young"
    assert is_celeba_attribute_file(path)
    pd.testing.assert_frame_equal(read_table(path), table)


@pytest.mark.realdata
def test_real_first_row_equals_its_line(real_attributes):
    path, table = real_attributes
    line = path.read_bytes().split(b"\r\n")[2].decode().split()
    assert line[0] == "000001.jpg"
    assert table.iloc[0].tolist() == [int(v) for v in line[1:]]


@pytest.mark.realdata
def test_real_file_rewrites_byte_for_byte_except_the_count(real_attributes, tmp_path):
    path, table = real_attributes
    original = path.read_bytes()
    count, rest = original.split(b"\r\n", 1)
    assert count == b"202599"  # the slice kept the full file's count line
    write_celeba_attributes(table, tmp_path / "rewrite.txt")
    new_count, new_rest = (tmp_path / "rewrite.txt").read_bytes().split(b"\r\n", 1)
    assert new_count == b"20000"
    # The slice was cut without its last CRLF; the writer ends every line, like the full file.
    assert new_rest == (rest if rest.endswith(b"\r\n") else rest + b"\r\n")


@pytest.mark.realdata
def test_real_identity_file(celeba_dir, real_attributes):
    ids = read_celeba_identities(celeba_dir / "identity_CelebA.txt")
    assert len(ids) == 202599
    assert ids.nunique() == 10177
    assert ids["000001.jpg"] == 2880 and ids["202599.jpg"] == 10101
    joined = join_identities(real_attributes[1], ids)
    assert joined.shape == (20000, 41)
    assert joined["identity"].nunique() == 6912  # people in the first 20,000 images
