import re
import threading

import pytest

from suite import waiting, waits
from suite.kube import PODS, KubeError, Latency
from suite.tests.fakes import Collection, FakeKube, FakeStream, deployment, event, pod
from suite.waiting import Done, Failed, Pending

IMAGE = "localhost/kube-alive/workloads:v1"


def test_message_has_what_where_seen_time_expected_event_and_hint():
    text = waiting.format_message(
        "deployment/getip",
        "ka-3f2a-lb",
        "2/4 ready",
        60.2,
        "every replica Ready",
        timeout_s=60,
        last_event="ImagePullBackOff (pod/getip-1: Back-off pulling image)",
        hint="kubectl -n ka-3f2a-lb describe deployment/getip",
    )
    assert text == (
        "deployment/getip in ka-3f2a-lb: 2/4 ready after 60s (expected every replica Ready within "
        "60s); last event: ImagePullBackOff (pod/getip-1: Back-off pulling image); "
        "see: kubectl -n ka-3f2a-lb describe deployment/getip"
    )


def labelled(name, **kwargs):
    return pod(name, labels={"app.kubernetes.io/name": "app"}, **kwargs)


def test_deployment_verdict_done_only_when_everything_is_rolled_out():
    assert isinstance(waits.deployment_verdict(deployment(), []), Done)
    pending = waits.deployment_verdict(deployment(ready=2), [])
    assert pending == Pending("2/4 ready")
    rolling = waits.deployment_verdict(deployment(ready=4, updated=2, total=5), [])
    assert rolling == Pending("4/4 ready, 2/4 updated, 5 replicas")
    unobserved = waits.deployment_verdict(deployment(generation=2, observed=1), [])
    assert isinstance(unobserved, Pending)
    assert "generation 2 not yet observed" in unobserved.seen
    assert "is kube-controller-manager running?" in unobserved.seen


def test_deployment_verdict_points_at_the_scheduler_when_pods_have_no_node():
    unscheduled = labelled("app-1", ready=False, phase="Pending")
    del unscheduled["spec"]["nodeName"]
    verdict = waits.deployment_verdict(deployment(ready=3), [labelled("app-0"), unscheduled])
    assert verdict == Pending(
        "3/4 ready, 1 pod(s) not scheduled on a node (is kube-scheduler running?)"
    )
    assert waits.deployment_verdict(None, []) == Pending("not found")


def test_deployment_verdict_fails_early_on_image_pull_errors_naming_image_and_hint():
    verdict = waits.deployment_verdict(
        deployment(ready=0),
        [labelled("app-1", ready=False, waiting="ImagePullBackOff")],
        image_hint="pass --image-registry",
    )
    assert isinstance(verdict, Failed)
    assert (
        "pod/app-1: ImagePullBackOff for image 'localhost/kube-alive/workloads:v1'"
        in verdict.reason
    )
    assert verdict.reason.endswith("pass --image-registry")


def test_deployment_verdict_fails_on_crash_loops_and_replica_failures():
    crash = waits.deployment_verdict(
        deployment(ready=0),
        [labelled("app-1", ready=False, waiting="CrashLoopBackOff", last=("Error", 3))],
    )
    assert isinstance(crash, Failed)
    assert "CrashLoopBackOff (last exit code 3, Error)" in crash.reason
    failure = waits.deployment_verdict(
        deployment(
            ready=0,
            conditions=[
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "message": 'pods "x" is forbidden: violates PodSecurity',
                }
            ],
        ),
        [],
    )
    assert isinstance(failure, Failed)
    assert "PodSecurity" in failure.reason


def test_terminating_pods_do_not_fail_the_wait():
    verdict = waits.deployment_verdict(
        deployment(), [labelled("old", waiting="CrashLoopBackOff", deleting=True)]
    )
    assert isinstance(verdict, Done)


