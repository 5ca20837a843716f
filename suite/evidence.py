"""What a failing test carries: pod logs (current and previous container), events, the live
objects of its namespace, the timeline.

Read once (`gather`) while the test namespace still exists (the report hook runs before fixture
teardown), then kept twice: as report sections (`sections`: report.json and the terminal) and as
files a person opens (`keep`: `<report-dir>/evidence/<test>/`). Every piece is bounded in size,
and nothing here raises: evidence that cannot be read or written says so in the folder's
errors.txt (or the run's log), and the test's own failure stays the one reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite import naming
from suite.files import write_atomic
from suite.kube import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    EVENTS,
    HPAS,
    JSON,
    PODS,
    REPLICASETS,
    SERVICES,
    Kube,
    KubeError,
    Resource,
    container_statuses,
    list_objects,
    name_of,
)
from suite.recorder import timeline_text

SECTION_PREFIX = "kube-alive"
#: Log lines read per container (the end, where a crash says why); the report's sections keep
#: the last SECTION_TAIL_LINES of them, the folder all.
TAIL_LINES = 500
SECTION_TAIL_LINES = 200
MAX_SECTION_CHARS = 20_000
#: Any one file of a test's folder (a long log, many objects) keeps its end within this.
MAX_FILE_CHARS = 256_000
#: Pods whose logs are read: a failed rollout makes a few dozen; past this they are counted.
MAX_PODS = 40

#: Under the report directory: one folder per failed test, and the cluster's own logs.
DIR = "evidence"
CLUSTER_LOGS_DIR = "kind-logs"
INDEX = "index.json"
EVENTS_FILE = "events.txt"
OBJECTS_FILE = "objects.yaml"
ERRORS_FILE = "errors.txt"
FAILURE_FILE = "failure.txt"
TIMELINE_FILE = "timeline.txt"
LOGS_DIR = "logs"
#: The kinds kept as live objects: what `kubectl describe` would be asked about.
OBJECT_KINDS: tuple[Resource, ...] = (
    DEPLOYMENTS,
    REPLICASETS,
    PODS,
    SERVICES,
    ENDPOINTSLICES,
    HPAS,
)
#: `kind export logs` keeps every node's journal and container logs: each file keeps its end
#: within this, so a long run's artifact stays small enough to upload and open.
MAX_CLUSTER_LOG_BYTES = 2 * 1024 * 1024


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"... ({len(text) - limit} characters left out) ...\n" + text[-limit:]


def _last_lines(text: str, count: int) -> str:
    lines = text.splitlines()
    if len(lines) <= count:
        return text
    return f"... ({len(lines) - count} earlier lines left out) ...\n" + "\n".join(lines[-count:])


def pod_logs(
    kube: Kube,
    namespace: str,
    pod: str,
    container: str,
    *,
    previous: bool,
    tail_lines: int = TAIL_LINES,
) -> str:
    """The last `tail_lines` log lines of a container (or of its previous instance)."""
    query: dict[str, str | int | bool] = {
        "container": container,
        "tailLines": tail_lines,
        "timestamps": True,
    }
    if previous:
        query["previous"] = True
    result = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query)
    return result if isinstance(result, str) else str(result)


def format_events(events: Sequence[Mapping[str, Any]]) -> str:
    """Events, oldest first, one per line: time, type, reason, object, count, message."""

    def when(event: Mapping[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    lines = []
    for event in sorted(events, key=when):
        involved = event.get("involvedObject") or {}
        target = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
        count = int(event.get("count") or 1)
        message = " ".join(str(event.get("message") or "").split())
        lines.append(
            f"{when(event)} {event.get('type', '')} {event.get('reason', '')} {target}"
            + (f" (x{count})" if count > 1 else "")
            + f": {message}"
        )
    return "\n".join(lines)


@dataclass
class Log:
    """One container's log (or its previous instance's), or why it could not be read."""

    pod: str
    container: str
    previous: bool
    text: str | None
    error: str | None = None

    @property
    def title(self) -> str:
        """`logs pod/NAME -c CONTAINER [--previous]`, as kubectl would be asked."""
        return f"logs pod/{self.pod} -c {self.container}" + (" --previous" if self.previous else "")

    @property
    def file(self) -> str:
        """Its file in the test's folder: logs/POD_CONTAINER[.previous].log."""
        return f"{LOGS_DIR}/{self.pod}_{self.container}" + (
            ".previous.log" if self.previous else ".log"
        )


