"""The crash torture of ``benchmarks/torture.py`` with a few kills: an import and a projection follower killed with SIGKILL
at random moments and started again end as if nothing had happened (``make torture`` runs 50 kills each).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.import_speed import fresh_database
from benchmarks.torture import follower_torment, import_torment
from tests.conftest import SERVER_URL

pytestmark = pytest.mark.slow
KILLS = 3
PATIENTS = 12 * KILLS  # 37 lines each: enough that the import is still at work at the last kill


@pytest.fixture
def clean_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend, for the clean import to compare against."""
    with fresh_database(None if database_url.startswith("sqlite") else SERVER_URL, tmp_path, "clean") as url:
        yield url


@pytest.fixture
def rng() -> random.Random:
    seed = random.randrange(2**32)
    print(f"random seed {seed}")  # shown with a failure's captured output
    return random.Random(seed)


def test_an_import_killed_at_random_moments_ends_equal_to_a_clean_import(
    database_url: str, clean_url: str, tmp_path: Path, rng: random.Random
) -> None:
    outcome = import_torment(database_url, clean_url, tmp_path, patients=PATIENTS, kills=KILLS, rng=rng, backend="test")
    assert outcome.kills.kills == KILLS, outcome.notes
    assert outcome.kills.mid_work >= 1
    assert (outcome.lost, outcome.duplicated, outcome.out_of_order) == (0, 0, False)
    assert outcome.events == PATIENTS * 38 + PATIENTS // 3  # 37 lines a patient, an assignment each, an opening per stratum of 3
    assert outcome.read_models_equal_rebuild is True, outcome.notes
    assert outcome.verified is True


def test_a_projection_follower_killed_at_random_moments_leaves_read_models_equal_to_a_rebuild(
    database_url: str, tmp_path: Path, rng: random.Random
) -> None:
    outcome = follower_torment(database_url, tmp_path, kills=KILLS, rng=rng, backend="test")
    assert outcome.kills.kills == KILLS
    assert outcome.kills.mid_work >= 1
    assert outcome.events > 0
    assert outcome.read_models_equal_rebuild is True, outcome.notes
    assert outcome.verified is True
