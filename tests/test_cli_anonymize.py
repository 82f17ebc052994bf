"""`privface anonymize` end to end: formats, identities, certificate, and `privface audit OUT`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from privface.cli.main import app
from privface.privmetrics import audit
from privface.privmetrics.readers import (join_identities, read_celeba_attributes,
                                          read_celeba_identities)

runner = CliRunner()


def anonymize(*args: str):
    return runner.invoke(app, ["anonymize", *map(str, args)])


def audit_cli(*args: str):
    return runner.invoke(app, ["audit", *map(str, args)])


def squash(text: str) -> str:
    """Output without whitespace: rich wraps long lines, even inside a path."""
    return "".join(text.split())


def certificate(out: Path) -> dict:
    return json.loads(Path(f"{out}.certificate.json").read_text(encoding="utf-8"))


def check_certificate(cert: dict, requirements: dict, *, epsilon=None, seed=None) -> None:
    assert cert["passed"] is True
    assert cert["requirements"] == requirements
    reached = cert["reached"]
    if "k" in requirements:
        assert reached["k_anonymity"] >= requirements["k"]
    if "l" in requirements:
        assert reached["l_diversity"] >= requirements["l"]
    if "t" in requirements:
        assert reached["t_closeness"] <= requirements["t"]
    loss = cert["information_loss"]
    for key in ("generalised_cells", "generalised_share", "suppressed_rows", "n_classes",
                "discernibility", "per_attribute"):
        assert key in loss
    dp = cert["differential_privacy"]
    if epsilon is None:
        assert dp["applied"] is False
    else:
        assert dp["epsilon"] == pytest.approx(epsilon)
        assert dp["seeded"] is (seed is not None)
        assert dp["seed"] == seed


# --------------------------------------------------------------------------- small CelebA files

ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Male", "Young", "Smiling"]


def _celeba_rows(n: int = 24, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.choice([1, -1], size=(n, len(ATTRS)))
    index = pd.Index([f"{i + 1:06d}.jpg" for i in range(n)], name="image_id")
    return pd.DataFrame(values, index=index, columns=ATTRS)


def write_celeba(path: Path, table: pd.DataFrame) -> Path:
    lines = [f"{len(table)}", " ".join(table.columns) + " "]
    for image, row in table.iterrows():
        lines.append(image + " " + " ".join(f"{v:2d}" for v in row))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def write_identities(path: Path, table: pd.DataFrame, n_ids: int = 6) -> Path:
    ids = [(i * 7) % n_ids + 1 for i in range(len(table))]
    path.write_bytes("".join(f"{img} {i}\r\n" for img, i in zip(table.index, ids)).encode())
    return path


@pytest.fixture
def celeba_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "celeba"
    folder.mkdir()
    write_celeba(folder / "list_attr_celeba.txt", _celeba_rows())
    return folder


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_demo_round_trip(tmp_path):
    out = tmp_path / "OUT.txt"
    result = anonymize("--demo", "--k", "5", "--out", out)
    assert result.exit_code == 0, result.output
    assert "privface anonymize: wrote" in result.output
    table = read_celeba_attributes(out)  # CelebA layout; "*" written as 0
    assert table.shape == (20_000, 40)
    assert set(np.unique(table.to_numpy())) <= {-1, 0, 1}
    assert "identity" not in table.columns
    cert = certificate(out)
    check_certificate(cert, {"k": 5})
    assert cert["n_records"] == 20_000
    assert cert["information_loss"]["generalised_cells"] == int((table.to_numpy() == 0).sum())
    assert audit(table, list(table.columns), k=5).passed
    back = audit_cli(out, "--k", "5")
    assert back.exit_code == 0, back.output
    assert back.output.startswith("privface audit: PASSED")


def test_celeba_k_only_needs_no_identities(celeba_folder, tmp_path):
    src = celeba_folder / "list_attr_celeba.txt"
    out = tmp_path / "anon.txt"
    result = anonymize(src, "--k", "3", "--out", out)
    assert result.exit_code == 0, result.output
    table = read_celeba_attributes(out)
    assert list(table.columns) == ATTRS
    assert table.index.equals(read_celeba_attributes(src).index)
    raw = out.read_bytes()
    assert raw.startswith(b"24\r\n") and raw.endswith(b"\r\n")
    cert = certificate(out)
    check_certificate(cert, {"k": 3})
    assert cert["quasi_identifiers"] == ATTRS and cert["sensitive"] == []
    cells = cert["information_loss"]["generalised_cells"]
    assert cells == int((table.to_numpy() == 0).sum()) > 0  # this table needs generalising
    assert audit_cli(out, "--k", "3").exit_code == 0


def test_celeba_l_without_identities_exits_2_naming_the_options(celeba_folder, tmp_path):
    src = celeba_folder / "list_attr_celeba.txt"
    out = tmp_path / "anon.txt"
    before = files_in(tmp_path)
    for req in (["--l", "2"], ["--t", "0.5"], ["--k", "2", "--l", "2"]):
        result = anonymize(src, *req, "--out", out)
        assert result.exit_code == 2, result.output
        flat = squash(result.output)
        assert "--sensitive" in flat and "--identities" in flat
    assert files_in(tmp_path) == before
    assert files_in(celeba_folder) == {"list_attr_celeba.txt"}


def test_celeba_joins_identity_file_found_beside_it(celeba_folder, tmp_path):
    src = celeba_folder / "list_attr_celeba.txt"
    ids = write_identities(celeba_folder / "identity_CelebA.txt", read_celeba_attributes(src))
    out = tmp_path / "anon" / "x.txt"
    out.parent.mkdir()
    result = anonymize(src, "--k", "3", "--l", "2", "--t", "0.6", "--out", out)
    assert result.exit_code == 0, result.output
    squashed = squash(result.output)
    assert f"usingidentitiesfrom{ids}" in squashed and "foundbeside" in squashed
    table = read_celeba_attributes(out)
    assert list(table.columns) == ATTRS  # identities are not written into the attribute layout
    cert = certificate(out)
    check_certificate(cert, {"k": 3, "l": 2, "t": 0.6})
    assert cert["sensitive"] == ["identity"]
    # The library agrees once identities are re-joined...
    joined = join_identities(table, read_celeba_identities(ids))
    assert audit(joined, ATTRS, "identity", k=3, l=2, t=0.6).passed
    # ...and so does `privface audit` with them.
    back = audit_cli(out, "--identities", ids, "--k", "3", "--l", "2", "--t", "0.6")
    assert back.exit_code == 0, back.output
    # Without identities the audit cannot check l (no identity file beside OUT).
    assert audit_cli(out, "--l", "2").exit_code == 2


def test_celeba_with_explicit_identities_and_epsilon(celeba_folder, tmp_path):
    src = celeba_folder / "list_attr_celeba.txt"
    ids = write_identities(tmp_path / "ids.txt", read_celeba_attributes(src))
    out = tmp_path / "x.txt"
    result = anonymize(src, "--identities", ids, "--k", "3", "--l", "2", "--epsilon", "4",
                       "--seed", "11", "--out", out)
    assert result.exit_code == 0, result.output
    assert "epsilon4spent(seeded)" in squash(result.output)
    cert = certificate(out)
    check_certificate(cert, {"k": 3, "l": 2}, epsilon=4.0, seed=11)
    assert set(cert["differential_privacy"]["per_attribute"]) == set(ATTRS)
    back = audit_cli(out, "--identities", ids, "--k", "3", "--l", "2")
    assert back.exit_code == 0, back.output
    # Same seed, same file.
    again = tmp_path / "y.txt"
    assert anonymize(src, "--identities", ids, "--k", "3", "--l", "2", "--epsilon", "4",
                     "--seed", "11", "--out", again).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_epsilon_without_seed_is_recorded_unseeded(celeba_folder, tmp_path):
    out = tmp_path / "x.txt"
    result = anonymize(celeba_folder / "list_attr_celeba.txt", "--k", "2", "--epsilon", "3",
                       "--out", out)
    assert result.exit_code == 0, result.output
    check_certificate(certificate(out), {"k": 2}, epsilon=3.0, seed=None)


# --------------------------------------------------------------------------- CSV and Parquet


def _mixed_table(n: int = 30, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "Male": rng.choice([1, -1], n),
        "Young": rng.choice([1, -1], n),
        "hair": rng.choice(["black", "blond", "brown"], n),
        "diagnosis": rng.choice(["flu", "cold", "none", "covid"], n),
    })


def test_csv_in_csv_out_then_audit(tmp_path):
    src = tmp_path / "faces.csv"
    _mixed_table().to_csv(src, index=False)
    out = tmp_path / "anon.csv"
    result = anonymize(src, "--qi", "Male,Young", "--qi", "hair", "--sensitive", "diagnosis",
                       "--k", "4", "--l", "2", "--t", "0.5", "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)  # really CSV, same columns
    assert list(table.columns) == ["Male", "Young", "hair", "diagnosis"]
    assert len(table) == 30
    assert (table["diagnosis"] == _mixed_table()["diagnosis"]).all()
    cert = certificate(out)
    check_certificate(cert, {"k": 4, "l": 2, "t": 0.5})
    assert cert["quasi_identifiers"] == ["Male", "Young", "hair"]
    back = audit_cli(out, "--qi", "Male,Young,hair", "--sensitive", "diagnosis",
                     "--k", "4", "--l", "2", "--t", "0.5")
    assert back.exit_code == 0, back.output


def test_csv_default_output_name_is_beside_the_working_directory(tmp_path, monkeypatch):
    src = tmp_path / "faces.csv"
    _mixed_table().to_csv(src, index=False)
    monkeypatch.chdir(tmp_path)
    result = anonymize(src, "--qi", "Male,Young,hair", "--k", "3")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "faces.anonymized.csv").is_file()
    assert (tmp_path / "faces.anonymized.csv.certificate.json").is_file()


def test_parquet_in_parquet_out_then_audit(tmp_path):
    pytest.importorskip("pyarrow")
    src = tmp_path / "faces.parquet"
    table = _mixed_table()
    table[["Male", "Young"]] = table[["Male", "Young"]].astype(str)  # str QIs: "*" fits
    table.to_parquet(src)
    out = tmp_path / "anon.parquet"
    result = anonymize(src, "--qi", "Male,Young,hair", "--sensitive", "diagnosis", "--k", "4",
                       "--l", "2", "--out", out)
    assert result.exit_code == 0, result.output
    back_table = pd.read_parquet(out)
    assert list(back_table.columns) == list(table.columns) and len(back_table) == 30
    check_certificate(certificate(out), {"k": 4, "l": 2})
    back = audit_cli(out, "--qi", "Male,Young,hair", "--sensitive", "diagnosis",
                     "--k", "4", "--l", "2")
    assert back.exit_code == 0, back.output


def test_parquet_with_int_qis_partly_generalised(tmp_path):
    """Int QIs where some classes keep their value and others get "*": the output column mixes
    ints and "*", which the Parquet writer must still store."""
    pytest.importorskip("pyarrow")
    src = tmp_path / "faces.parquet"
    pd.DataFrame({"Male": [1, 1, 1, 1, -1, -1, -1, -1],
                  "Young": [1, 1, 1, 1, 1, -1, 1, -1],
                  "Hat": [1, -1, 1, -1, 1, 1, -1, -1]}).to_parquet(src)
    out = tmp_path / "anon.parquet"
    result = anonymize(src, "--qi", "Male,Young,Hat", "--k", "2", "--out", out)
    assert result.exit_code == 0, result.output
    back = audit_cli(out, "--qi", "Male,Young,Hat", "--k", "2")
    assert back.exit_code == 0, back.output


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("args, needle", [
    (["--qi", "Male,Young"], "at least one requirement"),
    (["--qi", "Male,nope", "--k", "2"], "nope"),
    (["--qi", "Male", "--sensitive", "nope", "--l", "2"], "nope"),
    (["--qi", "Male,Young", "--sensitive", "diagnosis", "--l", "1000"], "l=1000"),
    (["--qi", "Male,Young", "--k", "1000"], "k=1000"),
    (["--qi", "Male,Young", "--k", "0"], "k"),
    (["--qi", "Male,Young", "--t", "2"], "t"),
    (["--qi", "Male,Young", "--l", "2"], "--sensitive"),
    (["--k", "2"], "--qi"),  # a CSV has no default QIs
    (["--qi", "Male", "--k", "2", "--epsilon", "0"], "epsilon"),
    (["--qi", "Male", "--k", "2", "--input-format", "xls"], "--input-format"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, needle):
    src = tmp_path / "faces.csv"
    _mixed_table().to_csv(src, index=False)
    out = tmp_path / "anon.csv"
    before = files_in(tmp_path)
    result = anonymize(src, *args, "--out", out)
    assert result.exit_code == 2, result.output
    assert squash(needle) in squash(result.output)
    assert files_in(tmp_path) == before  # no output, no certificate, no temporary file


def test_missing_input_and_demo_with_data_exit_2(tmp_path):
    assert anonymize("--k", "2", "--out", tmp_path / "x.txt").exit_code == 2
    assert anonymize(tmp_path / "missing.txt", "--k", "2", "--out", tmp_path / "x.txt"
                     ).exit_code == 2
    src = write_celeba(tmp_path / "a.txt", _celeba_rows())
    assert anonymize(src, "--demo", "--k", "2", "--out", tmp_path / "x.txt").exit_code == 2
    assert not (tmp_path / "x.txt").exists()


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_celeba_done_when(celeba_dir, tmp_path):
    attrs = celeba_dir / "list_attr_celeba_first20k.txt"
    ids = celeba_dir / "identity_CelebA.txt"
    out = tmp_path / "x"
    result = anonymize(attrs, "--identities", ids, "--k", "5", "--l", "2", "--t", "0.2",
                       "--out", out)
    assert result.exit_code == 0, result.output
    cert = certificate(out)
    check_certificate(cert, {"k": 5, "l": 2, "t": 0.2})
    assert cert["n_records"] == 20_000 and len(cert["quasi_identifiers"]) == 40
    back = audit_cli(out, "--identities", ids, "--k", "5", "--l", "2", "--t", "0.2")
    assert back.exit_code == 0, back.output
    assert back.output.startswith("privface audit: PASSED")