@dataclass
class Gathered:
    """What was read of one test namespace: events, live objects by kind, logs, and what could
    not be read (each a line)."""

    namespace: str
    events: list[JSON] | None = None
    objects: dict[str, list[JSON]] = field(default_factory=dict)
    logs: list[Log] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pods_left_out: int = 0

    @property
    def pods(self) -> list[JSON]:
        """The pods listed (empty when they could not be)."""
        return self.objects.get(PODS.kind, [])


def _error_line(error: BaseException) -> str:
    """One line: the suite's own errors say what and where; others get their type in front."""
    own = isinstance(error, KubeError) or type(error).__module__.startswith("suite.")
    text = str(error) if own else f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def gather(kube: Kube, namespace: str) -> Gathered:
    """Read the namespace's events, live objects and its pods' logs (current, and previous for a
    container that restarted); never raises: what cannot be read is in `errors`."""
    found = Gathered(namespace)
    try:
        found.events, _ = list_objects(kube, EVENTS, namespace)
    except Exception as error:  # evidence must never replace the test's own failure
        found.errors.append(f"events in {namespace}: could not read: {_error_line(error)}")
    for resource in OBJECT_KINDS:
        try:
            items, _ = list_objects(kube, resource, namespace)
        except Exception as error:
            found.errors.append(
                f"{resource.plural} in {namespace}: could not list: {_error_line(error)}"
            )
            continue
        found.objects[resource.kind] = sorted(items, key=name_of)
    pods = found.pods
    found.pods_left_out = max(0, len(pods) - MAX_PODS)
    for pod in pods[:MAX_PODS]:
        name = name_of(pod)
        restarts = {
            str(s.get("name")): int(s.get("restartCount") or 0) for s in container_statuses(pod)
        }
        for container in (pod.get("spec") or {}).get("containers") or []:
            cname = str(container.get("name"))
            for previous in [False] + ([True] if restarts.get(cname, 0) > 0 else []):
                log = Log(name, cname, previous, None)
                try:
                    log.text = pod_logs(kube, namespace, name, cname, previous=previous)
                except Exception as error:
                    log.error = _error_line(error)
                    found.errors.append(f"{log.title}: could not read: {log.error}")
                found.logs.append(log)
    return found


