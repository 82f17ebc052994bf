"""The base layer's JSON encoding and shared checks: one behaviour for every output."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privface.base.errors import InputError
from privface.base.jsonenc import json_value
from privface.base.validation import check_epsilon, check_seed, did_you_mean

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**62, 2**62), st.floats(), st.text(max_size=5),
    st.floats().map(np.float64), st.floats(width=32).map(np.float32),
    st.integers(-2**31, 2**31).map(np.int64), st.booleans().map(np.bool_),
    st.sampled_from([pd.NA, pd.NaT, np.datetime64("NaT")]))


@given(st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                    | st.tuples(inner, inner)
                    | st.dictionaries(st.integers(0, 5), inner, max_size=3), max_leaves=8))
def test_json_value_is_always_strict_json(value):
    encoded = json_value(value)
    # strict JSON: no NaN or Infinity tokens, which the old pass-through converters let out
    assert json.loads(json.dumps(encoded, allow_nan=False)) == encoded


@pytest.mark.parametrize("value, expected", [
    (float("inf"), "inf"), (-np.inf, "-inf"), (np.float32("nan"), None), (pd.NA, None),
    (np.int64(3), 3), (np.bool_(False), False), ((1, np.inf), [1, "inf"]), ("a", "a"),
])
def test_json_value_writes_infinities_as_strings_and_missing_as_null(value, expected):
    assert json_value(value) == expected and type(json_value(value)) is type(expected)


def test_shared_checks_name_what_was_expected():
    assert check_epsilon(0.5) == 0.5 and check_seed(None) is None
    with pytest.raises(InputError, match="pass epsilon=None to skip the DP step"):
        check_epsilon(math.inf, none_skips=True)
    with pytest.raises(InputError, match="column's epsilon must be a positive") as info:
        check_epsilon("1", "the column's epsilon", column="Male")
    assert info.value.column == "Male"
    with pytest.raises(InputError, match="non-negative integer"):
        check_seed(-1)
    assert did_you_mean("Eyeglases", ["Eyeglasses", "Male"]) == "; did you mean Eyeglasses?"


def test_a_written_file_is_flushed_then_its_folder_after_the_rename(tmp_path, monkeypatch):
    """The rename reaches the disk before atomic_write returns (a power cut keeps the order of
    a certificate written before its photo is moved in)."""
    import os

    from privface.base import files

    events = []
    real_replace, real_fsync, real_open = os.replace, os.fsync, os.open
    opened = {}

    def spy_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        opened[fd] = os.fspath(path)
        return fd

    def spy_replace(src, dst):
        events.append(("rename", os.fspath(dst)))
        real_replace(src, dst)

    def spy_fsync(fd):
        events.append(("fsync", opened.get(fd)))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "open", spy_open)
    monkeypatch.setattr(files.os, "replace", spy_replace)
    monkeypatch.setattr(files.os, "fsync", spy_fsync)
    target = tmp_path / "a.json"
    files.atomic_write(target, lambda tmp: tmp.write_text("{}"))
    renamed = events.index(("rename", str(target)))
    assert events[renamed - 1][0] == "fsync" and events[renamed - 1][1].endswith("a.json")
    assert events[renamed + 1] == ("fsync", str(tmp_path))
