"""CPU autoscaling: under load, a HorizontalPodAutoscaler adds replicas; after the load, it
removes them again, and every decision it takes follows its formula and its stored behaviour.

`cpuhog` burns CPU per request (`?ms=N`); its HPA (autoscaling/v2) targets 50 % of the 100m CPU
request, 1..4 replicas, scales up at once (no window; double or add 4 pods per 15 s, whichever is
more) and down after a 10 s stabilization window. The HPA reads CPU from the resource metrics
API, which metrics-server provides: without it nothing scales, so its absence is reported up
front as a precondition (a failure whenever skips fail: CI, --fail-on-skip).

First the scenario reads back what the cluster admitted (`suite.admitted`): the HPA as stored
(min, max, the CPU target, both directions' windows, policies and selectPolicy) and the live
pods' CPU request and limit (the reading is a share of the request) and readiness period. The
rules every decision is checked on are parsed from that stored HPA (`proofs.hpa_rules`), and
the scale-in deadline from its stored window.

What is proven, in order: the HPA controller writes a status and a CPU reading; 1 ready replica
before the load, with no reading above target and no request for more replicas before it; under
load a reading above target comes no later than the HPA asking for more replicas, its
SuccessfulRescale event names CPU, and more than 1 replica becomes Ready; after the load the HPA
goes back to 1 within a stated deadline. Then, from the recording: every rescale the recorder
saw lies within what the HPA formula (ceil(replicas x usage / target), within tolerance)
and the stored behaviour (stabilization windows, rate policies, min..max) allow from the reading
in that status (`proofs.check_rescale`, which states how it widens the range where the status
does not say what the controller saw), and replicas stay within min..max the whole time (HPA,
Deployment and pods).

A failure names a part only because of what was recorded: an HPA whose status no controller ever
wrote names the HorizontalPodAutoscaler controller (kube-controller-manager); one whose
conditions say FailedGetResourceMetric names the resource metrics API (metrics-server); a
rescale outside its range names the controller that wrote it.

Physical floor (`floor` below, recorded in the figures and shown in the report against the
measured time): the first reading takes one metrics resolution after the pod starts, the load
shows one resolution later, readings fall one resolution after it stops, and the stabilization
window passes before the scale-in: 3 x resolution + 10 s + two readiness periods. On the local
cluster (resolution 10 s) that is 44 s; with the upstream manifests' 15 s, 59 s. Every deadline is
derived from the HPA sync period and metrics resolution the cluster really runs with
(`suite.timing`, read at session start and printed in the report header).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from suite import admitted, claims
from suite.behaviours.autoscaling import proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import DEPLOYMENTS, HPAS, get_object
from suite.preflight import metrics_api_problem
from suite.recorder import Recorder
from suite.samples import deployment_sample, hpa_sample
from suite.session import STATE_KEY
from suite.timing import (
    HPA_SYNC_DEFAULT_S,
    METRICS_RESOLUTION_BINARY_DEFAULT_S,
    ClusterTiming,
    Setting,
)
from suite.traffic import Prober, ProbeRequest
from suite.waiting import Done, Failed, Pending, Source, State, Verdict, WaitFailed, wait_until
from suite.waits import wait_hpa

APP = "cpuhog"
SELECTOR = {"app.kubernetes.io/name": APP}
#: The HPA of manifests/cpuhog (test_proofs.py beside this file checks the manifest says the same;
#: the live object is read back against EXPECTED_HPA before the load).
MIN_REPLICAS = 1
MAX_REPLICAS = 4
TARGET_CPU_PERCENT = 50
SCALE_DOWN_WINDOW_S = 10
#: Scale out on the first reading above target, doubling or adding up to four pods every 15 s.
SCALE_UP: dict[str, Any] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15},
    ],
}
#: Scale in after the window, removing every surplus pod at once.
SCALE_DOWN: dict[str, Any] = {
    "stabilizationWindowSeconds": SCALE_DOWN_WINDOW_S,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
#: The pods' CPU: the reading is a share of the request; the limit caps what the load takes.
CPU_REQUEST = "100m"
CPU_LIMIT = "250m"
#: The added pod's readiness: manifests/cpuhog readinessProbe periodSeconds (no initial delay).
READINESS_PERIOD_S = 2

#: What the scenario depends on, read back from the live objects (suite.admitted).
EXPECTED_HPA: dict[str, Any] = {
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
        "minReplicas": MIN_REPLICAS,
        "maxReplicas": MAX_REPLICAS,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": TARGET_CPU_PERCENT},
                },
            }
        ],
        "behavior": {"scaleUp": SCALE_UP, "scaleDown": SCALE_DOWN},
    }
}
EXPECTED_POD: dict[str, Any] = {
    "spec": {
        "containers": [
            {
                "name": APP,
                "resources": {"requests": {"cpu": CPU_REQUEST}, "limits": {"cpu": CPU_LIMIT}},
                "readinessProbe": {"periodSeconds": READINESS_PERIOD_S},
            }
        ]
    }
}

#: A pod the HPA added is Ready within this (schedule, start a present image, readiness period 2 s
#: x threshold, on a machine busy with the load).
NEW_POD_READY_S = 30
#: How far a recorded status write may sit from the controller's own clock when deciding whether
#: a reading or a scale event fell inside a stabilization window or a policy period: both are
#: status writes seen through a watch, at syncs that jitter (proofs.check_rescale).
DECISION_SLACK_S = 2.0
#: The HPA's SuccessfulRescale event is written with the scale; the watch brings it in seconds.
EVENT_DEADLINE_S = 10.0
#: Margin on every deadline below for a busy 2-core machine.
MARGIN_S = 30.0


@dataclass(frozen=True)
class Deadlines:
    """The waits of this scenario, derived from the cluster's real HPA sync period and metrics
    resolution (suite.timing: read from the running components at session start), so the same
    test holds on the local cluster (HPA sync 2 s, resolution 10 s), on kind and on a Pi
    (upstream 15 s / 15 s)."""

    #: A new HPA gets its first status (conditions, even without a reading) at the controller's
    #: next sync: within one sync period of its creation; twice that plus 10 s on a busy machine.
    #: No status by then means no HPA controller is running.
    hpa_status_s: float
    #: A new pod's first CPU reading needs two scrapes (CPU is a rate), then an HPA sync reads it.
    first_reading_s: float
    #: Load start -> more replicas: the load shows in the next scrape and fills the next rate
    #: window (two resolutions), then the HPA acts at its next sync.
    scale_out_s: float
    #: Load stop -> back to the minimum: readings fall within two scrapes, the HPA waits out its
    #: stabilization window (as stored), then acts at its next sync.
    scale_in_s: float


def deadlines(timing: ClusterTiming, window_s: float = SCALE_DOWN_WINDOW_S) -> Deadlines:
    """The deadlines on a cluster with these settings, for an HPA whose stored scale-down
    window is `window_s`."""
    sync = timing.hpa_sync.seconds
    resolution = timing.metrics_resolution.seconds
    return Deadlines(
        hpa_status_s=2 * sync + 10,
        first_reading_s=2 * resolution + sync + MARGIN_S,
        scale_out_s=2 * resolution + sync + MARGIN_S,
        scale_in_s=2 * resolution + window_s + sync + MARGIN_S,
    )


def floor(timing: ClusterTiming) -> Floor:
    """The least time this scenario can take on such a cluster (suite.floors): waits no test
    code can shorten. The HPA's syncs are left out (one may fall right when it is needed)."""
    resolution = timing.metrics_resolution.seconds
    return Floor.of(
        ("cpuhog Ready (first readiness probe)", READINESS_PERIOD_S),
        ("first CPU reading (two scrapes, one resolution apart)", resolution),
        ("load shows in a reading (one resolution)", resolution),
        ("the added pod Ready", READINESS_PERIOD_S),
        ("readings fall after the load (one resolution)", resolution),
        ("scale-down stabilization window", SCALE_DOWN_WINDOW_S),
    )