def sections(found: Gathered, recording: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Report sections (title, text) of what was gathered, each clipped for the report."""
    namespace = found.namespace
    result: list[tuple[str, str]] = []
    title = f"{SECTION_PREFIX}: events in {namespace}"
    if found.events is None:
        why = next((e for e in found.errors if e.startswith("events")), "")
        result.append((title, f"could not read events: {why.split(': could not read: ')[-1]}"))
    else:
        result.append((title, _clip(format_events(found.events)) or "(none)"))
    if PODS.kind not in found.objects:
        why = next((e for e in found.errors if e.startswith("pods")), "")
        result.append(
            (
                f"{SECTION_PREFIX}: pods in {namespace}",
                f"could not list pods: {why.split(': could not list: ')[-1]}",
            )
        )
    for log in found.logs:
        if log.text is None:
            text = f"could not read logs: {log.error}"
        else:
            text = _clip(_last_lines(log.text, SECTION_TAIL_LINES))
        result.append((f"{SECTION_PREFIX}: {log.title}", text or "(empty)"))
    if recording is not None:
        result.append(
            (f"{SECTION_PREFIX}: timeline of {namespace}", _clip(timeline_text(recording)))
        )
    return result


def collect(
    kube: Kube, namespace: str, recording: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """Report sections (title, text) for a failed test in `namespace`."""
    return sections(gather(kube, namespace), recording)


# -- the folder a person opens ---------------------------------------------------------------------


def folder_name(nodeid: str) -> str:
    """A test's folder under evidence/: its name as a slug and a short hash of its node id
    (two tests of one name in different modules stay apart), e.g. `rolling-update-...-1a4250`."""
    name = nodeid.rsplit("::", 1)[-1]
    return f"{naming.slug(name)[:80]}-{naming.short_hash(nodeid)}"


def _without_managed_fields(obj: Mapping[str, Any]) -> JSON:
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": metadata}


def objects_yaml(found: Gathered) -> str:
    """The live objects, one YAML document each (managedFields left out), by kind."""
    documents = []
    for resource in OBJECT_KINDS:
        for obj in found.objects.get(resource.kind, []):
            # Items of a list carry neither; a document without them would not read as the
            # object it is.
            version = resource.api.removeprefix("/apis/").removeprefix("/api/")
            body = {"apiVersion": version, "kind": resource.kind}
            body.update(_without_managed_fields(obj))
            documents.append(body)
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)


def _clip_file(text: str) -> str:
    return _clip(text, MAX_FILE_CHARS)


def _files_of(
    found: Gathered,
    nodeid: str,
    recording: Mapping[str, Any] | None,
    failure: str,
) -> tuple[dict[str, str], list[str]]:
    """The folder's files (relative path -> text) and the errors met while making them."""
    files: dict[str, str] = {}
    errors = list(found.errors)
    if failure:
        files[FAILURE_FILE] = _clip_file(failure)
    events = format_events(found.events) if found.events is not None else None
    files[EVENTS_FILE] = (
        _clip_file(events or "(no events)")
        if events is not None
        else "(events could not be read: see errors.txt)"
    )
    try:
        files[OBJECTS_FILE] = _clip_file(objects_yaml(found))
    except Exception as error:
        errors.append(f"{OBJECTS_FILE}: could not be written: {_error_line(error)}")
    for log in found.logs:
        if log.text is not None:
            files[log.file] = _clip_file(log.text)
    if recording is not None:
        try:
            files[TIMELINE_FILE] = _clip_file(timeline_text(recording))
        except Exception as error:
            errors.append(f"{TIMELINE_FILE}: could not be written: {_error_line(error)}")
    if found.pods_left_out:
        errors.append(
            f"logs of {found.pods_left_out} more pods left out (only the first {MAX_PODS} read)"
        )
    index = {
        "nodeid": nodeid,
        "namespace": found.namespace,
        "written": time.time(),
        "tail_lines": TAIL_LINES,
        "max_file_chars": MAX_FILE_CHARS,
        "pods": [
            {
                "name": log.pod,
                "container": log.container,
                "previous": log.previous,
                "file": log.file if log.text is not None else None,
                "error": log.error,
            }
            for log in found.logs
        ],
        "files": sorted([*files, *([ERRORS_FILE] if errors else [])]),
        "errors": errors,
    }
    if errors:
        files[ERRORS_FILE] = "\n".join(errors) + "\n"
    files[INDEX] = json.dumps(index, indent=1)
    return files, errors


def write_folder(
    report_dir: Path,
    nodeid: str,
    found: Gathered,
    recording: Mapping[str, Any] | None = None,
    failure: str = "",
) -> str:
    """Write `<report_dir>/evidence/<test>/` in one step (built beside it, then renamed into
    place: a reader sees the whole folder or none); return its path relative to report_dir."""
    relative = f"{DIR}/{folder_name(nodeid)}"
    target = report_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    files, _ = _files_of(found, nodeid, recording, failure)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        building.chmod(0o755)
        for name, text in files.items():
            path = building / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
        # A folder left by an earlier failure of the same test in this run (a rerun plugin):
        # the newest one wins.
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return relative


def keep(
    report_dir: Path,
    nodeid: str,
    found: Gathered,
    recording: Mapping[str, Any] | None,
    failure: str,
    log: Callable[[str], None],
) -> str | None:
    """write_folder, never raising: when the folder cannot be written, the run's log says why
    and None is returned (the test's own failure is what is reported)."""
    try:
        return write_folder(report_dir, nodeid, found, recording, failure)
    except Exception as error:
        log(
            f"could not keep the evidence of {nodeid} under {report_dir / DIR}: "
            f"{_error_line(error)}"
        )
        return None


def clear_previous(report_dir: Path) -> None:
    """At the start of a run: the last run's evidence goes, so every folder under evidence/ is
    this run's (a test that passes now leaves none)."""
    shutil.rmtree(report_dir / DIR, ignore_errors=True)


_SAFE_RELATIVE = re.compile(rf"^{DIR}/[a-z0-9][a-z0-9._-]*$")


def is_evidence_path(value: object) -> bool:
    """True for a test folder's path as report.json records it (`evidence/<name>`): relative,
    inside evidence/, nothing a link could be turned against."""
    return isinstance(value, str) and bool(_SAFE_RELATIVE.match(value))


def missing(report_dir: Path, relative: object) -> str | None:
    """None when the folder `relative` (report.json's evidence_dir) holds its evidence: the
    index, the events, the live objects, and a log file for every container it lists as read;
    else one line that says what is missing."""
    if not relative:
        return "report.json names no evidence folder for it"
    if not is_evidence_path(relative):
        return f"report.json's evidence folder {str(relative)[:80]!r} is not under {DIR}/"
    folder = report_dir / str(relative)
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError) as error:
        return f"{folder}: no readable {INDEX} ({_error_line(error)})"
    absent = [name for name in (EVENTS_FILE, OBJECTS_FILE) if not (folder / name).is_file()]
    absent += [
        str(pod["file"])
        for pod in index.get("pods") or []
        if pod.get("file") and not (folder / str(pod["file"])).is_file()
    ]
    unread = [pod for pod in index.get("pods") or [] if not pod.get("file")]
    if absent:
        return f"{folder}: {', '.join(absent)} missing"
    if unread and not (folder / ERRORS_FILE).is_file():
        return f"{folder}: {len(unread)} log(s) not read and no {ERRORS_FILE} says why"
    return None