def _deployment_kube(deploy_items, pod_items, *, deploy_watches=(), pod_watches=(), events=()):
    deployments = Collection(deploy_items)
    deployments.watches = list(deploy_watches)
    pods = Collection(pod_items)
    pods.watches = list(pod_watches)
    kube = (
        FakeKube()
        .on("GET", "/apis/apps/v1/namespaces/ns/deployments/app", deploy_items[0])
        .on("GET", "/apis/apps/v1/namespaces/ns/deployments", deployments.handler)
        .on("GET", "/api/v1/namespaces/ns/pods", pods.handler)
        .on("GET", "/api/v1/namespaces/ns/events", {"items": list(events), "metadata": {}})
    )
    return kube, deployments, pods


def test_wait_deployment_ready_returns_once_a_watch_event_completes_it():
    kube, _, _ = _deployment_kube(
        [deployment(ready=3)],
        [labelled("app-1")],
        deploy_watches=[FakeStream([event("MODIFIED", deployment(ready=4))])],
    )
    result = waits.wait_deployment_ready(kube, "ns", "app", timeout_s=5)
    assert result["status"]["readyReplicas"] == 4
    selectors = [q.get("labelSelector") for m, p, q, b in kube.calls if p.endswith("/pods")]
    assert "app.kubernetes.io/name=app" in selectors


def test_wait_deployment_ready_fails_early_when_a_pod_cannot_pull():
    kube, _, _ = _deployment_kube(
        [deployment(ready=0)],
        [labelled("app-1", ready=False)],
        pod_watches=[
            FakeStream([event("MODIFIED", labelled("app-1", ready=False, waiting="ErrImagePull"))])
        ],
    )
    with pytest.raises(waiting.WaitFailed) as failure:
        waits.wait_deployment_ready(
            kube, "ns", "app", timeout_s=30, image_hint="use --image-registry"
        )
    message = str(failure.value)
    assert message.startswith("deployment/app in ns: 0/4 ready; pod/app-1: ErrImagePull for image")
    assert "use --image-registry" in message
    assert not isinstance(failure.value, waiting.WaitTimeout)


def test_wait_deployment_ready_times_out_with_the_house_message_and_last_event():
    events = [
        {
            "reason": "Scheduled",
            "message": "assigned",
            "lastTimestamp": "2025-01-01T00:00:01Z",
            "involvedObject": {"kind": "Pod", "name": "app-1"},
        },
        {
            "reason": "BackOff",
            "message": "Back-off pulling image",
            "lastTimestamp": "2025-01-01T00:00:05Z",
            "involvedObject": {"kind": "Pod", "name": "app-1"},
        },
    ]
    kube, _, _ = _deployment_kube([deployment(ready=2)], [labelled("app-1")], events=events)
    with pytest.raises(waiting.WaitTimeout) as timeout:
        waits.wait_deployment_ready(kube, "ns", "app", timeout_s=0.3)
    assert re.fullmatch(
        r"deployment/app in ns: 2/4 ready after 0s "
        r"\(expected every replica updated and Ready within 0s\); "
        r"last event: BackOff \(pod/app-1: Back-off pulling image\); "
        r"see: kubectl -n ns describe deployment/app",
        str(timeout.value),
    )


def test_wait_relists_after_410_and_sees_the_new_state():
    pods = Collection([labelled("a", restarts=0)])
    pods.watches = [
        FakeStream(['{"type": "ERROR", "object": {"code": 410, "message": "too old"}}'])
    ]

    def handler(method, path, query, body):
        if not query.get("watch") and pods.lists == 1:
            pods.items = [labelled("a", restarts=1)]  # changed while the watch was gone
        return pods.handler(method, path, query, body)

    kube = FakeKube().on("GET", "/api/v1/namespaces/ns/pods", handler)
    result = waits.wait_pod(
        kube,
        "ns",
        "a",
        lambda p: (
            Done(p) if p["status"]["containerStatuses"][0]["restartCount"] > 0 else Pending("0")
        ),
        timeout_s=5,
        expected="a restart",
    )
    assert result["status"]["containerStatuses"][0]["restartCount"] == 1
    assert pods.lists == 2


def test_wait_pod_fails_when_the_pod_is_deleted():
    pods = Collection([labelled("a")])
    pods.watches = [FakeStream([event("DELETED", labelled("a"))])]
    kube = (
        FakeKube()
        .on("GET", "/api/v1/namespaces/ns/pods", pods.handler)
        .on("GET", "/api/v1/namespaces/ns/events", {"items": []})
    )
    with pytest.raises(waiting.WaitFailed, match="pod/a in ns: the pod is gone"):
        waits.wait_pod(kube, "ns", "a", lambda p: Pending("x"), timeout_s=5, expected="never")


