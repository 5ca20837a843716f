"""CPU autoscaling's decision functions: the HPA's decisions checked against its formula and
its stored behaviour, the replica bounds, the load it followed.

Pure and cluster-free, each unit-tested (test_proofs.py beside it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suite.traffic_proofs import events_for

# -- autoscaling ---------------------------------------------------------------------------------


def baseline_problem(
    deployment: Mapping[str, Any] | None, hpa: Mapping[str, Any] | None, minimum: int
) -> str | None:
    """Before the load: the Deployment has `minimum` ready replicas and the HPA agrees."""
    if deployment is None or hpa is None:
        return "no Deployment or HPA sample was recorded before the load"
    ready, spec = deployment.get("ready"), deployment.get("spec_replicas")
    current = hpa.get("current_replicas")
    if ready == spec == minimum and current in (minimum, 0):
        return None
    return (
        f"before the load: {ready} ready of {spec} replicas, HPA current {current}; expected "
        f"{minimum} (the baseline a scale-out is measured from)"
    )


@dataclass(frozen=True)
class ScaleOut:
    """When the HPA first asked for more replicas, and the reading that made it."""

    t_above: float | None
    t_desired: float | None
    problems: list[str]


def scale_out_evidence(
    samples: Sequence[Mapping[str, Any]], since_t: float, target: int, minimum: int
) -> ScaleOut:
    """Since the load began: a CPU reading above `target` came no later than the first sample
    asking for more than `minimum` replicas."""
    after = [s for s in samples if s.get("t", 0.0) >= since_t and not s.get("deleted")]
    desired = next((s for s in after if (s.get("desired_replicas") or 0) > minimum), None)
    above = next((s for s in after if (s.get("cpu_utilization") or 0) > target), None)
    problems = []
    if desired is None:
        problems.append(f"no HPA status since the load asked for more than {minimum} replica(s)")
    if above is None:
        readings = [s.get("cpu_utilization") for s in after]
        problems.append(f"no HPA reading above the {target}% target since the load: {readings}")
    if desired is not None and above is not None and above["t"] > desired["t"]:
        problems.append(
            f"the HPA asked for {desired['desired_replicas']} replicas at t={desired['t']:.1f}s "
            f"before any reading above target (first at t={above['t']:.1f}s)"
        )
    return ScaleOut(above["t"] if above else None, desired["t"] if desired else None, problems)


def rescale_event_problem(
    events: Iterable[Mapping[str, Any]], hpa: str, since_t: float
) -> str | None:
    """The HPA's SuccessfulRescale event since `since_t` names CPU as the reason."""
    mine = [
        e
        for e in events_for(events, f"horizontalpodautoscaler/{hpa}")
        if e.get("t", 0.0) >= since_t
    ]
    if any(
        e.get("reason") == "SuccessfulRescale" and "cpu" in str(e.get("message")).lower()
        for e in mine
    ):
        return None
    seen = "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in mine[-3:]) or "none"
    return f"no SuccessfulRescale event of hpa/{hpa} citing CPU since the load; its events: {seen}"


def first_t(
    samples: Iterable[Mapping[str, Any]], since_t: float, key: str, predicate: Any
) -> float | None:
    """`t` of the first sample since `since_t` whose `key` satisfies `predicate`."""
    for sample in samples:
        fresh = sample.get("t", 0.0) >= since_t and not sample.get("deleted")
        if fresh and predicate(sample.get(key)):
            return float(sample["t"])
    return None


# -- autoscaling: the HPA's decisions, checked against its formula and its stored behaviour -------
#
# The HorizontalPodAutoscaler controller (kubernetes v1.34, pkg/controller/podautoscaler:
# replica_calculator.go GetResourceReplicas, horizontal.go reconcileAutoscaler and
# normalizeDesiredReplicasWithBehaviors) decides at every sync:
#
# 1. the raw recommendation from the reading: ratio = U / target, U being the average utilization
#    of the pods it counts as ready (the integer it writes to status.currentMetrics). Within
#    tolerance (1 - down <= ratio <= 1 + up, 0.1 each by default) it keeps the current count,
#    else ceil(ratio x ready pods). Pods without a reading are counted at 100 % of their request
#    on a scale-down and at 0 % on a scale-up, unready pods at 0 % on a scale-up, and a result
#    that would turn the direction round keeps the current count;
# 2. stabilization: the highest recommendation inside the scale-down window and the lowest inside
#    the scale-up window bound the change;
# 3. the rate policies: from the count at the start of each policy's period, `Pods` adds or
#    removes that many, `Percent` that share (rounded up on a scale-up, down on a scale-down);
#    selectPolicy Max takes the larger change, Min the smaller, Disabled none;
# 4. minReplicas..maxReplicas.
#
# The recorder sees the status writes, not each sync, so every check takes the widest range the
# upstream algorithm allows: how many pods were counted as ready is not in the status (any number
# from 1 to currentReplicas; exactly 1 when currentReplicas is 1), and whether a reading or a
# scale event fell inside a window or a period is known only to the sync period plus a slack.

