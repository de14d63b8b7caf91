"""Fast-tier fixtures: a small generated data set and a correct warehouse built from it once per
session without a JVM (:mod:`fast.medallion`), and a guard that no fast test starts Spark."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fast import analytics, medallion
from fast import cdf_erasure as erasure

#: Generator scale and seed of the fast data set: about 2,400 lines, and still every kind of mess the
#: wrong answers need (CDC updates and deletes of clean rows, late records in a later batch, patient
#: changes and unchanged re-deliveries); seed 42 has no CDC delete below scale 0.08.
SCALE, SEED = 0.03, 13


@pytest.fixture(autouse=True)
def _no_spark() -> Iterator[None]:
    """A fast test must not import pyspark (it would need Java): fail the test that did."""
    before = "pyspark" in sys.modules
    yield
    assert before or "pyspark" not in sys.modules, "a fast-tier test imported pyspark"


@pytest.fixture(scope="session")
def fast_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw feeds generated at :data:`SCALE` and :data:`SEED` into a session folder."""
    from medilake_lab.datagen import generate

    data = tmp_path_factory.mktemp("fast-data")
    generate(data, scale=SCALE, seed=SEED)
    return data


@pytest.fixture(scope="session")
def silver_warehouse(tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Correct bronze and silver tables (labs 01 and 02 solved) for :func:`fast_data`. Read-only:
    copy it with :func:`copy_of` before changing anything."""
    warehouse = tmp_path_factory.mktemp("fast-silver")
    medallion.build_bronze(warehouse, fast_data)
    medallion.build_silver(warehouse, fast_data)
    return warehouse


def copy_of(warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of a session warehouse that one test may break."""
    return Path(shutil.copytree(warehouse, tmp_path / "wh"))


@pytest.fixture(scope="session")
def lab04_warehouse(silver_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Labs 01, 02 and 04 solved on the fast data (:mod:`fast.analytics`). Read-only (copy it)."""
    warehouse = Path(shutil.copytree(silver_warehouse, tmp_path_factory.mktemp("fast-l07-gold") / "wh"))
    analytics.solve(warehouse, fast_data)
    return warehouse


@pytest.fixture(scope="session")
def erased_warehouse(lab04_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Lab 07 solved on top (:mod:`fast.cdf_erasure`). Read-only (copy it)."""
    warehouse = Path(shutil.copytree(lab04_warehouse, tmp_path_factory.mktemp("fast-l07") / "wh"))
    erasure.solve(warehouse, fast_data)
    return warehouse
