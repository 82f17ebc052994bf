"""Bad input to the command line: exit 2 with a message, never a traceback or a silent guess.

And the converse: a genuine bug is not dressed up as bad input.
"""

from __future__ import annotations


import pandas as pd
import pytest
from typer.testing import CliRunner

from privface.cli.main import app
from privface.privmetrics.errors import InputError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def squash(text: str) -> str:
    """Output without whitespace: rich wraps long lines."""
    return "".join(text.split())


@pytest.mark.parametrize("column", ["tags", "props"])
@pytest.mark.parametrize("engine", [[], ["--chunk-rows", "1"]])
def test_list_or_struct_column_as_qi_exits_2_naming_it(tmp_path, column, engine):
    pytest.importorskip("pyarrow")
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"tags": [[1, 2], [3]], "props": [{"a": 1}, {"a": 2}], "x": [1, 2]}
                 ).to_parquet(path)
    result = invoke("audit", path, "--qi", column, *engine)
    assert result.exit_code == 2, result.output
    assert f"column '{column}'" in result.output and "list and struct" in result.output


def test_a_bug_raising_valueerror_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    """Only InputError (and OSError on a file) mean exit 2; anything else is a bug to show."""
    import privface.cli.photos as photos
    import privface.pipeline as pipeline

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(photos, "require_faces_extra", lambda: None)
    monkeypatch.setattr(pipeline, "anonymize_photos", broken)
    (tmp_path / "photos").mkdir()
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code != 2
    assert isinstance(result.exception, ValueError)
    assert not isinstance(result.exception, InputError)

    monkeypatch.setattr(pipeline, "anonymize_photos", lambda *a, **k: (_ for _ in ()).throw(
        TypeError("another bug")))
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code != 2 and isinstance(result.exception, TypeError)


def test_bad_input_in_a_photo_run_still_exits_2(tmp_path, monkeypatch):
    import privface.cli.photos as photos
    import privface.pipeline as pipeline

    def refuses(*args, **kwargs):
        raise InputError("no such thing", file="x.jpg")

    monkeypatch.setattr(photos, "require_faces_extra", lambda: None)
    monkeypatch.setattr(pipeline, "anonymize_photos", refuses)
    (tmp_path / "photos").mkdir()
    result = invoke("anonymize", tmp_path / "photos", "--out", tmp_path / "out", "--k", "2")
    assert result.exit_code == 2 and "x.jpg: no such thing" in result.output


@pytest.mark.parametrize("params, needle", [
    ({"radius": 3}, "generator 'blur' has no parameter 'radius'; its parameters: sigma"),
    ({"sigma": -1}, "sigma must be positive"),
])
def test_generator_parameters_are_input_errors(params, needle):
    from privface.generators.registry import load_generator

    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        load_generator("blur", **params)
    with pytest.raises(InputError, match="unknown generator"):
        load_generator("nope")