# -- the cluster's own logs (kind) -----------------------------------------------------------------


#: What `kind export logs` writes for every node; one of them is the least a whole export has.
NODE_LOG = "kubelet.log"


def cluster_logs_missing(report_dir: Path, relative: object) -> str | None:
    """None when report.json names no cluster logs (a provider without them, or no failure), or
    when the export is whole: a node's kubelet.log and no errors.txt; else one line saying what
    the export left out."""
    if not relative:
        return None
    folder = report_dir / str(relative)
    errors = folder / ERRORS_FILE
    if errors.is_file():
        first = errors.read_text(errors="replace").strip().splitlines()[:1]
        return f"{folder}: the export failed: {first[0][:300] if first else 'errors.txt is empty'}"
    if not any(folder.glob(f"*/{NODE_LOG}")):
        return f"{folder}: no node's {NODE_LOG} (kind export logs wrote no node folder)"
    return None


def claim_once(shared_dir: Path, name: str) -> bool:
    """True for the first process of a run (controller or xdist worker) to ask for `name`, False
    for every later one: what is done once per run (kind export logs) is done once."""
    try:
        handle = os.open(shared_dir / f"once-{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(handle)
    return True


def bound_files(directory: Path, limit: int = MAX_CLUSTER_LOG_BYTES) -> int:
    """Every file under `directory` larger than `limit` keeps its last `limit` bytes (a line
    says how much went); returns how many were cut."""
    cut = 0
    for path in directory.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        if size <= limit:
            continue
        with path.open("rb") as handle:
            handle.seek(size - limit)
            tail = handle.read()
        write_atomic(path, f"... ({size - limit} bytes left out) ...\n".encode() + tail)
        cut += 1
    return cut


def export_cluster_logs(
    export: Callable[[Path], str | None], report_dir: Path, log: Callable[[str], None]
) -> Path | None:
    """Run the provider's log export (kind: `kind export logs`) into
    `<report_dir>/evidence/kind-logs`, bounded; never raising: a failure is written to
    `kind-logs/errors.txt` and logged. Returns the folder, or None when the provider has
    nothing to export."""
    target = report_dir / DIR / CLUSTER_LOGS_DIR
    try:
        target.mkdir(parents=True, exist_ok=True)
        what = export(target)
        if what is None:
            target.rmdir()
            return None
        cut = bound_files(target, MAX_CLUSTER_LOG_BYTES)
        log(f"{what} into {target}" + (f" ({cut} long files cut to their end)" if cut else ""))
    except Exception as error:
        line = f"exporting the cluster's logs failed: {_error_line(error)}"
        log(line)
        try:
            target.mkdir(parents=True, exist_ok=True)
            write_atomic(target / ERRORS_FILE, line + "\n" + traceback.format_exc())
            # What the export did copy before it failed is kept, bounded like a whole export.
            bound_files(target, MAX_CLUSTER_LOG_BYTES)
        except OSError:
            pass
    return target
