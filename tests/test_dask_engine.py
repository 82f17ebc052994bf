"""The Dask engine: the same contingency table and report as in memory, from a Dask DataFrame or
from CSV/Parquet globs, on Dask's threads and on a dask.distributed cluster; the CLI's
``--engine dask``; clear errors for bad input and for a missing extra."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from privface.cli.main import app
from privface.privmetrics import InputError, audit, contingency_table, explain, k_anonymity
from privface.privmetrics.readers import read_table

dask = pytest.importorskip("dask", reason='the Dask engine needs pip install "privface[dask]"')
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from privface.privmetrics.dask_engine import (  # noqa: E402  (after the importorskip)
    dask_contingency,
    dask_files_contingency,
    is_dask_frame,
    require_dask,
)


def _streaming_tests():
    """The fixtures of test_streaming: its table, its column roles, its comparisons."""
    name = "privface_tests_streaming"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("test_streaming.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ts = _streaming_tests()
QI, SA, REQUIREMENTS = ts.QI, ts.SA, ts.REQUIREMENTS


@pytest.fixture
def df() -> pd.DataFrame:
    return ts.faces()


def from_pandas(df: pd.DataFrame, npartitions: int):
    """A Dask frame with pandas' dtypes (Dask turns object text into Arrow strings by default,
    which shows a missing value as <NA> rather than nan)."""
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(df, npartitions=npartitions)


def test_arrow_strings_audit_like_the_computed_frame(df):
    ddf = dd.from_pandas(df, npartitions=3)  # Dask's default: text as Arrow strings
    computed = ddf.compute()
    assert str(computed["hair"].dtype) != str(df["hair"].dtype)
    assert audit(ddf, QI, SA, **REQUIREMENTS).to_json() == \
        audit(computed, QI, SA, **REQUIREMENTS).to_json()


@pytest.mark.parametrize("npartitions", [1, 4, 13])
def test_dask_frame_gives_the_in_memory_table_and_report(df, npartitions):
    ddf = from_pandas(df, npartitions=npartitions)
    ts.assert_same_table(dask_contingency(ddf, QI, SA, ordered="age_band", split_every=2),
                         contingency_table(ddf.compute(), QI, SA, ordered="age_band"))
    report = audit(ddf, QI, SA, ordered="age_band", power=True, **REQUIREMENTS)
    expected = audit(df, QI, SA, ordered="age_band", power=True, **REQUIREMENTS)
    assert not expected.passed
    assert report.to_json() == expected.to_json()
    assert report.to_text() == expected.to_text()


def test_every_metric_accepts_a_dask_frame(df):
    ddf = from_pandas(df, npartitions=3)
    assert k_anonymity(ddf, QI) == k_anonymity(df, QI)
    assert explain(ddf, QI, SA, k=5, l=2).to_dict() == explain(df, QI, SA, k=5, l=2).to_dict()


def test_empty_partitions_do_not_change_dtypes(df):
    # Filtering leaves most partitions empty; their dtypes must not change the others'.
    df = df.assign(row=np.arange(len(df)))
    ddf = from_pandas(df, npartitions=8)
    kept = ddf[ddf["row"] < 700]
    assert sum(len(p) == 0 for p in dask.compute(*kept.to_delayed())) >= 5
    expected = contingency_table(df.iloc[:700], QI, SA)
    ts.assert_same_table(dask_contingency(kept, QI, SA), expected)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_file_globs_on_dask_match_the_chunked_and_in_memory_engines(tmp_path, df, suffix):
    pattern = ts.write_parts(df, tmp_path, suffix)
    whole = pd.concat([read_table(f) for f in sorted(tmp_path.glob(f"*.{suffix}"))],
                      ignore_index=True)
    on_dask = dask_files_contingency(pattern, QI, SA, ordered="age_band", chunk_rows=250,
                                     split_every=3)
    ts.assert_same_table(on_dask, contingency_table(whole, QI, SA, ordered="age_band"))
    ts.assert_same_table(on_dask, ts.stream_contingency(pattern, QI, SA, ordered="age_band"))


def test_bad_columns_give_the_in_memory_errors(df, tmp_path):
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(InputError) as on_dask:
        audit(ddf, ["Male", "Yong"], SA)
    with pytest.raises(InputError) as in_memory:
        audit(df, ["Male", "Yong"], SA)
    assert str(on_dask.value) == str(in_memory.value)
    assert "did you mean Young" in str(on_dask.value)
    pattern = ts.write_parts(df, tmp_path, "parquet", parts=2)
    with pytest.raises(InputError) as caught:
        dask_files_contingency(pattern, ["Male", "Yong"], SA)
    assert caught.value.file == str(tmp_path / "part-0.parquet")
    with pytest.raises(InputError, match="no rows"):
        dask_contingency(ddf[ddf["Male"] > 5], QI, SA)


def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # makes `import dask` fail
    with pytest.raises(InputError, match=r'pip install "privface\[dask\]"'):
        require_dask()
    result = CliRunner().invoke(app, ["audit", "--demo", "--engine", "dask"])
    assert result.exit_code == 2 and "privface[dask]" in result.output


def test_is_dask_frame_needs_no_dask(df):
    assert is_dask_frame(dd.from_pandas(df, npartitions=1))
    assert not is_dask_frame(df)


def test_on_a_distributed_local_cluster(df, tmp_path):
    pattern = ts.write_parts(df, tmp_path, "parquet")
    expected = audit(df, QI, SA, ordered="age_band", **REQUIREMENTS).to_json()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as stream:
        ddf = from_pandas(df, npartitions=6)
        assert audit(ddf, QI, SA, ordered="age_band", **REQUIREMENTS).to_json() == expected
        ct = dask_files_contingency(pattern, QI, SA, ordered="age_band", chunk_rows=300)
        assert audit(ct, QI, SA, **REQUIREMENTS).to_json() == expected
    # The counting ran as tasks on the cluster's workers, not on local threads.
    ran = [str(task["key"]) for task in stream.data]
    assert sum("count_cells" in key for key in ran) == 6
    assert sum("count_piece" in key for key in ran) == len(ct_pieces(tmp_path, 300))


def ct_pieces(folder: Path, rows: int) -> list:
    from privface.privmetrics.streaming import plan_pieces

    return plan_pieces(sorted(folder.glob("*.parquet")), piece_rows=rows)


# --- command line ------------------------------------------------------------------------------

runner = CliRunner()
ARGS = ["--qi", ",".join(QI), "--sensitive", ",".join(SA), "--ordered", "age_band",
        "--k", "3", "--l", "2", "--t", "0.3", "--format", "json"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_cli_engine_dask_with_a_glob(tmp_path, df, suffix):
    pattern = ts.write_parts(df, tmp_path, suffix)
    memory = runner.invoke(app, ["audit", pattern, *ARGS])
    on_dask = runner.invoke(app, ["audit", pattern, "--engine", "dask", "--chunk-rows", "400",
                                  *ARGS])
    assert memory.exit_code == on_dask.exit_code == 1, on_dask.output
    assert json.loads(on_dask.output) == json.loads(memory.output)
    assert json.loads(on_dask.output)["source"] == pattern


def test_cli_engine_dask_on_the_demo_and_a_single_file(tmp_path):
    path = tmp_path / "faces.parquet"
    ts.faces().to_parquet(path)
    for args in (["--demo", "--k", "5"], [str(path), *ARGS]):
        memory = runner.invoke(app, ["audit", *args, "--format", "json"])
        on_dask = runner.invoke(app, ["audit", *args, "--engine", "dask", "--format", "json"])
        assert memory.exit_code == on_dask.exit_code, on_dask.output
        assert json.loads(on_dask.output) == json.loads(memory.output)


def test_cli_bad_input_with_dask(tmp_path, df):
    pattern = ts.write_parts(df, tmp_path, "parquet", parts=2)
    result = runner.invoke(app, ["audit", pattern, "--engine", "dask", "--qi", "Male,Yung"])
    assert result.exit_code == 2
    assert "part-0.parquet" in result.output and "did you mean Young" in result.output
    (tmp_path / "part-1.parquet").write_bytes(b"PAR1 not really")
    result = runner.invoke(app, ["audit", pattern, "--engine", "dask", "--qi", "Male"])
    assert result.exit_code == 2 and "part-1.parquet" in result.output
    result = runner.invoke(app, ["audit", pattern, "--engine", "spark", "--qi", "Male"])
    assert result.exit_code == 2 and "--engine must be memory or dask" in result.output
    result = runner.invoke(app, ["audit", pattern, "--qi", "Male", "--dask-address", "x:1"])
    assert result.exit_code == 2 and "--dask-address needs --engine dask" in result.output