#: kube-controller-manager --horizontal-pod-autoscaler-tolerance default; a tolerance stored in
#: the HPA's behaviour (HPAConfigurableTolerance) wins, as in horizontal.go tolerancesForHpa.
HPA_TOLERANCE = 0.1
#: The controller's scale-down stabilization when the stored behaviour leaves it unset
#: (--horizontal-pod-autoscaler-downscale-stabilization default).
HPA_DOWNSCALE_WINDOW_S = 300.0
#: Whose decisions these are: named when the recorded status shows the controller acted (or
#: never did).
HPA_CONTROLLER = "the HorizontalPodAutoscaler controller (kube-controller-manager)"
METRICS_API = "the resource metrics API (metrics-server)"


@dataclass(frozen=True)
class ScalingPolicy:
    """One rate policy of a direction (autoscaling/v2 HPAScalingPolicy)."""

    kind: str  # Pods | Percent
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    """One direction of an HPA's behaviour as stored (upstream defaults for unset fields)."""

    window_s: float
    select: str  # Max | Min | Disabled
    policies: tuple[ScalingPolicy, ...]
    tolerance: float

    def describe(self) -> str:
        """`window 10s, Max of [Percent 100/15s], tolerance 0.1` for figures and messages."""
        policies = ", ".join(f"{p.kind} {p.value}/{p.period_s:g}s" for p in self.policies)
        return (
            f"window {self.window_s:g}s, {self.select} of [{policies}], "
            f"tolerance {self.tolerance:g}"
        )


@dataclass(frozen=True)
class HpaRules:
    """What the HPA as stored lets its controller do: the bounds every decision is checked on."""

    minimum: int
    maximum: int
    target: int  # CPU averageUtilization: % of the pods' request
    up: ScalingRules
    down: ScalingRules

    def describe(self) -> str:
        """One line for figures and messages."""
        return (
            f"{self.minimum}..{self.maximum} replicas at {self.target}% CPU; scale-up "
            f"{self.up.describe()}; scale-down {self.down.describe()}"
        )


