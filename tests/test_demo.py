"""The embedded demo table: CelebA's shape and statistics, without CelebA."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privface.privmetrics import demo
from privface.privmetrics.demo import DEMO_SEED, demo_stats, demo_table
from privface.base.errors import InputError
from privface.privmetrics.readers import read_celeba_attributes

STATS = demo_stats()
ATTRIBUTES = STATS["attributes"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    """A larger table for the statistical checks: 100,000 photos of 5,000 people."""
    return demo_table(100_000, images_per_identity=20, seed=1)


# --- shape ---------------------------------------------------------------------------------------


def test_default_table_is_shaped_like_read_celeba_attributes():
    table = demo_table()
    assert table.shape == (20000, 41)
    assert table.columns.tolist() == [*ATTRIBUTES, "identity"]
    assert table.index.name == "image_id" and table.index.dtype == object
    assert table.index[0] == "demo_000001.jpg" and table.index[-1] == "demo_020000.jpg"
    assert table.index.is_unique
    attributes = table[ATTRIBUTES]
    assert all(dtype == np.int8 for dtype in attributes.dtypes)
    assert set(np.unique(attributes.to_numpy())) == {-1, 1}
    assert table["identity"].dtype == np.int64
    assert table["identity"].nunique() == 1000 and table["identity"].min() == 1


def test_the_demo_has_celebas_40_attributes_in_order():
    assert len(ATTRIBUTES) == 40
    assert ATTRIBUTES[0] == "5_o_Clock_Shadow" and ATTRIBUTES[20] == "Male"
    assert ATTRIBUTES[-1] == "Young"


def test_deterministic_for_a_seed_and_the_default_seed_is_fixed():
    assert DEMO_SEED == 0
    pd.testing.assert_frame_equal(demo_table(3000, seed=7), demo_table(3000, seed=7))
    pd.testing.assert_frame_equal(demo_table(3000), demo_table(3000, seed=0))
    assert not demo_table(3000, seed=7).equals(demo_table(3000, seed=8))


@pytest.mark.parametrize("n,per", [(2000, 20), (1005, 10), (7, 1)])
def test_every_identity_has_images_per_identity_rows(n, per):
    sizes = demo_table(n, images_per_identity=per)["identity"].value_counts()
    people = -(-n // per)
    assert len(sizes) == people and sorted(sizes.index) == list(range(1, people + 1))
    # Only the last person may be short, when n is not a multiple of per.
    assert sorted(sizes.tolist()) == sorted([per] * (n // per) + ([n % per] if n % per else []))


def test_photos_of_one_person_are_spread_over_the_table():
    identity = demo_table(2000)["identity"].to_numpy()
    assert (np.diff(identity) != 0).mean() > 0.9  # not sorted in blocks


@pytest.mark.parametrize("kwargs", [{"n_images": 0}, {"n_images": -5}, {"n_images": 2.5},
                                    {"images_per_identity": 0}, {"n_images": True}])
def test_bad_sizes_are_input_errors(kwargs):
    with pytest.raises(InputError, match="must be a positive integer"):
        demo_table(**kwargs)


def test_large_tables_keep_names_of_one_width():
    names = demo._image_names(1_000_001)
    assert names[0] == "demo_0000001.jpg" and names[-1] == "demo_1000001.jpg"


# --- statistics ----------------------------------------------------------------------------------


def test_each_frequency_is_the_committed_one_within_sampling_error(big):
    n = len(big)
    per = 20
    p = np.array(STATS["frequency"])
    rho = np.array(STATS["intra_identity_correlation"])
    observed = (big[ATTRIBUTES].to_numpy() == 1).mean(axis=0)
    # Photos of one person are correlated: the variance of a share grows by the design effect
    # 1 + (per - 1) * icc, and the photo-level icc of a thresholded latent never exceeds the
    # latent rho. Four standard errors, plus the JSON's rounding.
    standard_error = np.sqrt(p * (1 - p) * (1 + (per - 1) * rho) / n)
    tolerance = 4 * standard_error + 5e-5
    too_far = {a: (o, f) for a, o, f, t in zip(ATTRIBUTES, observed, p, tolerance)
               if abs(o - f) > t}
    assert not too_far


def test_male_is_constant_within_almost_every_identity(big):
    constant = big.groupby("identity")[["Male", "Young", "Smiling"]].nunique() == 1
    share = constant.mean()
    # CelebA's own Male labels disagree for ~2% of people with ~3 photos; with 20 photos a
    # person has more chances of one disagreeing label.
    assert share["Male"] > 0.93
    # Identity-level attributes are shared, photo-level ones are not.
    assert share["Male"] > share["Young"] > share["Smiling"]
    assert share["Smiling"] < 0.2


def test_attributes_are_correlated_as_in_celeba(big):
    present = big[ATTRIBUTES].to_numpy() == 1
    phi = np.corrcoef(present.T.astype(np.float64))
    at = {name: i for i, name in enumerate(ATTRIBUTES)}
    assert phi[at["Male"], at["Wearing_Lipstick"]] < -0.5
    assert phi[at["Male"], at["No_Beard"]] < -0.3
    assert phi[at["Heavy_Makeup"], at["Wearing_Lipstick"]] > 0.5
    # Every strong latent correlation keeps its sign.
    latent = np.array(STATS["latent_correlation"])
    strong = np.abs(latent) > 0.5
    np.fill_diagonal(strong, False)
    assert (np.sign(phi[strong]) == np.sign(latent[strong])).all()


def test_the_latent_matrix_is_repaired_into_a_correlation_matrix():
    latent = np.array(STATS["latent_correlation"])
    # As measured it is not positive definite: mutually exclusive attributes have +-1 entries.
    assert np.linalg.eigvalsh(latent).min() < 0
    repaired = demo._nearest_correlation(latent)
    assert np.allclose(np.diag(repaired), 1.0)
    assert np.allclose(repaired, repaired.T)
    assert np.linalg.eigvalsh(repaired).min() > 0
    upper = np.triu_indices(len(latent), 1)
    assert np.abs(repaired - latent)[upper].mean() < 0.06


# --- the committed statistics --------------------------------------------------------------------


def test_stats_file_is_small_rounded_and_says_where_it_came_from():
    path = resources.files("privface.privmetrics").joinpath("data/celeba_attribute_stats.json")
    assert len(path.read_bytes()) < 32_000
    assert STATS["source"]["script"] == "benchmarks/make_demo_stats.py"
    assert "non-commercial research use only" in STATS["source"]["licence"]
    assert STATS["source"]["images"] == 20000
    assert "list_attr_celeba_first20k.txt" in STATS["source"]["files"]
    numbers = np.array([*STATS["frequency"], *STATS["intra_identity_correlation"],
                        *np.ravel(STATS["latent_correlation"])])
    assert np.allclose(numbers * 1e4, np.round(numbers * 1e4), atol=1e-6)
    latent = np.array(STATS["latent_correlation"])
    assert latent.shape == (40, 40) and np.allclose(latent, latent.T)
    assert len(STATS["frequency"]) == len(STATS["intra_identity_correlation"]) == 40


def test_demo_stats_returns_a_fresh_copy():
    demo_stats()["frequency"][0] = 99
    assert demo_stats()["frequency"][0] != 99


# --- against the real data -----------------------------------------------------------------------


@pytest.mark.realdata
def test_demo_columns_match_the_real_file(celeba_dir):
    real = read_celeba_attributes(celeba_dir / "list_attr_celeba_first20k.txt")
    table = demo_table(100)
    assert table.columns[:40].tolist() == real.columns.tolist()
    assert (table.dtypes.iloc[:40] == real.dtypes).all()
    assert table.index.name == real.index.name


@pytest.mark.realdata
@pytest.mark.slow
def test_committed_stats_are_what_the_script_computes(celeba_dir):
    spec = importlib.util.spec_from_file_location(
        "make_demo_stats", ROOT / "benchmarks" / "make_demo_stats.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    fresh = json.loads(script.dumps(script.compute_stats(celeba_dir.parent)))
    assert fresh == STATS
