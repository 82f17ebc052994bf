"""``privface audit FILE.parquet`` reads only the columns it audits, and reports the same.

A wide Parquet file is mostly columns the audit never looks at; reading them was most of the
command's time. The roles are resolved on the file's schema, then only those columns are read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("pyarrow")
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from privface.cli import audit_input  # noqa: E402
from privface.cli.main import app  # noqa: E402
from privface.privmetrics.readers import read_table  # noqa: E402

runner = CliRunner()


def wide_table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "Male": rng.choice([1, -1], n).astype(np.int8),
        "Young": rng.choice([1, -1], n).astype(np.int8),
        "note": [f"free text {i}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "identity": rng.integers(0, 9, n),
        "score": rng.normal(size=n),
    }, index=pd.Index([f"{i:06d}.jpg" for i in range(n)], name="image_id"))


@pytest.fixture
def wide_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "faces.parquet"
    wide_table().to_parquet(path)
    return path


def audit(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args])
    return result.exit_code, result.output


def audit_whole_table(monkeypatch, *args: str) -> tuple[int, str]:
    """The command as it was: the whole file read, then audited."""
    with monkeypatch.context() as patch:
        patch.setattr(audit_input, "_read_parquet_columns", lambda *a: None)
        return audit(*args)


def test_audit_reads_only_the_columns_it_audits(wide_parquet, monkeypatch):
    asked: list = []
    original = pq.read_table

    def spy(source, *args, columns=None, **kwargs):
        asked.append(columns)
        return original(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq, "read_table", spy)
    code, output = audit(str(wide_parquet), "--qi", "Male,Young", "--sensitive", "identity",
                         "--k", "2")
    assert code in (0, 1), output
    assert asked == [["Male", "Young", "identity"]]


ARGUMENTS = [
    ("--qi", "Male,Young", "--sensitive", "identity", "--k", "2", "--format", "json"),
    ("--qi", "Male", "--qi", "age", "--sensitive", "identity,Young", "--l", "2", "--t", "0.3",
     "--format", "json", "--explain"),
    ("--qi", "Male,Young", "--k", "2"),  # identity is the default sensitive column
    ("--qi", "Male,nope", "--k", "2"),  # a missing column: the same message as before
    ("--qi", " Male ,Young", "--sensitive", "identity", "--format", "json"),
    ("--k", "2"),  # no --qi for a table that is not CelebA's layout
]


@pytest.mark.parametrize("args", ARGUMENTS)
def test_report_and_exit_code_are_those_of_the_whole_table(wide_parquet, monkeypatch, args):
    assert audit(str(wide_parquet), *args) == audit_whole_table(monkeypatch, str(wide_parquet),
                                                                 *args)


def test_a_ground_distance_matrix_still_matches_the_sensitive_values(wide_parquet, tmp_path,
                                                                      monkeypatch):
    labels = [str(v) for v in range(9)]
    matrix = pd.DataFrame([[abs(i - j) / 8 for j in range(9)] for i in range(9)],
                          index=labels, columns=labels)
    matrix.to_csv(tmp_path / "gd.csv")
    args = (str(wide_parquet), "--qi", "Male,Young", "--sensitive", "identity", "--t", "0.5",
            "--ground-distance", f"identity={tmp_path / 'gd.csv'}", "--format", "json")
    code, output = audit(*args)
    assert code in (0, 1), output
    assert json.loads(output) == json.loads(audit_whole_table(monkeypatch, *args)[1])


def test_integer_column_names_give_the_same_outcome_as_before(tmp_path, monkeypatch):
    # pandas writes the names as text and restores them as integers from its metadata.
    path = tmp_path / "ints.parquet"
    pd.DataFrame({0: [1, 1, 2], 1: [3, 3, 4]}).to_parquet(path)
    args = (str(path), "--qi", "0", "--sensitive", "1", "--format", "json")
    assert audit(*args) == audit_whole_table(monkeypatch, *args)


def frames() -> dict[str, pd.DataFrame]:
    table = wide_table(12)
    return {"image index": table, "range index": table.reset_index(drop=True),
            "image_id column": table.reset_index()}


@pytest.mark.parametrize("kind", ["image index", "range index", "image_id column",
                                  "no pandas metadata"])
def test_read_table_columns_equals_the_whole_read_narrowed(tmp_path, kind):
    path = tmp_path / "t.parquet"
    if kind == "no pandas metadata":  # written by another tool: image_id is a plain column
        arrow = pa.Table.from_pandas(wide_table(12).reset_index(), preserve_index=False)
        pq.write_table(arrow.replace_schema_metadata(None), path)
    else:
        frames()[kind].to_parquet(path)
    whole = read_table(path)
    narrow = read_table(path, columns=["score", "Male", "Male"])
    pd.testing.assert_frame_equal(narrow, whole[["score", "Male"]])
    assert whole.equals(pd.read_parquet(path).pipe(_like_read_table, kind))


def _like_read_table(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    return frame.set_index("image_id") if kind in ("image_id column", "no pandas metadata") \
        else frame


def test_read_table_names_a_column_the_file_lacks(wide_parquet):
    from privface.base.errors import InputError

    with pytest.raises(InputError, match="no such column") as info:
        read_table(wide_parquet, columns=["Male", "nope"])
    assert info.value.column == "nope" and info.value.file == str(wide_parquet)
