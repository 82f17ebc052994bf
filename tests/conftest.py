"""Shared fixtures: where the real CelebA data lives, and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

DATA_VARIABLE = "PRIVFACE_DATA"


def _data_dir() -> Path | None:
    value = os.environ.get(DATA_VARIABLE)
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    """The shared CelebA folder (``$PRIVFACE_DATA/celeba``); skips the test when it is absent."""
    data = _data_dir()
    if data is None:
        pytest.skip(
            f"real CelebA data not available: set {DATA_VARIABLE} to the shared data folder "
            "(.ci/run points it at ../shared/data)"
        )
    celeba = data / "celeba"
    if not (celeba / "list_attr_celeba_first20k.txt").is_file():
        pytest.skip(f"{celeba} has no list_attr_celeba_first20k.txt")
    return celeba


@pytest.fixture(scope="session")
def ref():
    """tests/reference.py, the brute-force definitions (loaded once, as test_metrics_properties
    loads it: tests/ is not a package under --import-mode=importlib)."""
    import importlib.util
    import sys

    name = "privface_tests_reference"
    if name not in sys.modules:
        path = Path(__file__).with_name("reference.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