#: The slowest settings this scenario expects anywhere (metrics-server's binary default 60 s,
#: the HPA's default 15 s): the pytest-timeout backstop is built on them.
_SLOWEST = deadlines(
    ClusterTiming(
        hpa_sync=Setting(HPA_SYNC_DEFAULT_S, "upstream default"),
        metrics_resolution=Setting(METRICS_RESOLUTION_BINARY_DEFAULT_S, "binary default"),
    )
)

#: The load: 2 requests at a time, back to back, each busy-looping 250 ms in a cpuhog pod (held
#: to its 250m limit: 250 % of the request), sent from inside the cluster through the Service. It
#: takes at most half a core (2 x the limit), so scenarios running beside it (pytest -n 2) keep
#: their timing.
LOAD = ProbeRequest(url="http://cpuhog/?ms=250", concurrency=2, interval_ms=0, timeout_s=10.0)
#: Load runs in chunks so it stops within one chunk once scale-out is seen; never longer than
#: the bound.
LOAD_CHUNK_S = 2.5
LOAD_BOUND_S = 150.0
#: pytest-timeout backstop behind the deadlines above (suite/plugin.py): Ready (120 s, READY_S of
#: suite/fixtures.py), the HPA's first status and reading, the bounded load, the scale-in; margin.
BACKSTOP_S = (
    120.0
    + _SLOWEST.hpa_status_s
    + _SLOWEST.first_reading_s
    + LOAD_BOUND_S
    + _SLOWEST.scale_in_s
    + 60.0
)


