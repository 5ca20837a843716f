"""Graceful termination's decisions on made-up recordings and answers."""

from __future__ import annotations

from types import SimpleNamespace

from suite.behaviours.graceful_termination import proofs
from suite.traffic import Answer


def _view(terminating: bool = False) -> SimpleNamespace:
    return SimpleNamespace(terminating=terminating)


def _answer(start: float, *, status: int | None = None, error: str | None = None) -> Answer:
    return Answer(
        seq=0,
        start=start,
        end=start + 0.01,
        status=status,
        ok=False,
        pod=None,
        version=None,
        error=error,
    )


def test_stop_to_gone_runs_from_the_first_terminating_view_to_the_deletion() -> None:
    history = [
        (0.0, 100.0, _view()),
        (1.0, 101.0, _view(True)),
        (2.0, 101.5, _view(True)),
        (3.0, 103.4, None),
    ]
    assert proofs.stop_to_gone(history) == 103.4 - 101.0


def test_stop_to_gone_is_none_without_both_ends() -> None:
    assert proofs.stop_to_gone([]) is None
    assert proofs.stop_to_gone([(0.0, 100.0, _view()), (1.0, 101.0, _view(True))]) is None
    # deleted without a terminating view first: when it was told to stop is not known
    assert proofs.stop_to_gone([(0.0, 100.0, _view()), (1.0, 101.0, None)]) is None


def test_graceful_pods_held_for_the_drain_pass() -> None:
    assert proofs.drain_problems({"a": 2.4, "b": 2.0}, 2) == []


def test_a_pod_gone_before_its_drain_names_the_kubelet() -> None:
    (problem,) = proofs.drain_problems({"a": 2.4, "b": 0.31}, 2)
    assert "b after 0.31s" in problem
    assert "the kubelet" in problem
    assert "a after" not in problem


def test_nothing_seen_proves_nothing() -> None:
    assert proofs.drain_problems({}, 2) == ["the recorder saw no pod of the graceful half stop"]
    (problem,) = proofs.drain_problems({"a": None, "b": 2.5}, 2)
    assert "did not see a go" in problem


def test_failure_kinds_count_statuses_and_errors_most_first() -> None:
    failed = [
        _answer(1.0, error="ConnectionRefusedError: [Errno 111]"),
        _answer(2.0, error="ConnectionRefusedError: [Errno 111]"),
        _answer(3.0, status=503),
        _answer(4.0),
    ]
    assert proofs.failure_kinds(failed) == {
        "ConnectionRefusedError": 2,
        "HTTP 503": 1,
        "no answer": 1,
    }
    assert proofs.failure_kinds([]) == {}


def test_judged_failures_start_at_the_startup_end() -> None:
    failed = [_answer(10.0), _answer(12.0), _answer(14.0)]
    assert [a.start for a in proofs.judged(failed, offset=1.0, since=12.0)] == [14.0]
    assert len(proofs.judged(failed, offset=0.0, since=None)) == 3
    assert proofs.judged([], offset=0.0, since=1.0) == []


def test_a_service_that_answered_is_routed() -> None:
    assert proofs.unrouted("a", listed=True, answered=True, seen="", within_s=30) is None


def test_an_unanswered_service_names_the_part_by_what_the_slice_showed() -> None:
    listed = proofs.unrouted("a", listed=True, answered=False, seen="9 sent", within_s=30)
    assert listed is not None
    assert "kube-proxy" in listed
    assert "9 sent" in listed
    empty = proofs.unrouted("a", listed=False, answered=False, seen="9 sent", within_s=30)
    assert empty is not None
    assert "EndpointSlice controller" in empty
