"""Faults in the suite's own path, on the local cluster: the API server restarts mid-scenario, the
prober pod dies mid-traffic, the API server answers slowly.

Each test breaks a part the suite itself depends on (not the behaviour a scenario proves) and
checks that the suite says so: the recorder names the time it was blind, a traffic interruption
names the prober, a wait that runs out names the slow API with the delay it measured. Only the
local cluster lets a test restart the API server, so they run only there.
"""

from __future__ import annotations

import math
import re
import statistics
import threading
from pathlib import Path
from typing import Any

import pytest

from localcluster import config, faults, slowapi
from suite.behaviours.rolling_update import proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.kube import PODS, WATCH_RETRY_FIRST_S, WATCH_RETRY_MAX_S, ApiKube, KubeError, name_of
from suite.recorder import Recorder
from suite.traffic import Prober, ProbeRequest, prober_pods
from suite.waiting import Done, Pending, Verdict, WaitTimeout, retry_transient, wait_condition
from suite.waits import wait_deployment_ready

pytestmark = pytest.mark.only_on(
    "local", reason="they restart and slow down the local cluster's own API server"
)

APP = "getip"
REPLICAS = 2
SELECTOR = {"app.kubernetes.io/name": APP}
#: A stopped API server closes every watch as it shuts down; the recorder notices each loss when
#: it tries to reopen (at once) or at its next retry (backoff at most 5 s, suite/kube.py).
WATCHES_LOST_S = 15.0
#: After a loss the recorder's retries come ever later until they are WATCH_RETRY_MAX_S apart:
#: 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s (suite/kube.py).
RETRIES_SLOWED_S = sum(
    min(WATCH_RETRY_FIRST_S * 2**n, WATCH_RETRY_MAX_S)
    for n in range(math.ceil(math.log2(WATCH_RETRY_MAX_S / WATCH_RETRY_FIRST_S)))
)
#: The API server's own start deadline (localcluster/components.py: 90 s; it takes 2-5 s here).
API_BACK_S = 90.0
#: After the API server is back, every watch relists at its next retry: the ListWatcher backs off
#: at most 5 s between attempts; 15 s leaves room for a busy machine.
GAPS_CLOSE_S = 15.0
#: The deleted pod's replacement: the ReplicaSet controller relists too, then schedule and start
#: a present image (suite/fixtures.py READY_S for the same on a busy machine).
REPLACEMENT_S = 120.0
#: Background traffic through the Service while the prober pod is deleted (as self-healing runs it).
TRAFFIC = ProbeRequest(url="http://getip/", concurrency=2, interval_ms=50, timeout_s=2.0)
TRAFFIC_CHUNK_S = 5.0
TRAFFIC_BOUND_S = 120.0
WARMUP_ANSWERS = 10
ANSWERS_DEADLINE_S = 30.0
CONVERGE_S = 30.0
#: A deleted prober pod stops answering within its termination grace (10 s, manifests/prober);
#: the chunk it was streaming breaks, or the next one finds no endpoint, within one more chunk.
PROBER_GONE_S = 10.0 + TRAFFIC_CHUNK_S + 15.0
#: A slow API server: every answer (TLS handshake included) held back this long by a proxy in
#: front of it. Tolerated: the suite's waits and recorder still finish within their deadlines.
SLOW_S = 0.5
#: Too slow for a short wait: each answer takes longer than the whole deadline, so the wait must
#: run out, and say the API was slow, with the delay it measured.
TOO_SLOW_S = 3.0
SHORT_DEADLINE_S = 2.0
#: Deadlines under the slow API: those of suite/fixtures.py (READY_S, RECORDER_SYNC_S); the
#: recorder's view of the Ready pods arrives one slow answer after the wait's.
RECORDER_SYNC_S = 15.0
READY_S = 120.0
RECORDER_SEES_S = 15.0
#: pytest-timeout backstop (suite/plugin.py): deploy (120 s) + the restart + the waits above.
BACKSTOP_S = (
    120.0
    + WATCHES_LOST_S
    + RETRIES_SLOWED_S
    + 2 * WATCH_RETRY_MAX_S
    + API_BACK_S
    + GAPS_CLOSE_S
    + REPLACEMENT_S
    + 60.0
)


