"""suite.podcount: the one replay of pod changes behind the recorder's moments and the report's
pod counts."""

from suite.podcount import Change, Reading, replay

READING = Reading(
    counted=lambda s: s["app"] == "web",
    terminating=lambda s: s.get("terminating", False),
    ready=lambda s: s.get("ready", False),
    words=lambda s: "Ready" if s.get("ready") else "Pending",
)


def state(app="web", *, ready=False, terminating=False):
    return {"app": app, "ready": ready, "terminating": terminating}


def test_a_moment_after_every_change_that_counts():
    changes = [
        Change(1.0, 101.0, "a", state(), 1),
        Change(2.0, 102.0, "a", state(ready=True), 2),
        Change(3.0, 103.0, "other", state("db", ready=True), 3),  # not counted: no moment
        Change(4.0, 104.0, "a", state(ready=True, terminating=True), 4),
        Change(5.0, 105.0, "a", None, 5),
        Change(6.0, 106.0, "gone", None, 6),  # never counted: no moment
    ]
    moments = replay(changes, READING)
    assert [(m.t, m.pods, m.ready, m.terminating) for m in moments] == [
        (1.0, 1, 0, 0),
        (2.0, 1, 1, 0),
        (4.0, 0, 0, 1),
        (5.0, 0, 0, 0),
    ]
    assert [m.cause for m in moments] == ["a Pending", "a Ready", "a Ready", "a deleted"]
    assert moments[2].total == 1


def test_a_group_applies_as_one_change():
    # a relist (or one instant): a and b arrive together, and c's delete with them
    changes = [
        Change(1.0, 101.0, "c", state(ready=True), "first"),
        Change(2.0, 102.0, "a", state(ready=True), "relist"),
        Change(2.0, 102.0, "b", state(ready=True), "relist"),
        Change(2.0, 102.0, "c", None, "relist"),
    ]
    moments = replay(changes, READING)
    assert [(m.t, m.pods, m.ready) for m in moments] == [(1.0, 1, 1), (2.0, 2, 2)]


def test_nothing_recorded_is_no_moment():
    assert replay([], READING) == []