def _latest(state: State) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    deployment = state["deployment"].get(APP)
    hpa = state["hpa"].get(APP)
    return (
        deployment_sample(deployment) if deployment else None,
        hpa_sample(hpa) if hpa else None,
    )


def _describe(sample: dict[str, Any] | None) -> str:
    """The HPA's state in a wait's message; the part it points at, only when its status does
    (proofs.hpa_blame)."""
    blame = proofs.hpa_blame(sample, APP)
    if sample is None or not proofs.status_written(sample):
        return blame
    conditions = ", ".join(f"{k}={v}" for k, v in sorted(sample["conditions"].items()))
    text = (
        f"HPA current={sample['current_replicas']} desired={sample['desired_replicas']}, "
        f"CPU {sample['cpu_utilization']}% of request (target {sample['target_utilization']}%), "
        f"{conditions}"
    )
    return f"{text}: {blame}" if blame else text


def _sources(namespace: str) -> list[Source]:
    return [
        Source("deployment", DEPLOYMENTS, namespace, field_selector=f"metadata.name={APP}"),
        Source("hpa", HPAS, namespace, field_selector=f"metadata.name={APP}"),
    ]


def _require_metrics_api(cluster: Cluster, config: pytest.Config) -> None:
    """Checked now, not at session start: the metrics API can go away during a run."""
    problem = metrics_api_problem(cluster.kube)
    if problem is None:
        return
    message = (
        f"{problem}: the HorizontalPodAutoscaler reads CPU from the resource metrics API, so "
        "nothing can scale"
    )
    if config.stash[STATE_KEY].settings.fail_on_skip:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def test_cpu_load_scales_the_deployment_out_and_back_in(
    cluster: Cluster,
    namespace: str,
    workloads: Workloads,
    prober: Prober,
    recorder: Recorder,
    figures: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    """From 1 ready replica, bounded CPU load makes the HPA read CPU above target, rescale citing
    CPU and bring more than 1 replica to Ready within a stated time of load start; after the load
    it goes back to 1 within a stated time. Every rescale it took lies within what its formula and
    its behaviour as stored allow from the reading it wrote with it, and replicas stay within
    min..max throughout; replicas and CPU over time are recorded (the HPA samples)."""
    _require_metrics_api(cluster, pytestconfig)
    timing = cluster.timing
    sync_s = timing.hpa_sync.seconds
    figures.update(floor=floor(timing).to_dict(), cluster_timing=timing.describe())
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"

    workloads.apply(APP)
    workloads.wait_ready(APP)
    stored = get_object(cluster.kube, HPAS, namespace, APP)
    pods = workloads.pods(APP)
    with claims.behaviour():
        rewritten = admitted.problems(stored, EXPECTED_HPA, kind="horizontalpodautoscaler")
        rewritten += admitted.all_problems(pods, EXPECTED_POD, kind="pod")
        assert not rewritten, admitted.rewritten(rewritten, f"hpa/{APP} or the {APP} pods")
    # From here on every bound comes from the HPA as stored (equal to the stated one once the
    # read-back passed).
    rules = proofs.hpa_rules(stored)
    limits = deadlines(timing, rules.down.window_s)
    figures.update(hpa_rules=rules.describe())

    with claims.behaviour():
        wait_hpa(
            cluster.kube,
            namespace,
            APP,
            lambda obj: (
                Done()
                if proofs.status_written(hpa_sample(obj))
                else Pending(_describe(hpa_sample(obj)))
            ),
            timeout_s=limits.hpa_status_s,
            # Plain numbers in the expectation: the settings' sources name components (whatever
            # the cause), and a failure names a part only from what it saw.
            expected=f"a status on hpa/{APP} (the HPA syncs every {sync_s:g} s)",
        )
        wait_hpa(
            cluster.kube,
            namespace,
            APP,
            lambda obj: (
                Done()
                if hpa_sample(obj)["cpu_utilization"] is not None
                else Pending(_describe(hpa_sample(obj)))
            ),
            timeout_s=limits.first_reading_s,
            expected=(
                f"a CPU reading in the status of hpa/{APP} (metrics resolution "
                f"{timing.metrics_resolution.seconds:g} s)"
            ),
        )
        recorder.mark("first CPU reading")
        early = proofs.before_load_problems(
            recorder.samples("HorizontalPodAutoscaler", APP), float("inf"), rules
        )
        assert not early, "before the load: " + "; ".join(early)
        baseline = proofs.baseline_problem(
            deployment_sample(get_object(cluster.kube, DEPLOYMENTS, namespace, APP)),
            hpa_sample(get_object(cluster.kube, HPAS, namespace, APP)),
            rules.minimum,
        )
        assert baseline is None, baseline

    load_wall = time.time()
    t_load = recorder.mark("load start")
    load = prober.background(LOAD, chunk_s=LOAD_CHUNK_S, total_s=LOAD_BOUND_S, label="cpu load")

    def ready_above_minimum(state: State) -> Verdict:
        deployment, sample = _latest(state)
        ready = (deployment or {}).get("ready", 0)
        if ready > rules.minimum:
            return Done(ready)
        if not load.running:
            return Failed(f"the load ended first ({load.result.describe()})")
        spec = (deployment or {}).get("spec_replicas", 0)
        return Pending(f"{ready} ready of {spec} replica(s); {_describe(sample)}")

    scale_out: WaitFailed | None = None
    ready = 0
    try:
        ready = wait_until(
            cluster.kube,
            _sources(namespace),
            ready_above_minimum,
            timeout_s=limits.scale_out_s + NEW_POD_READY_S,
            what=f"deployment/{APP} under CPU load",
            where=namespace,
            expected=f"more than {rules.minimum} ready replica(s)",
            hint=f"kubectl -n {namespace} describe hpa/{APP}",
            events_namespace=namespace,
        )
        scaled_out_wall = time.time()
        recorder.mark("scaled out", ready=ready)
    except WaitFailed as error:
        scale_out = error
    finally:
        load.stop()
    stopped_wall = load.stopped_wall or time.time()
    recorder.mark("load stopped")
    assert load.result.ok, f"the load never reached cpuhog: {load.result.describe()}"
    if scale_out is not None:
        with claims.behaviour():
            raise AssertionError(f"{scale_out}; load: {load.result.describe()}")

    def scaled_in(state: State) -> Verdict:
        deployment, sample = _latest(state)
        replicas = (deployment or {}).get("spec_replicas", 0)
        # The HPA asked for the minimum and the Deployment took it (the HPA's own currentReplicas
        # follows one sync later and proves nothing more).
        if replicas == rules.minimum and sample and sample["desired_replicas"] == rules.minimum:
            return Done(replicas)
        return Pending(f"{replicas} replica(s); {_describe(sample)}")

    with claims.behaviour():
        wait_until(
            cluster.kube,
            _sources(namespace),
            scaled_in,
            timeout_s=limits.scale_in_s,
            what=f"deployment/{APP} after the load",
            where=namespace,
            expected=f"back to {rules.minimum} replica(s)",
            hint=f"kubectl -n {namespace} describe hpa/{APP}",
            events_namespace=namespace,
        )
    recorder.mark("scaled in")
    # The wait above has its own watch: the recorder's copy of the same HPA status arrives a
    # moment later (seen on kind: the verdict read the samples before it).
    recorder.wait_for(
        lambda: (
            Done()
            if any(
                s.get("desired_replicas") == rules.minimum and s["t"] > t_load
                for s in recorder.samples("HorizontalPodAutoscaler", APP)
            )
            else Pending("the recorder has not yet seen the HPA ask for the minimum")
        ),
        timeout_s=EVENT_DEADLINE_S,
        what=f"the recording of hpa/{APP}",
        expected=f"the HPA status asking for {rules.minimum} replica(s) after the load",
    )
    # The decisions are judged on the recorded status writes: a watch lost meanwhile may have
    # hidden some, and then the test says so rather than judge what is not there.
    gaps = recorder.gap_problems(["HorizontalPodAutoscaler", "Deployment"])
    assert not gaps, "the recording of this scenario has gaps: " + "; ".join(gaps)

    samples = recorder.samples("HorizontalPodAutoscaler", APP)
    out = proofs.scale_out_evidence(samples, t_load, rules.target, rules.minimum)
    t_scaled_in = (
        proofs.first_t(samples, out.t_desired, "desired_replicas", lambda n: n == rules.minimum)
        if out.t_desired is not None
        else None
    )
    decisions, wrong = proofs.rescale_problems(
        samples, rules, sync_s=sync_s, slack_s=DECISION_SLACK_S
    )
    bounds = proofs.replica_bound_problems(
        samples,
        recorder.samples("Deployment", APP),
        [(moment.t, moment.pods) for moment in recorder.pod_moments(SELECTOR)],
        rules,
    )
    early = proofs.before_load_problems(samples, t_load, rules)
    last_above = max(
        (
            s["t"]
            for s in samples
            if t_scaled_in is not None
            and s.get("t", 0) <= t_scaled_in
            and (s.get("cpu_utilization") or 0) > rules.target
        ),
        default=None,
    )
    figures.update(
        scaled_out_after_s=round(scaled_out_wall - load_wall, 1),
        scale_out_deadline_s=limits.scale_out_s + NEW_POD_READY_S,
        ready_at_scale_out=ready,
        first_above_target_after_s=round(out.t_above - t_load, 1) if out.t_above else None,
        rescale_asked_after_s=round(out.t_desired - t_load, 1) if out.t_desired else None,
        max_replicas_seen=max((s.get("desired_replicas") or 0 for s in samples), default=None),
        peak_cpu_percent=max((s.get("cpu_utilization") or 0 for s in samples), default=None),
        load_requests=load.result.sent,
        scaled_in_after_s=round(time.time() - stopped_wall, 1),
        scale_in_deadline_s=limits.scale_in_s,
        scale_in_after_last_above_target_s=(
            round(t_scaled_in - last_above, 1)
            if t_scaled_in is not None and last_above is not None
            else None
        ),
        rescales="; ".join(decision.describe() for decision in decisions),
    )

    with claims.behaviour():
        assert not early, "the scale-out did not follow the load: " + "; ".join(early)
        assert not out.problems, "scale-out: " + "; ".join(out.problems)
        assert not wrong, "; ".join(wrong)
        unseen = [
            direction
            for direction, seen in (
                ("up", any(d.desired > d.current for d in decisions)),
                ("down", any(d.desired < d.current for d in decisions)),
            )
            if not seen
        ]
        assert not unseen, (
            f"the recorder saw no HPA rescale {' or '.join(unseen)} to check against its "
            "formula; rescales seen: " + ("; ".join(d.describe() for d in decisions) or "none")
        )
        assert not bounds, f"replicas outside {rules.minimum}..{rules.maximum}: " + "; ".join(
            bounds
        )
        event = recorder.events_problem(
            lambda events: proofs.rescale_event_problem(events, APP, t_load),
            timeout_s=EVENT_DEADLINE_S,
            what=f"hpa/{APP} SuccessfulRescale citing CPU",
        )
        assert event is None, event
        assert t_scaled_in is not None, (
            f"the recorder saw no HPA status asking for {rules.minimum} replica(s) after the "
            "scale-out"
        )