def _retry_until_served(action: Any, *, what: str, timeout_s: float) -> Any:
    """Retry `action` every 50 ms while the API server does not serve (no answer, 429, 5xx), so it
    goes through at the first moment the restarted server takes requests."""

    def down(error: BaseException) -> bool:
        return isinstance(error, KubeError) and (error.status in (0, 429) or error.status >= 500)

    return retry_transient(
        action,
        timeout_s=timeout_s,
        what=what,
        where="the restarted API server",
        expected="served once the API server is back",
        transient=down,
        max_backoff_s=0.05,
    )


def _every_watch_lost(recorder: Recorder) -> Verdict:
    open_kinds = {gap["kind"] for gap in recorder.gaps() if gap["until_t"] is None}
    missing = sorted(set(recorder.resources) - open_kinds)
    return Done() if not missing else Pending(f"still watching {missing}")


def _retries_at_most_apart(recorder: Recorder, since: float) -> Verdict:
    retried = {error["kind"] for error in recorder.errors() if error["t"] >= since}
    waiting = sorted(set(recorder.resources) - retried)
    return Done() if not waiting else Pending(f"no retry since t={since:.1f}s: {waiting}")


def _pods_kept_serving(recorder: Recorder, since: float, until: float) -> list[str]:
    """The verdict a self-healing scenario draws from the recording: at every moment of the
    window at least REPLICAS - 1 pods were Ready and at most REPLICAS + 1 existed. Moments the
    recorder did not see cannot be judged: a gap that cost pod data fails it, naming the gap."""
    unseen = recorder.gap_problems(["Pod"], since=since, until=until)
    if unseen:
        return [f"not proven, the recorder was blind: {problem}" for problem in unseen]
    return proofs.bound_problems(
        recorder.pod_moments(SELECTOR, since=since, until=until), REPLICAS, 1, 1
    )


