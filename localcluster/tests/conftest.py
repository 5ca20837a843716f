"""Fixtures shared by the local cluster's tests."""

from __future__ import annotations

import os

import pytest

from localcluster import build
from suite.settings import running_in_ci


@pytest.fixture
def image_checks(request: pytest.FixtureRequest) -> None:
    """Skip (with the reason) unless this run does the image checks: `--cluster=local` as root,
    or KUBE_ALIVE_IMAGE_CHECKS=1 (see build.image_checks_skip_reason)."""
    reason = build.image_checks_skip_reason(
        request.config.getoption("kube_alive_cluster", None),
        os.geteuid(),
        running_in_ci(),
        dict(os.environ),
    )
    if reason is not None:
        pytest.skip(reason)
