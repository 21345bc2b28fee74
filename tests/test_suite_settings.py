"""The suite is repeatable: every Hypothesis test runs the same examples on every run and
machine, and no example fails for taking long on a loaded machine."""

import os

import pytest
from hypothesis import settings


@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE", "suite") != "suite", reason="exploring by hand"
)
def test_hypothesis_runs_a_fixed_seed_without_a_deadline_or_an_example_database():
    current = settings()

    assert current.derandomize
    assert current.deadline is None
    assert current.database is None