@pytest.mark.alone(reason="it restarts kube-apiserver")
def test_an_api_server_restart_mid_scenario_is_a_named_gap_in_the_recording(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Restart kube-apiserver while the recorder watches, and delete a pod the moment it is
    back: every watch resumes by relisting, the recording names each gap from when to when,
    the pod watch's gap names the pod that changed while it was blind, and a verdict over the
    window fails naming that gap instead of passing on what it did not see."""
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"
    workloads.deploy(APP, replicas=REPLICAS)
    victim = name_of(workloads.pods(APP)[0])
    said: list[str] = []
    deleted: dict[str, float] = {}
    deleter: list[threading.Thread] = []

    def delete_victim() -> None:
        _retry_until_served(
            lambda: cluster.kube.request("DELETE", PODS.path(namespace, victim)),
            what=f"DELETE pod/{victim}",
            timeout_s=API_BACK_S,
        )
        deleted["t"] = recorder.mark("pod deleted", pod=victim)

    def while_stopped() -> None:
        recorder.wait_for(
            lambda: _every_watch_lost(recorder),
            timeout_s=WATCHES_LOST_S,
            what="recorder",
            expected="every watch lost while kube-apiserver is stopped",
        )
        t_lost = recorder.mark("every watch lost")
        # Start the API server right after a round of the recorder's retries that are already
        # WATCH_RETRY_MAX_S apart: the server serves within ~2 s, the deletion goes through at
        # once, and the recorder only relists at its next retry, so the pod changes while it is
        # blind (the test checks the order, and judges the other one too).
        recorder.wait_for(
            lambda: _retries_at_most_apart(recorder, t_lost + RETRIES_SLOWED_S),
            timeout_s=RETRIES_SLOWED_S + 2 * WATCH_RETRY_MAX_S,
            what="recorder",
            expected=f"every watch retrying {WATCH_RETRY_MAX_S}s apart",
        )
        recorder.mark("retries slowed")
        thread = threading.Thread(target=delete_victim, name="delete-victim", daemon=True)
        deleter.append(thread)
        thread.start()

    t_stop = recorder.mark("restart kube-apiserver")
    gone_s = faults.restart(
        config.Paths.default(), "kube-apiserver", said.append, while_stopped=while_stopped
    )
    recorder.mark("kube-apiserver ready")
    for thread in deleter:
        thread.join(API_BACK_S)
    assert "t" in deleted, f"pod/{victim} was not deleted once kube-apiserver was back: {said}"
    recorder.wait_gaps_closed(GAPS_CLOSE_S)
    wait_deployment_ready(cluster.kube, namespace, APP, timeout_s=REPLACEMENT_S)
    t_end = recorder.mark("replacement ready")

    gaps = recorder.gaps()
    verdict = _pods_kept_serving(recorder, t_stop, t_end)
    (pod_gap,) = [gap for gap in gaps if gap["kind"] == "Pod"]
    figures.update(
        api_server_gone_s=round(gone_s, 1),
        gaps=[f"{gap['watch']}: {gap['from_t']:.1f}-{gap['until_t']:.1f}s" for gap in gaps],
        pod_deleted_t=round(deleted["t"], 2),
        verdict=verdict,
    )

    assert {gap["kind"] for gap in gaps} == set(recorder.resources), (
        f"every watch should have one gap for the restart, the recorder has: {gaps}"
    )
    for gap in gaps:
        assert gap["until_t"] is not None, f"the {gap['watch']} watch was never re-listed: {gap}"
        assert t_stop <= gap["from_t"] < gap["until_t"] < t_end, (
            f"gap of the {gap['watch']} watch should open after the stop (t={t_stop:.1f}s) and "
            f"close by relisting before t={t_end:.1f}s: {gap}"
        )
    if pod_gap["until_t"] > deleted["t"]:
        # The usual order: the pod changed while the recorder was blind.
        assert victim in pod_gap["changed"], (
            f"pod/{victim} was deleted at t={deleted['t']:.1f}s, inside the pod watch's gap "
            f"({pod_gap}), but the relist did not name it as changed"
        )
        assert verdict, "a verdict over a window the recorder did not see passed"
        assert verdict[0].startswith("not proven, the recorder was blind: watch of pods "), verdict
        assert f"re-listed: {len(pod_gap['changed'])} changed meanwhile" in verdict[0], verdict
    else:
        # The recorder relisted before the deletion went through: its data is complete, and the
        # verdict holds on what it saw live.
        assert not pod_gap["changed"], pod_gap
        assert not verdict, verdict


def test_a_prober_pod_killed_mid_traffic_fails_naming_the_prober(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
) -> None:
    """Delete the prober pod while it drives traffic: the traffic's interruption, and so the
    scenario's failure ("the traffic was interrupted: ..."), names the prober pod and says it is
    the suite's own path, not the behaviour under test."""
    workloads.deploy(APP, replicas=REPLICAS)
    prober.converge(
        TRAFFIC.url, [name_of(pod) for pod in workloads.pods(APP)], timeout_s=CONVERGE_S
    )
    before = prober_pods(cluster.kube, namespace, prober.selector)
    assert before is not None, f"the prober's pods ({prober.selector}) cannot be listed"
    assert len(before) == 1, f"expected one prober pod, found {sorted(before)}"
    (victim,) = before
    traffic = prober.background(TRAFFIC, chunk_s=TRAFFIC_CHUNK_S, total_s=TRAFFIC_BOUND_S)
    try:
        traffic.wait_for(
            lambda answers: (
                Done()
                if sum(a.ok for a in answers) >= WARMUP_ANSWERS
                else Pending(f"{sum(a.ok for a in answers)} answered")
            ),
            timeout_s=ANSWERS_DEADLINE_S,
            what=f"traffic to service/{APP}",
            expected=f"{WARMUP_ANSWERS} answered requests before the prober pod is deleted",
        )
        recorder.mark("delete the prober pod", pod=victim)
        cluster.kube.request("DELETE", PODS.path(namespace, victim))

        def interrupted() -> Verdict:
            served = {str((s.get("prober") or {}).get("pod")) for s in traffic.result.summaries}
            if traffic.result.errors or served - {victim}:
                return Done()
            return Pending(f"{traffic.result.describe()}; chunks answered by {sorted(served)}")

        wait_condition(
            traffic.changed,
            interrupted,
            timeout_s=PROBER_GONE_S,
            what=f"traffic through pod/{victim}",
            where=namespace,
            expected="the traffic to notice that its prober pod is gone",
        )
        recorder.mark("traffic interrupted")
    finally:
        result = traffic.stop()
    # What every scenario asserts first about its traffic (the rolling update's scenario).
    message = f"the traffic was interrupted: {result.errors[-1]}" if result.errors else ""
    figures.update(requests=result.sent, failed=len(result.failed), message=message)

    assert result.errors, f"deleting pod/{victim} mid-traffic went unnoticed: {result.describe()}"
    assert result.prober_problem == result.errors[-1], result.errors
    assert f"the prober pod {victim} was " in message, message
    assert "deleted during traffic" in message or "being deleted during traffic" in message, message
    assert "not the behaviour under test's" in message, message


def _measured_s(message: str) -> float:
    """The largest delay a wait's message reports (slowest answer or longest unanswered)."""
    figures = re.findall(r"(?:slowest|unanswered after up to) (\d+\.\d)s", message)
    return max((float(figure) for figure in figures), default=0.0)


def test_a_slow_api_server_is_tolerated_within_deadlines_or_named_with_its_measured_delay(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    figures: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Put a proxy in front of the API server that holds every answer back: at 0.5 s per answer
    the suite's deployment wait and a recorder still finish within their deadlines; at 3 s per
    answer a 2 s wait runs out and its message names the slow API server with the delay the
    suite measured, not the deployment it waited for."""
    assert cluster.access.kubeconfig is not None, "the local cluster has a kubeconfig file"
    kubeconfig = Path(cluster.access.kubeconfig)
    proxy = slowapi.DelayProxy(
        slowapi.upstream_of(kubeconfig, cluster.access.context), SLOW_S
    ).start()
    try:
        slow = ApiKube.from_kubeconfig(
            slowapi.behind(kubeconfig, proxy, tmp_path / "slow.kubeconfig"), cluster.access.context
        )
        since = slow.latency.now()
        recorder = Recorder(slow, namespace).start()
        try:
            assert recorder.wait_synced(RECORDER_SYNC_S), (
                f"a recorder behind a {SLOW_S}s-slow API did not list within {RECORDER_SYNC_S}s"
            )
            workloads.apply(APP, replicas=REPLICAS)
            wait_deployment_ready(slow, namespace, APP, timeout_s=READY_S)
            recorder.wait_for(
                lambda: (
                    Done()
                    if sum(view.ready for view in recorder.pods(SELECTOR).values()) == REPLICAS
                    else Pending(f"{recorder.pods(SELECTOR)}")
                ),
                timeout_s=RECORDER_SEES_S,
                what="recorder",
                expected=f"{REPLICAS} Ready {APP} pods recorded",
            )
        finally:
            recorder.stop()
        took = slow.latency.seconds(since)
        figures.update(
            slow_answers=len(took),
            slow_median_s=round(statistics.median(took), 2),
            slow_slowest_s=round(max(took), 2),
        )
        assert statistics.median(took) >= SLOW_S, (
            f"the proxy should hold every answer {SLOW_S}s, the suite measured {took}"
        )

        proxy.delay_s = TOO_SLOW_S
        with pytest.raises(WaitTimeout) as caught:
            wait_deployment_ready(slow, namespace, APP, timeout_s=SHORT_DEADLINE_S)
    finally:
        proxy.stop()
    message = str(caught.value)
    figures["too_slow_message"] = message
    assert f"deployment/{APP} in {namespace}: " in message, message
    assert "; the API server answered slowly: " in message, message
    assert _measured_s(message) >= SHORT_DEADLINE_S, (
        f"the message should report a delay of at least the {SHORT_DEADLINE_S}s deadline: {message}"
    )
