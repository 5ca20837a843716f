"""Read back what the cluster admitted: the live objects, compared field by field with what a
scenario depends on.

An admission webhook, a policy or a defaulting change can rewrite what the suite submitted (a
probe period, a preStop hook, a Service's affinity, an HPA's behaviour). A scenario whose bounds
assume the submitted values would then prove nothing, or fail for a reason it cannot name. So
before its traffic starts each scenario states the fields it depends on and compares them with
the live objects (`problems`); each difference is one sentence naming the object, the field, the
value expected and the value seen.

`expected` is a nested mapping: a mapping is compared key by key, a list of mappings that carry a
`name` (containers, ports) is matched by name, anything else must be equal. `ABSENT` says the
field must not be set (e.g. no readiness gates, no session affinity timeout).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from suite.kube import name_of


class _Absent:
    def __repr__(self) -> str:
        return "<not set>"


#: The field must not be present (or be empty) on the live object.
ABSENT: Any = _Absent()


def _show(value: Any) -> str:
    if value is None or value is ABSENT:
        return "<not set>"
    return repr(value)


def _differences(expected: Any, actual: Any, path: str) -> Iterable[tuple[str, Any, Any]]:
    if expected is ABSENT:
        if actual not in (None, [], {}, ""):
            yield path, ABSENT, actual
        return
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            yield path, dict(expected), actual
            return
        for key, value in expected.items():
            yield from _differences(value, actual.get(key), f"{path}.{key}" if path else key)
        return
    named = (
        isinstance(expected, Sequence)
        and not isinstance(expected, str)
        and expected
        and all(isinstance(item, Mapping) and "name" in item for item in expected)
    )
    if named:
        by_name = {
            str(item.get("name")): item
            for item in (actual or [])
            if isinstance(item, Mapping) and "name" in item
        }
        for item in expected:
            name = str(item["name"])
            if name not in by_name:
                yield f"{path}[{name}]", "present", None
            else:
                rest = {k: v for k, v in item.items() if k != "name"}
                yield from _differences(rest, by_name[name], f"{path}[{name}]")
        return
    if expected != actual:
        yield path, expected, actual


def problems(obj: Mapping[str, Any], expected: Mapping[str, Any], *, kind: str) -> list[str]:
    """One sentence per field of `expected` that the live `obj` does not carry as stated:
    `pod/x: spec.containers[app].readinessProbe.periodSeconds is 30, expected 1`."""
    where = f"{kind}/{name_of(obj) or '?'}"
    return [
        f"{where}: {path} is {_show(actual)}, expected {_show(want)}"
        for path, want, actual in _differences(expected, obj, "")
    ]


def all_problems(
    objects: Iterable[Mapping[str, Any]], expected: Mapping[str, Any], *, kind: str
) -> list[str]:
    """`problems` for several objects (e.g. every pod of a Deployment); none at all is one."""
    found: list[str] = []
    count = 0
    for obj in objects:
        count += 1
        found += problems(obj, expected, kind=kind)
    if count == 0:
        found.append(f"no {kind} was there to read back")
    return found


def workload_problems(
    pods: Iterable[Mapping[str, Any]],
    pod_expected: Mapping[str, Any],
    service: Mapping[str, Any] | None = None,
    service_expected: Mapping[str, Any] | None = None,
) -> list[str]:
    """The live pods and, when given, their Service against what a scenario's bounds assume;
    the Service must also have a virtual IP (a headless one routes nothing through kube-proxy)."""
    found = all_problems(pods, pod_expected, kind="pod")
    if service is not None:
        found += problems(service, service_expected or {}, kind="service")
        cluster_ip = (service.get("spec") or {}).get("clusterIP")
        if cluster_ip in (None, "", "None"):
            found.append(
                f"service/{name_of(service) or '?'}: spec.clusterIP is {cluster_ip!r}, "
                "expected a virtual IP"
            )
    return found


def rewritten(problems_found: Sequence[str], what: str) -> str:
    """The one failure line for a scenario whose objects the cluster changed at admission."""
    return (
        f"the cluster admitted {what} other than submitted (an admission webhook or policy "
        "rewrote it), so this scenario's bounds would not hold: "
        + "; ".join(problems_found[:6])
        + (f"; and {len(problems_found) - 6} more" if len(problems_found) > 6 else "")
    )
