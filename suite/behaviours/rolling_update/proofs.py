"""Rolling update's decision functions: the surge and unavailability bounds, and every answer
matched to the pod that served it and that pod's moments.

Pure and cluster-free, each unit-tested (test_proofs.py beside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suite.traffic import Answer

# -- rolling update ------------------------------------------------------------------------------


def bound_problems(
    moments: Sequence[Any],
    replicas: int,
    surge: int,
    unavailable: int,
    *,
    lasting_s: float = 0.0,
) -> list[str]:
    """Every observed moment keeps pods <= replicas + surge and ready >= replicas - unavailable;
    no moments at all is a problem (nothing was observed, nothing is proven). A moment that the
    next one replaced within `lasting_s` is not judged: two ReplicaSet controllers act on one
    Deployment decision independently, so one's new pod and the other's deletion can cross by
    a moment (the decision itself is judged exactly by `replicaset_bound_problems`)."""
    if not moments:
        return ["the recorder observed no pod counts during the rollout"]
    problems = []
    for index, moment in enumerate(moments):
        following = moments[index + 1] if index + 1 < len(moments) else None
        if following is not None and following.t - moment.t < lasting_s:
            continue
        if moment.pods > replicas + surge:
            problems.append(
                f"t={moment.t:.1f}s ({moment.cause}): {moment.pods} pods > {replicas} replicas + "
                f"maxSurge {surge}"
            )
        if moment.ready < replicas - unavailable:
            problems.append(
                f"t={moment.t:.1f}s ({moment.cause}): {moment.ready} ready < {replicas} replicas - "
                f"maxUnavailable {unavailable}"
            )
    return problems


def replicaset_bound_problems(
    samples: Sequence[Mapping[str, Any]],
    owner: str,
    replicas: int,
    surge: int,
    *,
    since_t: float,
    until_t: float,
) -> list[str]:
    """The Deployment controller's own decisions: after every recorded ReplicaSet change of
    `owner` (names `owner-<hash>`) in [since_t, until_t], the ReplicaSets together ask for at most
    replicas + surge pods. No sample in the window is a problem."""
    specs: dict[str, int] = {}
    problems, seen = [], 0
    for sample in samples:
        name = str(sample.get("name"))
        if not name.startswith(f"{owner}-"):
            continue
        if sample.get("deleted"):
            specs.pop(name, None)
        else:
            specs[name] = int(sample.get("spec_replicas") or 0)
        t = float(sample.get("t", 0.0))
        if not since_t <= t <= until_t:
            continue
        seen += 1
        asked = sum(specs.values())
        if asked > replicas + surge:
            shown = ", ".join(f"{n} {v}" for n, v in sorted(specs.items()))
            problems.append(
                f"t={t:.1f}s: its ReplicaSets ask for {asked} pods ({shown}) > {replicas} "
                f"replicas + maxSurge {surge}"
            )
    if not seen:
        return ["the recorder observed no ReplicaSet change during the rollout"]
    return problems


def rollout_seen_problems(
    histories: Mapping[str, Sequence[Any]], old_image: str, new_image: str, replicas: int
) -> list[str]:
    """The recorder saw the rollout happen: `replicas` pods of the new image become Ready and
    `replicas` pods of the old image go (terminating or deleted). `histories` maps a pod name to
    its recorded views (None once deleted)."""
    new_ready = set()
    old_gone = set()
    for name, views in histories.items():
        images = {view.image for view in views if view is not None}
        if new_image in images and any(v is not None and v.ready for v in views):
            new_ready.add(name)
        if old_image in images and any(v is None or v.terminating for v in views):
            old_gone.add(name)
    problems = []
    if len(new_ready) < replicas:
        problems.append(
            f"the recorder saw {len(new_ready)} pods of {new_image} become Ready, expected "
            f"{replicas}"
        )
    if len(old_gone) < replicas:
        problems.append(
            f"the recorder saw {len(old_gone)} pods of {old_image} go, expected {replicas}"
        )
    return problems


# -- rolling update, answer by answer --------------------------------------------------------------
#
# Every answer is matched to the pod that served it, and that pod's moments from the recorder: when
# the kubelet reported it Ready, when the EndpointSlice controller listed it as ready for the
# Service, its first answer through the Service (kube-proxy routes to it); when it was told to
# stop (deletionTimestamp), when the slice stopped listing it as ready, its last answer. Recorder
# times are this machine's clock; answers carry the prober's, so they are shifted by the measured
# clock offset and every comparison allows for its uncertainty.

KUBE_PROXY = "kube-proxy (the node's service proxy)"
SLICE_CONTROLLER = "the EndpointSlice controller (kube-controller-manager)"


@dataclass(frozen=True)
class PodSpan:
    """One pod's life as the recorder saw it (this machine's clock): first Ready, first told to
    stop (terminating or deleted)."""

    image: str = ""
    ready: float | None = None
    terminating: float | None = None


def pod_span(history: Sequence[tuple[float, float, Any]]) -> PodSpan:
    """From `Recorder.pod_history`: (t, wall, view or None once deleted)."""
    image, ready, terminating = "", None, None
    for _, wall, view in history:
        if view is None or view.terminating:
            terminating = wall if terminating is None else terminating
            continue
        image = image or view.image
        if view.ready and ready is None and terminating is None:
            ready = wall
    return PodSpan(image, ready, terminating)


@dataclass(frozen=True)
class SliceSpan:
    """When the Service's EndpointSlices first listed a pod as ready, and when they last stopped
    (not ready, terminating, or gone) and did not list it again. None: not seen."""

    joined: float | None = None
    left: float | None = None


def slice_spans(samples: Sequence[Mapping[str, Any]], service: str) -> dict[str, SliceSpan]:
    """Replay the recorder's EndpointSlice samples (in order) of `service`'s slices."""
    slices: dict[str, set[str]] = {}
    joined: dict[str, float] = {}
    left: dict[str, float] = {}
    for sample in samples:
        name = str(sample.get("name"))
        if sample.get("deleted"):
            if name not in slices:
                continue
            slices.pop(name)
        elif sample.get("service") != service:
            continue
        else:
            slices[name] = {
                str(e["pod"]) for e in sample.get("endpoints") or [] if e.get("ready") and e["pod"]
            }
        ready_now = set().union(*slices.values()) if slices else set()
        wall = float(sample["wall"])
        for pod in ready_now:
            joined.setdefault(pod, wall)
            # Listed again (a readiness flap): it left for good only at its last leaving.
            left.pop(pod, None)
        for pod in set(joined) - ready_now:
            left.setdefault(pod, wall)
    return {pod: SliceSpan(joined.get(pod), left.get(pod)) for pod in set(joined) | set(left)}


JSONish = dict[str, Any]


@dataclass(frozen=True)
class Routing:
    """One pod, answer by answer (this machine's clock; `first`/`last` are answer starts)."""

    pod: str
    image: str
    ready: float | None
    joined: float | None
    first: float | None
    terminating: float | None
    left: float | None
    last: float | None
    answers: int
    #: Answers that started before the pod was Ready (beyond the clock allowance).
    early: int
    #: Answers that started after the pod was told to stop: expected within the routing lag.
    draining: int
    #: Answers that started later than `left` plus the routing-lag bound.
    late: int
    #: Where lags are measured from when the pod joined before traffic began.
    since: float

    @property
    def slice_in_s(self) -> float | None:
        """Ready -> listed ready in the EndpointSlice."""
        return _lag(self.ready, self.joined)

    @property
    def first_answer_s(self) -> float | None:
        """Listed ready (or traffic start, if later) -> first answer through the Service."""
        return _lag(None if self.joined is None else max(self.joined, self.since), self.first)

    @property
    def slice_out_s(self) -> float | None:
        """Told to stop -> no longer listed ready."""
        return _lag(self.terminating, self.left)

    @property
    def last_answer_s(self) -> float | None:
        """No longer listed ready -> last answer (negative: it stopped answering before)."""
        return _lag(self.left, self.last)

    def to_dict(self, origin: float) -> JSONish:
        """For the report's figures: times in seconds from `origin`, lags in seconds."""

        def at(wall: float | None) -> float | None:
            return None if wall is None else round(wall - origin, 3)

        def lag(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "pod": self.pod,
            "image": self.image,
            "ready_s": at(self.ready),
            "in_slice_s": at(self.joined),
            "first_answer_s": at(self.first),
            "terminating_s": at(self.terminating),
            "out_of_slice_s": at(self.left),
            "last_answer_s": at(self.last),
            "ready_to_slice_s": lag(self.slice_in_s),
            "slice_to_first_answer_s": lag(self.first_answer_s),
            "terminating_to_out_s": lag(self.slice_out_s),
            "out_to_last_answer_s": lag(self.last_answer_s),
            "answers": self.answers,
            "answers_before_ready": self.early,
            "answers_while_terminating": self.draining,
            "answers_after_leaving": self.late,
        }


def _lag(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def routing_table(
    answers: Sequence[Answer],
    pods: Mapping[str, PodSpan],
    spans: Mapping[str, SliceSpan],
    *,
    offset: float,
    uncertainty: float,
    lag_s: float,
    since: float,
    early_allowance_s: float,
) -> list[Routing]:
    """One row per pod the recorder saw or an answer named. `offset` is prober clock minus this
    machine's; `uncertainty` how far off it may be. An answer is early when it started more than
    `uncertainty + early_allowance_s` before the pod's Ready, and late when it started more than
    `lag_s + uncertainty` after the pod left the slice (or was told to stop, if it never
    left)."""
    served: dict[str, list[float]] = {}
    for answer in answers:
        if answer.ok and answer.pod:
            served.setdefault(answer.pod, []).append(answer.start - offset)
    rows = []
    for pod in sorted(set(pods) | set(served)):
        span, where = pods.get(pod, PodSpan()), spans.get(pod, SliceSpan())
        starts = sorted(served.get(pod, []))
        ready = span.ready
        early = (
            len(starts)
            if ready is None
            else sum(1 for s in starts if s < ready - uncertainty - early_allowance_s)
        )
        stop = span.terminating
        out = where.left if where.left is not None else stop
        rows.append(
            Routing(
                pod=pod,
                image=span.image,
                ready=ready,
                joined=where.joined,
                first=starts[0] if starts else None,
                terminating=stop,
                left=where.left,
                last=starts[-1] if starts else None,
                answers=len(starts),
                early=early,
                draining=0 if stop is None else sum(1 for s in starts if s > stop),
                late=0 if out is None else sum(1 for s in starts if s > out + lag_s + uncertainty),
                since=since,
            )
        )
    return rows


def routing_lag_problems(
    rows: Sequence[Routing],
    *,
    lag_s: float,
    slice_lag_s: float,
    uncertainty: float,
    traffic_end: float,
    join_lag_s: float | None = None,
) -> list[str]:
    """Each sentence names the part the evidence points at: the EndpointSlice controller when the
    slice followed a pod's Ready or stop late, kube-proxy when answers did not follow the slice
    (a pod listed ready got nothing for longer than `lag_s`, or one that left kept answering, or
    one answered before it was Ready while the slice did not list it). `traffic_end`: the last
    answer's start (this machine's clock): a pod joined later than `traffic_end - lag_s` cannot
    be judged on its first answer yet. A pod listed before the traffic began is judged only on
    getting nothing at all: its first answer is the fresh Service's start-up (kube-proxy's first
    rules for it, the prober's first connections), not a routing change."""
    problems: list[str] = []
    # Joining late costs no request (the other pods answer meanwhile), so its bound may be wider
    # than leaving's, which the workload's drain must cover.
    join_s = lag_s if join_lag_s is None else join_lag_s
    join_allowance = join_s + uncertainty
    for row in rows:
        who = f"pod {row.pod}" + (f" ({row.image.rsplit(':', 1)[-1]})" if row.image else "")
        if row.slice_in_s is not None and row.slice_in_s > slice_lag_s:
            problems.append(
                f"{SLICE_CONTROLLER} listed {who} as ready {row.slice_in_s:.2f}s after the kubelet "
                f"reported it Ready (at most {slice_lag_s}s)"
            )
        if row.slice_out_s is not None and row.slice_out_s > slice_lag_s:
            problems.append(
                f"{SLICE_CONTROLLER} kept {who} listed as ready {row.slice_out_s:.2f}s after it "
                f"was told to stop (at most {slice_lag_s}s)"
            )
        if row.ready is not None and row.joined is None:
            since_ready = max(row.ready, row.since)
            end = min(traffic_end, row.terminating if row.terminating is not None else traffic_end)
            if end - since_ready > slice_lag_s:
                problems.append(
                    f"{SLICE_CONTROLLER} never listed {who} as ready in the Service's "
                    f"EndpointSlice, in the {end - since_ready:.1f}s it was Ready while traffic "
                    f"ran (at most {slice_lag_s}s expected)"
                )
        told = row.terminating
        still_listed = row.left is None and row.joined is not None
        if told is not None and still_listed and traffic_end - told > slice_lag_s:
            problems.append(
                f"{SLICE_CONTROLLER} still listed {who} as ready "
                f"{traffic_end - told:.1f}s after it was told to stop"
            )
        if row.early:
            listed_early = (
                row.joined is not None and row.ready is not None and row.joined < row.ready
            )
            part = SLICE_CONTROLLER if listed_early else KUBE_PROXY
            problems.append(
                f"{row.early} answers came from {who} before the kubelet reported it Ready: "
                + (
                    f"{part} listed it as ready first"
                    if listed_early
                    else f"{part} routed to it although the EndpointSlice did not list it as ready"
                )
            )
        if row.late:
            problems.append(
                f"{KUBE_PROXY} kept routing to {who} after it left the EndpointSlice: {row.late} "
                f"answers started more than {lag_s}s (+{uncertainty:.2f}s clock allowance) "
                f"later, the last {row.last_answer_s:.2f}s after it left"
            )
        if row.joined is None or (row.left is not None and row.left <= max(row.joined, row.since)):
            continue
        start = max(row.joined, row.since)
        # Listed ready from `start` until it left (or the traffic ended): long enough to be hit.
        listed = min(traffic_end, row.left if row.left is not None else traffic_end) - start
        if row.first is None and listed > join_allowance:
            problems.append(
                f"{KUBE_PROXY} routed nothing to {who} in {listed:.1f}s of traffic through "
                f"the Service while the EndpointSlice listed it as ready (at most {join_s}s "
                "expected)"
            )
        elif (
            row.first_answer_s is not None
            and row.first_answer_s > join_allowance
            and row.joined > row.since
        ):
            problems.append(
                f"{KUBE_PROXY} routed the first request to {who} {row.first_answer_s:.2f}s after "
                f"the EndpointSlice listed it as ready (at most {join_s}s, "
                f"+{uncertainty:.2f}s clock allowance)"
            )
    return problems


def failed_request_problems(
    failed: Sequence[Answer],
    ok: Sequence[Answer],
    rows: Sequence[Routing],
    *,
    offset: float,
    uncertainty: float,
    lag_s: float,
    workload: str,
    origin: float,
    routed: float | None = None,
) -> list[str]:
    """Which part failed requests point at, from where the pods stood when each one started:

    - within `lag_s` (+ clock allowance) after a pod left the EndpointSlice: the routing lag the
      workload's graceful shutdown must cover (`workload` names it: its preStop drain and server);
    - later than that after a pod left, while every pod listed ready then answered requests
      started after the failure (so the failures were not theirs): kube-proxy still sent them to
      a pod that had left;
    - otherwise, while every pod in the slice was Ready and none had just left: the workload.

    Times in the sentences are seconds from `origin` (this machine's clock). Failures that
    started before `routed` (the first answer through the fresh Service: until then kube-proxy
    may not have its first rules for it) are not judged here; `failed_before` counts them.
    """
    if not failed:
        return []
    allowance = lag_s + uncertainty
    answered: dict[str, list[float]] = {}
    for answer in ok:
        if answer.pod:
            answered.setdefault(answer.pod, []).append(answer.start - offset)
    shutdown: list[tuple[float, str]] = []
    stale: list[tuple[float, str]] = []
    serving: list[float] = []
    unlisted: list[float] = []
    none_ready: list[float] = []
    for answer in failed:
        t = answer.start - offset
        if routed is not None and t < routed:
            continue
        just_left = [
            r.pod
            for r in rows
            if r.left is not None and r.left - uncertainty <= t <= r.left + allowance
        ]
        if just_left:
            shutdown.append((t, just_left[0]))
            continue
        listed = [
            r
            for r in rows
            if r.joined is not None and r.joined <= t and (r.left is None or t < r.left)
        ]
        if not listed:
            ready = [
                r.pod
                for r in rows
                if r.ready is not None
                and r.ready <= t
                and (r.terminating is None or t < r.terminating)
            ]
            (unlisted if ready else none_ready).append(t)
            continue
        alive = all(any(s >= t for s in answered.get(r.pod, [])) for r in listed)
        gone = [r.pod for r in rows if r.left is not None and r.left + allowance < t]
        if gone and alive:
            stale.append((t, gone[-1]))
        else:
            serving.append(t)
    problems = []
    if unlisted:
        problems.append(
            f"{len(unlisted)} requests failed while the Service's EndpointSlice listed no pod as "
            f"ready although the kubelet reported pods Ready: {SLICE_CONTROLLER} did not list "
            f"them (first at {unlisted[0] - origin:+.1f}s)"
        )
    if none_ready:
        problems.append(
            f"{len(none_ready)} requests failed while no pod of the Service was Ready "
            f"(first at {none_ready[0] - origin:+.1f}s)"
        )
    if stale:
        pods = sorted({pod for _, pod in stale})
        problems.append(
            f"{len(stale)} requests failed more than {lag_s}s after pod(s) {', '.join(pods)} left "
            f"the EndpointSlice, while every pod it listed as ready went on answering: "
            f"{KUBE_PROXY} still sent requests to a pod that had left "
            f"(first at {stale[0][0] - origin:+.1f}s)"
        )
    if shutdown:
        pods = sorted({pod for _, pod in shutdown})
        problems.append(
            f"{len(shutdown)} requests failed within {lag_s}s of pod(s) {', '.join(pods)} leaving "
            f"the EndpointSlice, the routing lag a stopping pod must keep serving through: "
            f"{workload} stopped serving too soon (first at {shutdown[0][0] - origin:+.1f}s)"
        )
    if serving:
        problems.append(
            f"{len(serving)} requests failed while every pod in the EndpointSlice was Ready and "
            f"none had just left it: {workload} failed them (first at {serving[0] - origin:+.1f}s)"
        )
    return problems


DEPLOYMENT_CONTROLLER = "the Deployment controller (kube-controller-manager)"
REPLICASET_CONTROLLER = "the ReplicaSet controller (kube-controller-manager)"


def started_up_at(
    routed: float | None, converged: float | None, changed: float | None
) -> float | None:
    """When the fresh Service counts as started up: once every old pod has answered through it
    (each node's kube-proxy had rules for all of them), never later than the image change (from
    then on every failure is judged); at its first answer when it never converged before that.

    All on this machine's clock; None when it never answered.
    """
    if routed is None:
        return None
    end = converged if converged is not None else routed
    if changed is not None:
        end = min(end, changed)
    return max(routed, end)


def failed_before(failed: Sequence[Answer], *, offset: float, routed: float | None) -> int:
    """Failed requests that started before `routed` (see `failed_request_problems`)."""
    if routed is None:
        return 0
    return sum(1 for answer in failed if answer.start - offset < routed)


def converged_at(rows: Sequence[Routing], pods: Iterable[str]) -> float | None:
    """When the last of `pods` first answered (this machine's clock); None if one never did."""
    by_pod = {row.pod: row.first for row in rows}
    firsts = [by_pod.get(pod) for pod in pods]
    if not firsts or None in firsts:
        return None
    return max(first for first in firsts if first is not None)


def rollout_stall(
    deployment: Mapping[str, Any] | None,
    replicasets: Sequence[Mapping[str, Any]],
    new_image: str,
    replicas: int,
) -> str:
    """Why a rollout did not finish, from the last recorded Deployment and ReplicaSet samples:
    which controller the evidence points at, or that the new pods did not become Ready."""
    if deployment is None:
        return "no Deployment status was recorded"
    generation, observed = deployment.get("generation", 0), deployment.get("observed_generation", 0)
    if observed < generation:
        return (
            f"{DEPLOYMENT_CONTROLLER} never acted on the new spec: status.observedGeneration "
            f"{observed} < metadata.generation {generation}"
        )
    latest: dict[str, Mapping[str, Any]] = {}
    for sample in replicasets:
        if sample.get("deleted"):
            latest.pop(str(sample.get("name")), None)
        else:
            latest[str(sample.get("name"))] = sample
    new = [rs for rs in latest.values() if rs.get("image") == new_image]
    if not new:
        return f"{DEPLOYMENT_CONTROLLER} made no ReplicaSet for {new_image}"
    rs = new[-1]
    wanted, made, ready = rs.get("spec_replicas", 0), rs.get("replicas", 0), rs.get("ready", 0)
    if made < wanted:
        return (
            f"{REPLICASET_CONTROLLER} made {made} of the {wanted} pods replicaset/{rs['name']} "
            "asks for"
        )
    if ready < wanted:
        return (
            f"{ready} of the {made} new pods of replicaset/{rs['name']} became Ready (the kubelet "
            "runs their readiness probes; see the pods' events)"
        )
    return (
        f"{DEPLOYMENT_CONTROLLER} stopped scaling: replicaset/{rs['name']} asks for {wanted} "
        f"of {replicas} pods, all Ready, and the rollout went no further"
    )
