"""Fixtures of the behaviours' view tests (each folder's test_view.py): report documents made up
after real runs (suite/tests/data), and their page."""

import pytest

from suite.tests import pages
from suite.tests.data import runs


@pytest.fixture(scope="module")
def full():
    """A report.json document of a whole run, every behaviour passed."""
    return runs.full_run()


@pytest.fixture(scope="module")
def html(full):
    """Its page."""
    return pages.render(full)


@pytest.fixture(scope="module")
def sample():
    """A rolling update and an infected pod from real runs, trimmed (suite/tests/data)."""
    return pages.sample()