_DEFAULT_UP = (ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0))
_DEFAULT_DOWN = (ScalingPolicy("Percent", 100, 15.0),)


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number: 0.1, "0.1", "100m" (-> 0.1)."""
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


def _scaling_rules(stored: Mapping[str, Any] | None, *, up: bool, tolerance: float) -> ScalingRules:
    stored = stored or {}
    window = 0.0 if up else HPA_DOWNSCALE_WINDOW_S
    policies: tuple[ScalingPolicy, ...] = _DEFAULT_UP if up else _DEFAULT_DOWN
    if stored.get("stabilizationWindowSeconds") is not None:
        window = float(stored["stabilizationWindowSeconds"])
    if stored.get("policies") is not None:
        policies = tuple(
            ScalingPolicy(
                str(policy.get("type")),
                int(policy.get("value") or 0),
                float(policy.get("periodSeconds") or 0),
            )
            for policy in stored["policies"]
        )
    own = stored.get("tolerance")
    return ScalingRules(
        window_s=window,
        select=str(stored.get("selectPolicy") or "Max"),
        policies=policies,
        tolerance=quantity(own) if own is not None else tolerance,
    )


def hpa_rules(hpa: Mapping[str, Any], *, tolerance: float = HPA_TOLERANCE) -> HpaRules:
    """The rules of an autoscaling/v2 HorizontalPodAutoscaler as stored: its CPU utilization
    target, min..max and behaviour (unset fields as upstream defaults them). ValueError when it
    has no CPU utilization target."""
    spec = hpa.get("spec") or {}
    target = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            target = (resource.get("target") or {}).get("averageUtilization")
    if not target:
        name = (hpa.get("metadata") or {}).get("name")
        raise ValueError(f"hpa/{name} has no CPU averageUtilization target")
    behavior = spec.get("behavior") or {}
    return HpaRules(
        minimum=int(spec.get("minReplicas") or 1),
        maximum=int(spec.get("maxReplicas") or 0),
        target=int(target),
        up=_scaling_rules(behavior.get("scaleUp"), up=True, tolerance=tolerance),
        down=_scaling_rules(behavior.get("scaleDown"), up=False, tolerance=tolerance),
    )


def recommendation_range(
    cpu: int, current: int, target: int, up_tolerance: float, down_tolerance: float
) -> tuple[int, int]:
    """The lowest and highest raw recommendation GetResourceReplicas can return for a status
    reading of `cpu` % with `current` replicas, whatever number of pods it counted as ready and
    however many had no reading yet:

    - within tolerance: `current`;
    - `current` 1: exactly ceil(ratio) (the one pod is the one that was read);
    - above target: from min(`current`, ceil(ratio)) (unready pods at 0 % keep the count; a
      lone ready pod gives ceil(ratio)) to ceil(ratio x `current`), or to
      ceil((cpu + 1) / target x (`current` - 1)) when a pod without a reading hides the fraction
      the status truncates;
    - below target: from ceil(ratio) (one pod counted) to `current` (pods without a reading
      counted at 100 % keep it).

    The ratio is computed as upstream does (float division, then times the count, then ceil), so
    a reading on the tolerance's edge falls on the same side.
    """
    ratio = cpu / target
    if (1.0 - down_tolerance) <= ratio <= (1.0 + up_tolerance):
        return current, current
    if current <= 1:
        exact = math.ceil(ratio * 1)
        return exact, exact
    if ratio > 1.0:
        high = max(math.ceil(ratio * current), math.ceil((cpu + 1) / target * (current - 1)))
        return min(current, math.ceil(ratio)), max(current, high)
    return math.ceil(ratio), current


def status_written(sample: Mapping[str, Any] | None) -> bool:
    """Whether a controller ever wrote this HPA sample's status: conditions, a scale time, an
    observed generation or a replica count."""
    if not sample or sample.get("deleted"):
        return False
    return bool(
        sample.get("conditions")
        or sample.get("last_scale_time")
        or sample.get("observed_generation")
        or sample.get("current_replicas")
    )


@dataclass(frozen=True)
class Rescale:
    """One decision of the HPA controller the recorder saw, and the range it was checked on."""

    t: float
    current: int
    desired: int
    cpu: int | None
    low: int
    high: int
    basis: str

    @property
    def ok(self) -> bool:
        """The decision lies within what the formula and the stored behaviour allow."""
        return self.low <= self.desired <= self.high

    def describe(self) -> str:
        """`1 -> 4 at t=32.5s on 185% CPU (allowed 4..4)` for the figures."""
        return (
            f"{self.current} -> {self.desired} at t={self.t:.1f}s on {self.cpu}% CPU "
            f"(allowed {self.low}..{self.high})"
        )


def _replicas(sample: Mapping[str, Any]) -> tuple[int, int]:
    return int(sample.get("current_replicas") or 0), int(sample.get("desired_replicas") or 0)


def rescale_indexes(samples: Sequence[Mapping[str, Any]]) -> list[int]:
    """Where the HPA controller rescaled among its status samples: a rescale sets a new
    lastScaleTime, and only then does the controller write a desiredReplicas apart from
    currentReplicas (horizontal.go setStatus). A write that keeps a stale desired count after a
    failed sync (no metrics yet: desired 0) sets no new lastScaleTime and is no decision."""
    found: list[int] = []
    last_scaled: Any = None
    for index, sample in enumerate(samples):
        if not status_written(sample):
            continue
        current, desired = _replicas(sample)
        scaled = sample.get("last_scale_time")
        if current > 0 and desired != current and scaled and scaled != last_scaled:
            found.append(index)
        last_scaled = scaled
    return found


def _period_start(
    current: int, events: Sequence[tuple[float, int]], t: float, period_s: float, slack_s: float
) -> tuple[int, int]:
    """(lowest, highest) count at the start of a policy's period (current - added + removed):
    `events` are the earlier rescales (t, change); one within `slack_s` of the period's start
    may have been inside it or not."""

    def total(sign: int, cutoff: float) -> int:
        return sum(abs(change) for when, change in events if change * sign > 0 and when > cutoff)

    inside, maybe = t - period_s + slack_s, t - period_s - slack_s
    return (
        current - total(1, maybe) + total(-1, inside),
        current - total(1, inside) + total(-1, maybe),
    )


def rate_limit(
    rules: ScalingRules,
    current: int,
    events: Sequence[tuple[float, int]],
    t: float,
    slack_s: float,
    *,
    up: bool,
) -> tuple[int, int]:
    """(lowest, highest) limit the rate policies set on a change from `current` at `t`: the most
    replicas a scale-up may reach (never below `current`), or the fewest a scale-down must keep
    (never above `current`); horizontal.go calculateScaleUpLimitWithScalingRules and
    calculateScaleDownLimitWithBehaviors."""
    if rules.select == "Disabled" or not rules.policies:
        return current, current
    lows, highs = [], []
    for policy in rules.policies:
        bounds = []
        for start in _period_start(current, events, t, policy.period_s, slack_s):
            if policy.kind == "Pods":
                bounds.append(start + policy.value if up else start - policy.value)
            elif up:
                bounds.append(math.ceil(start * (1 + policy.value / 100)))
            else:
                bounds.append(int(start * (1 - policy.value / 100)))
        lows.append(bounds[0])
        highs.append(bounds[1])
    # Max: the larger change (up: the highest limit; down: the lowest); Min: the smaller.
    pick = max if (rules.select == "Max") == up else min
    low, high = pick(lows), pick(highs)
    if up:
        return max(low, current), max(high, current)
    return min(low, current), min(high, current)


def check_rescale(
    samples: Sequence[Mapping[str, Any]],
    index: int,
    rules: HpaRules,
    *,
    sync_s: float,
    slack_s: float,
) -> Rescale:
    """The range the rescale decision `samples[index]` (HPA status samples in time order) had
    to fall in: the raw recommendation of its reading (`recommendation_range`), stabilized by
    the recommendations of the earlier readings inside each window, limited by the rate policies
    (the earlier rescales inside each period) and by min..max.

    A reading holds from its write to the next (the controller writes only a changed status);
    the last sync that used it came at most `sync_s` before the next write. It is surely inside
    a window when that last use, less `slack_s` (watch latency, clocks), is after the window's
    start; possibly inside when the next write, plus `slack_s`, is. The lowest bound counts only
    what is surely inside a scale-down window and whatever may be inside a scale-up window; the
    highest bound the other way round."""
    decision = samples[index]
    t = float(decision["t"])
    current, desired = _replicas(decision)
    cpu = decision.get("cpu_utilization")
    if current > rules.maximum or current < rules.minimum:
        # reconcileAutoscaler: a count outside min..max goes straight to the nearer bound.
        bound = rules.maximum if current > rules.maximum else rules.minimum
        return Rescale(t, current, desired, cpu, bound, bound, f"{current} outside min..max")
    if cpu is None:
        return Rescale(t, current, desired, None, current, current, "no CPU reading in that status")
    tolerances = (rules.up.tolerance, rules.down.tolerance)
    low0, high0 = recommendation_range(int(cpu), current, rules.target, *tolerances)
    up_low, up_high, down_low, down_high = low0, high0, low0, high0
    for before in range(index):
        sample = samples[before]
        reading, then = sample.get("cpu_utilization"), int(sample.get("current_replicas") or 0)
        if not status_written(sample) or reading is None or then <= 0:
            continue
        start, end = float(sample["t"]), float(samples[before + 1]["t"])
        low, high = recommendation_range(int(reading), then, rules.target, *tolerances)
        last_use = max(start, end - sync_s)
        if rules.up.window_s > 0:
            if last_use - slack_s > t - rules.up.window_s:
                up_high = min(up_high, high)
            if end + slack_s > t - rules.up.window_s:
                up_low = min(up_low, low)
        if rules.down.window_s > 0:
            if last_use - slack_s > t - rules.down.window_s:
                down_low = max(down_low, low)
            if end + slack_s > t - rules.down.window_s:
                down_high = max(down_high, high)
    stable_low = min(max(current, up_low), down_low)
    stable_high = min(max(current, up_high), down_high)
    events = []
    for earlier in rescale_indexes(samples[:index]):
        was, wanted = _replicas(samples[earlier])
        events.append((float(samples[earlier]["t"]), wanted - was))
    up_limit = rate_limit(rules.up, current, events, t, slack_s, up=True)
    down_limit = rate_limit(rules.down, current, events, t, slack_s, up=False)

    def limited(stable: int, up_to: int, down_to: int) -> int:
        if stable > current:
            return min(stable, rules.maximum, up_to)
        if stable < current:
            return max(stable, rules.minimum, down_to)
        return current

    basis = (
        f"reading {cpu}% against {rules.target}% with {current} replica(s): formula "
        f"{low0}..{high0}, stabilized {stable_low}..{stable_high}, rate limits up to "
        f"{up_limit[1]} and down to {down_limit[0]}, min {rules.minimum} max {rules.maximum}"
    )
    return Rescale(
        t,
        current,
        desired,
        int(cpu),
        limited(stable_low, up_limit[0], down_limit[0]),
        limited(stable_high, up_limit[1], down_limit[1]),
        basis,
    )


def rescale_problems(
    samples: Sequence[Mapping[str, Any]],
    rules: HpaRules,
    *,
    sync_s: float,
    slack_s: float,
) -> tuple[list[Rescale], list[str]]:
    """Every rescale the recorder saw in an HPA's samples, checked (`check_rescale`): the
    decisions, and one sentence per decision outside its range."""
    live = [sample for sample in samples if not sample.get("deleted")]
    decisions = [
        check_rescale(live, index, rules, sync_s=sync_s, slack_s=slack_s)
        for index in rescale_indexes(live)
    ]
    problems = [
        f"{HPA_CONTROLLER} rescaled {d.current} -> {d.desired} at t={d.t:.1f}s, outside the "
        f"{d.low}..{d.high} its formula (ceil(replicas x usage / target), tolerance "
        f"{rules.up.tolerance:g}) and the stored behaviour allow ({d.basis})"
        for d in decisions
        if not d.ok
    ]
    return decisions, problems


def replica_bound_problems(
    hpa_samples: Iterable[Mapping[str, Any]],
    deployment_samples: Iterable[Mapping[str, Any]],
    pod_counts: Iterable[tuple[float, int]],
    rules: HpaRules,
) -> list[str]:
    """Replicas stayed within the stored min..max the whole time: what the HPA asked for and
    counted, the Deployment's spec and status, and the pods that were not terminating."""
    low, high = rules.minimum, rules.maximum
    problems = []
    for sample in hpa_samples:
        if not status_written(sample):
            continue
        current, desired = _replicas(sample)
        if desired and not low <= desired <= high:
            problems.append(
                f"{HPA_CONTROLLER} asked for {desired} replicas at t={sample['t']:.1f}s, outside "
                f"the stored {low}..{high}"
            )
        if current > high:
            problems.append(f"hpa status counted {current} replicas at t={sample['t']:.1f}s")
    for sample in deployment_samples:
        if sample.get("deleted"):
            continue
        spec, replicas = int(sample.get("spec_replicas") or 0), int(sample.get("replicas") or 0)
        if not low <= spec <= high or replicas > high:
            problems.append(
                f"deployment spec.replicas {spec} (status {replicas}) at t={sample['t']:.1f}s, "
                f"outside the HPA's stored {low}..{high}"
            )
    for t, pods in pod_counts:
        if pods > high:
            problems.append(f"{pods} pods not terminating at t={t:.1f}s, above maxReplicas {high}")
    return problems[:5] + ([f"and {len(problems) - 5} more"] if len(problems) > 5 else [])


