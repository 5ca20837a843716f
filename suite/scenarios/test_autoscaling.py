"""CPU autoscaling: under load, a HorizontalPodAutoscaler adds replicas; after the load, it
removes them again, and both are tied to the CPU readings.

`cpuhog` burns CPU per request (`?ms=N`); its HPA (autoscaling/v2) targets 50 % of the 100m CPU
request, 1..4 replicas, with a 10 s scale-down stabilization window. The HPA reads CPU from the
resource metrics API, which metrics-server provides: without it nothing scales, so its absence
is reported up front (a failure whenever skips fail: CI, --fail-on-skip).

What is proven, in order: 1 ready replica before the load; under load a reading above target
comes no later than the HPA asking for more replicas; its SuccessfulRescale event names CPU; more
than 1 replica becomes Ready; after the load the HPA goes back to 1 no earlier than the
stabilization window after the last reading above target, and within a stated deadline.

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

from suite import proofs
from suite.cluster import Cluster
from suite.fixtures import Workloads
from suite.floors import Floor
from suite.kube import DEPLOYMENTS, HPAS, get_object
from suite.preflight import metrics_api_problem
from suite.recorder import Recorder, deployment_sample, hpa_sample
from suite.session import STATE_KEY
from suite.timing import (
    HPA_SYNC_DEFAULT_S,
    METRICS_RESOLUTION_BINARY_DEFAULT_S,
    ClusterTiming,
    Setting,
)
from suite.traffic import Prober, ProbeRequest
from suite.waiting import (
    Done,
    Failed,
    Pending,
    Source,
    State,
    Verdict,
    WaitFailed,
    wait_hpa,
    wait_until,
)

APP = "cpuhog"
#: The HPA of manifests/cpuhog (checked against the applied object below).
MIN_REPLICAS = 1
MAX_REPLICAS = 4
TARGET_CPU_PERCENT = 50
SCALE_DOWN_WINDOW_S = 10

#: The added pod's readiness: manifests/cpuhog readinessProbe periodSeconds (no initial delay).
READINESS_PERIOD_S = 2
#: A pod the HPA added is Ready within this (schedule, start a present image, readiness period 2 s
#: x threshold, on a machine busy with the load).
NEW_POD_READY_S = 30
#: The scale-in may be observed this much earlier than a full stabilization window after the last
#: reading above target: both are status writes seen through a watch, at syncs that jitter.
SCALE_IN_SLACK_S = 2.0
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
    #: stabilization window, then acts at its next sync.
    scale_in_s: float


def deadlines(timing: ClusterTiming) -> Deadlines:
    """The deadlines on a cluster with these settings."""
    sync = timing.hpa_sync.seconds
    resolution = timing.metrics_resolution.seconds
    return Deadlines(
        hpa_status_s=2 * sync + 10,
        first_reading_s=2 * resolution + sync + MARGIN_S,
        scale_out_s=2 * resolution + sync + MARGIN_S,
        scale_in_s=2 * resolution + SCALE_DOWN_WINDOW_S + sync + MARGIN_S,
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
    if sample is None:
        return "no HPA"
    if not sample["conditions"]:
        return (
            "the HPA has no status at all: is kube-controller-manager (its horizontal-pod-"
            "autoscaler controller) running?"
        )
    conditions = ", ".join(f"{k}={v}" for k, v in sorted(sample["conditions"].items()))
    text = (
        f"HPA current={sample['current_replicas']} desired={sample['desired_replicas']}, "
        f"CPU {sample['cpu_utilization']}% of request (target {sample['target_utilization']}%), "
        f"{conditions}"
    )
    if sample["conditions"].get("ScalingActive", "").startswith("False/FailedGetResourceMetric"):
        text += " (the HPA cannot read CPU: is metrics-server running and scraping?)"
    return text


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
    it goes back to 1 no earlier than its stabilization window allows and within a stated time;
    replicas and CPU over time are recorded (the HPA samples in the recording)."""
    _require_metrics_api(cluster, pytestconfig)
    timing = cluster.timing
    limits = deadlines(timing)
    figures.update(floor=floor(timing).to_dict(), cluster_timing=timing.describe())
    assert recorder.synced, "the recorder never listed the namespace: nothing would be observed"

    workloads.apply(APP)
    workloads.wait_ready(APP)
    hpa = get_object(cluster.kube, HPAS, namespace, APP)
    stated = hpa_sample(hpa)
    assert (
        stated["min_replicas"],
        stated["max_replicas"],
        stated["target_utilization"],
    ) == (MIN_REPLICAS, MAX_REPLICAS, TARGET_CPU_PERCENT), (
        f"manifests/{APP} HPA is min {stated['min_replicas']} max {stated['max_replicas']} "
        f"target {stated['target_utilization']}%, this scenario states {MIN_REPLICAS}..."
        f"{MAX_REPLICAS} at {TARGET_CPU_PERCENT}%: update one to match the other"
    )
    window = ((hpa["spec"].get("behavior") or {}).get("scaleDown") or {}).get(
        "stabilizationWindowSeconds"
    )
    assert window == SCALE_DOWN_WINDOW_S, (
        f"manifests/{APP} HPA scale-down stabilization window is {window}, this scenario's "
        f"deadline assumes {SCALE_DOWN_WINDOW_S}s"
    )

    wait_hpa(
        cluster.kube,
        namespace,
        APP,
        lambda obj: (
            Done() if hpa_sample(obj)["conditions"] else Pending(_describe(hpa_sample(obj)))
        ),
        timeout_s=limits.hpa_status_s,
        expected=f"a status from the HPA controller (it syncs every {timing.hpa_sync.describe()})",
        hint="the HorizontalPodAutoscaler controller runs in kube-controller-manager",
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
            "a CPU reading from the metrics API (metrics resolution "
            f"{timing.metrics_resolution.describe()})"
        ),
        hint=f"metrics-server logs; kubectl -n {namespace} top pods",
    )
    recorder.mark("first CPU reading")
    baseline = proofs.baseline_problem(
        deployment_sample(get_object(cluster.kube, DEPLOYMENTS, namespace, APP)),
        hpa_sample(get_object(cluster.kube, HPAS, namespace, APP)),
        MIN_REPLICAS,
    )
    assert baseline is None, baseline

    load_wall = time.time()
    t_load = recorder.mark("load start")
    load = prober.background(LOAD, chunk_s=LOAD_CHUNK_S, total_s=LOAD_BOUND_S, label="cpu load")

    def ready_above_minimum(state: State) -> Verdict:
        deployment, sample = _latest(state)
        ready = (deployment or {}).get("ready", 0)
        if ready > MIN_REPLICAS:
            return Done(ready)
        if not load.running:
            return Failed(f"the load ended first ({load.result.describe()})")
        spec = (deployment or {}).get("spec_replicas", 0)
        return Pending(f"{ready} ready of {spec} replica(s); {_describe(sample)}")

    try:
        ready = wait_until(
            cluster.kube,
            _sources(namespace),
            ready_above_minimum,
            timeout_s=limits.scale_out_s + NEW_POD_READY_S,
            what=f"deployment/{APP} under CPU load",
            where=namespace,
            expected=f"more than {MIN_REPLICAS} ready replica(s)",
            hint=(
                "the HPA acts through kube-controller-manager and reads metrics-server; "
                f"kubectl -n {namespace} describe hpa/{APP}"
            ),
            events_namespace=namespace,
        )
        scaled_out_wall = time.time()
        recorder.mark("scaled out", ready=ready)
    except WaitFailed as error:
        error.add_note(f"load so far: {load.result.describe()}")
        raise
    finally:
        load.stop()
    stopped_wall = load.stopped_wall or time.time()
    recorder.mark("load stopped")
    assert load.result.ok, f"the load never reached cpuhog: {load.result.describe()}"

    def scaled_in(state: State) -> Verdict:
        deployment, sample = _latest(state)
        replicas = (deployment or {}).get("spec_replicas", 0)
        # The HPA asked for the minimum and the Deployment took it (the HPA's own currentReplicas
        # follows one sync later and proves nothing more).
        if replicas == MIN_REPLICAS and sample and sample["desired_replicas"] == MIN_REPLICAS:
            return Done(replicas)
        return Pending(f"{replicas} replica(s); {_describe(sample)}")

    wait_until(
        cluster.kube,
        _sources(namespace),
        scaled_in,
        timeout_s=limits.scale_in_s,
        what=f"deployment/{APP} after the load",
        where=namespace,
        expected=f"back to {MIN_REPLICAS} replica(s)",
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
                s.get("desired_replicas") == MIN_REPLICAS and s["t"] > t_load
                for s in recorder.samples("HorizontalPodAutoscaler", APP)
            )
            else Pending("the recorder has not yet seen the HPA ask for the minimum")
        ),
        timeout_s=EVENT_DEADLINE_S,
        what=f"the recording of hpa/{APP}",
        expected=f"the HPA status asking for {MIN_REPLICAS} replica(s) after the load",
    )
    samples = recorder.samples("HorizontalPodAutoscaler", APP)
    out = proofs.scale_out_evidence(samples, t_load, TARGET_CPU_PERCENT, MIN_REPLICAS)
    t_scaled_in = (
        proofs.first_t(samples, out.t_desired, "desired_replicas", lambda n: n == MIN_REPLICAS)
        if out.t_desired is not None
        else None
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
    )

    assert not out.problems, "scale-out: " + "; ".join(out.problems)
    event = recorder.events_problem(
        lambda events: proofs.rescale_event_problem(events, APP, t_load),
        timeout_s=EVENT_DEADLINE_S,
        what=f"hpa/{APP} SuccessfulRescale citing CPU",
    )
    assert event is None, event
    assert t_scaled_in is not None, (
        f"the recorder saw no HPA status asking for {MIN_REPLICAS} replica(s) after the scale-out"
    )
    timing = proofs.scale_in_problems(
        samples,
        since_t=t_load,
        t_scaled_in=t_scaled_in,
        target=TARGET_CPU_PERCENT,
        window_s=SCALE_DOWN_WINDOW_S,
        slack_s=SCALE_IN_SLACK_S,
    )
    figures.update(
        scale_in_after_last_above_target_s=round(
            t_scaled_in
            - max(
                (
                    s["t"]
                    for s in samples
                    if s.get("t", 0) <= t_scaled_in
                    and (s.get("cpu_utilization") or 0) > TARGET_CPU_PERCENT
                ),
                default=t_scaled_in,
            ),
            1,
        )
    )
    assert not timing, "scale-in: " + "; ".join(timing)
