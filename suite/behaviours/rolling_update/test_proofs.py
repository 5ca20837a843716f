"""Table-driven tests of the rolling update's bounds (its proofs.py), no cluster."""

import pytest

from suite.behaviours.rolling_update import proofs
from suite.podcount import Moment
from suite.samples import ContainerView, PodView

# -- rolling update ------------------------------------------------------------------------------


def moment(pods, ready, t=1.0):
    return Moment(t=t, wall=t, pods=pods, terminating=0, ready=ready, cause="x")


@pytest.mark.parametrize(
    ("moments", "problems"),
    [
        ([moment(4, 4), moment(5, 4), moment(5, 5), moment(4, 4)], []),
        ([], ["observed no pod counts"]),
        ([moment(6, 4)], ["6 pods > 4 replicas + maxSurge 1"]),
        ([moment(5, 3)], ["3 ready < 4 replicas - maxUnavailable 0"]),
        ([moment(6, 3)], ["6 pods >", "3 ready <"]),
    ],
)
def test_bound_problems(moments, problems):
    found = proofs.bound_problems(moments, 4, 1, 0)
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text


def view(name, image, *, ready=True, terminating=False):

    return PodView(
        name=name,
        phase="Running",
        ready=ready,
        terminating=terminating,
        containers=(ContainerView(name="c", state="running", image=image),),
    )


def rollout(old_gone=2, new_ready=2):
    histories = {}
    for i in range(2):
        views = [view(f"old{i}", "v1")]
        if i < old_gone:
            views += [view(f"old{i}", "v1", ready=False, terminating=True), None]
        histories[f"old{i}"] = views
    for i in range(2):
        histories[f"new{i}"] = [view(f"new{i}", "v2", ready=False)] + (
            [view(f"new{i}", "v2")] if i < new_ready else []
        )
    return histories


@pytest.mark.parametrize(
    ("histories", "problems"),
    [
        (rollout(), []),
        ({}, ["0 pods of v2 become Ready", "0 pods of v1 go"]),
        (rollout(old_gone=1), ["1 pods of v1 go"]),
        (rollout(new_ready=0), ["0 pods of v2 become Ready"]),
    ],
)
def test_rollout_seen_problems(histories, problems):
    found = proofs.rollout_seen_problems(histories, "v1", "v2", 2)
    assert len(found) == len(problems), found
    for want, text in zip(problems, found, strict=True):
        assert want in text
