"""A Deployment as the scenarios that roll one see it: its generation, and the deployment
controller taking a new one up, judged from the recorder's samples (what the cluster reported),
never from what was submitted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from suite import claims
from suite.recorder import Recorder
from suite.waiting import Done, Pending, Verdict, WaitFailed

DEPLOYMENT_CONTROLLER = "the deployment controller (kube-controller-manager)"
#: The deployment controller notes a new spec (status.observedGeneration) within milliseconds.
OBSERVED_S = 10.0


def generation(obj: Mapping[str, Any]) -> int:
    """metadata.generation of an object the API returned (0 when it has none)."""
    return int((obj.get("metadata") or {}).get("generation") or 0)


def last_sample(recorder: Recorder, app: str) -> dict[str, Any] | None:
    """The recorder's latest sample of deployment/`app`, or None before the first."""
    samples = recorder.samples("Deployment", app)
    return samples[-1] if samples else None


def wait_observed(
    recorder: Recorder, app: str, wanted: int, *, timeout_s: float = OBSERVED_S
) -> None:
    """Wait until the deployment controller took up generation `wanted` of deployment/`app`
    (status.observedGeneration, as recorded); a stopped controller shows here first, and the
    AssertionError names it."""

    def observed() -> Verdict:
        last = last_sample(recorder, app)
        seen = int(last["observed_generation"]) if last else 0
        return Done() if seen >= wanted else Pending(f"observedGeneration {seen}")

    try:
        recorder.wait_for(
            observed,
            timeout_s=timeout_s,
            what=f"deployment/{app}",
            expected=f"status.observedGeneration {wanted}",
        )
    except WaitFailed as error:
        raise AssertionError(
            f"{DEPLOYMENT_CONTROLLER} did not take up deployment/{app}'s generation {wanted} "
            f"within {timeout_s:.0f}s ({claims.message_of(error)})"
        ) from error