def before_load_problems(
    samples: Iterable[Mapping[str, Any]], t_load: float, rules: HpaRules
) -> list[str]:
    """The scale-out follows the load the scenario drove: before the load started, no reading
    above target and no desired count above the minimum."""
    problems = []
    for sample in samples:
        if sample.get("t", 0.0) >= t_load or not status_written(sample):
            continue
        cpu = sample.get("cpu_utilization")
        if cpu is not None and cpu > rules.target:
            problems.append(
                f"{METRICS_API} reported {cpu}% CPU (target {rules.target}%) at "
                f"t={sample['t']:.1f}s, before the load started (t={t_load:.1f}s)"
            )
        desired = int(sample.get("desired_replicas") or 0)
        if desired > rules.minimum:
            problems.append(
                f"{HPA_CONTROLLER} asked for {desired} replicas at t={sample['t']:.1f}s, before "
                f"the load started (t={t_load:.1f}s)"
            )
    return problems[:3]


def hpa_blame(sample: Mapping[str, Any] | None, hpa: str) -> str:
    """What an HPA's latest status points at when it does not scale: the controller that never
    wrote it, or the metrics it could not read; "" when it points at neither."""
    if sample is None or sample.get("deleted"):
        return f"hpa/{hpa} is not there"
    if not status_written(sample):
        return (
            f"hpa/{hpa} has no status at all (no conditions, no lastScaleTime, no "
            f"observedGeneration): {HPA_CONTROLLER} has never synced it"
        )
    conditions = sample.get("conditions") or {}
    active = str(conditions.get("ScalingActive", ""))
    if active.startswith("False/FailedGetResourceMetric"):
        return (
            f"the HPA controller cannot read CPU (ScalingActive={active}): {METRICS_API} "
            "gave it no reading for these pods"
        )
    able = str(conditions.get("AbleToScale", ""))
    if able.startswith("False/"):
        return f"the HPA controller cannot change the Deployment's scale (AbleToScale={able})"
    return ""
