"""deployments: a Deployment's generation and the controller taking it up, from the recorder."""

from __future__ import annotations

import pytest

from suite import deployments
from suite.waiting import Done, Verdict


class FakeRecorder:
    def __init__(self, samples):
        self._samples = samples

    def samples(self, kind, name=None):
        assert (kind, name) == ("Deployment", "incver")
        return self._samples

    def wait_for(self, check, *, timeout_s, what, expected):
        from suite.waiting import WaitFailed

        verdict: Verdict = check()
        if isinstance(verdict, Done):
            return verdict.value
        raise WaitFailed(f"{what}: expected {expected}, saw {verdict} after {timeout_s:.0f}s")


def test_generation_reads_the_metadata():
    assert deployments.generation({"metadata": {"generation": 3}}) == 3
    assert deployments.generation({}) == 0


def test_wait_observed_passes_once_the_controller_took_the_generation_up():
    recorder = FakeRecorder([{"observed_generation": 1}, {"observed_generation": 2}])
    deployments.wait_observed(recorder, "incver", 2)  # type: ignore[arg-type]
    assert deployments.last_sample(recorder, "incver") == {"observed_generation": 2}  # type: ignore[arg-type]


def test_wait_observed_names_the_deployment_controller_when_it_never_does():
    recorder = FakeRecorder([{"observed_generation": 1}])
    with pytest.raises(AssertionError, match=r"deployment controller .* generation 2 within 10s"):
        deployments.wait_observed(recorder, "incver", 2)  # type: ignore[arg-type]
    assert deployments.last_sample(FakeRecorder([]), "incver") is None  # type: ignore[arg-type]