def test_wait_says_when_the_api_never_answered():
    kube = FakeKube().on("GET", "/api/v1/namespaces/ns/pods", KubeError(0, "ConnectionRefused"))
    with pytest.raises(waiting.WaitTimeout, match="the API did not answer: 0 ConnectionRefused"):
        waits.wait_pod(kube, "ns", "a", lambda p: Done(), timeout_s=0.5, expected="anything")


def test_retry_transient_retries_then_succeeds():
    attempts = []

    def action():
        attempts.append(1)
        if len(attempts) < 3:
            raise KubeError(503, "Service Unavailable", '{"message": "no endpoints available"}')
        return "ok"

    assert (
        waiting.retry_transient(
            action,
            timeout_s=10,
            what="service/prober",
            where="ns",
            expected="an answer",
            max_backoff_s=0.01,
        )
        == "ok"
    )
    assert len(attempts) == 3


def test_retry_transient_does_not_retry_real_errors():
    attempts = []

    def action():
        attempts.append(1)
        raise KubeError(403, "Forbidden")

    with pytest.raises(KubeError):
        waiting.retry_transient(action, timeout_s=10, what="x", where="y", expected="z")
    assert len(attempts) == 1


def test_retry_transient_times_out_naming_the_last_error():
    def action():
        raise ConnectionRefusedError("refused")

    with pytest.raises(
        waiting.WaitTimeout, match=r"service/prober in ns: last error refused after 0s"
    ):
        waiting.retry_transient(
            action,
            timeout_s=0.2,
            what="service/prober",
            where="ns",
            expected="an answer",
            max_backoff_s=0.01,
        )


def test_wait_condition_wakes_on_notify():
    lock = threading.Condition()
    box = []

    def producer():
        with lock:
            box.append(1)
            lock.notify_all()

    threading.Timer(0.05, producer).start()
    value = waiting.wait_condition(
        lock,
        lambda: Done(len(box)) if box else Pending("empty"),
        timeout_s=5,
        what="box",
        where="here",
        expected="an item",
    )
    assert value == 1
    with pytest.raises(waiting.WaitTimeout, match="box in here: empty after 0s"):
        waiting.wait_condition(
            threading.Condition(),
            lambda: Pending("empty"),
            timeout_s=0.05,
            what="box",
            where="here",
            expected="an item",
        )


def test_deadline():
    now = [100.0]
    deadline = waiting.Deadline(10, clock=lambda: now[0])
    now[0] = 104.0
    assert deadline.elapsed() == 4.0
    assert deadline.remaining() == 6.0
    now[0] = 111.0
    assert deadline.expired
    assert deadline.remaining() == 0.0


class SlowKube(FakeKube):
    """A FakeKube whose answers take `seconds` on a fake clock its Latency reads."""

    def __init__(self, seconds):
        super().__init__()
        self.t = 0.0
        self.seconds = seconds
        self.latency = Latency(lambda: self.t)

    def request(self, method, path, **kwargs):
        token = self.latency.begin()
        self.t += self.seconds
        try:
            return super().request(method, path, **kwargs)
        finally:
            self.latency.end(token)


def test_a_wait_that_runs_out_on_a_slow_api_names_it_with_the_measured_delay():
    kube = SlowKube(3.0)
    kube.on("GET", "/api/v1/namespaces/ns/pods", Collection([pod("a", ready=False)]).handler)
    with pytest.raises(waiting.WaitTimeout) as caught:
        waiting.wait_until(
            kube,
            [waiting.Source("pods", PODS, "ns")],
            lambda state: Pending("a not Ready"),
            timeout_s=0.3,
            what="pods",
            where="ns",
            expected="all Ready",
        )
    assert str(caught.value).startswith(
        "pods in ns: a not Ready after 0s (expected all Ready within 0s); the API server answered "
        "slowly: 1 of 1 answers took 1s or more (median 3.0s, slowest 3.0s) (measured by the suite)"
    ), caught.value
