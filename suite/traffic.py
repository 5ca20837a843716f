"""Traffic from inside the cluster, driven through the `prober` workload.

The prober (Service `prober`, port `http`, in the test namespace) answers `POST /probe` by sending
requests to a URL inside the cluster, each on a new TCP connection, and streams one NDJSON line
per request (`seq, start, end, status, ok, pod, version, error`) and a final `{"summary": ...}`.
The suite reaches it through the API server's service proxy, so this works on any cluster the
kubeconfig reaches, with no port-forward and no route into the pod network.

`Prober.run()` blocks for one probe; `Prober.background()` keeps probing in chunks in a thread
(for traffic during a rollout or load during autoscaling) and stops at a chunk boundary, so the
time traffic stopped is known. Every answer keeps the prober's wall-clock start/end and the
time the suite received it, to line up with the recorder's timeline.

The prober is part of the suite's own path, not of the behaviour under test: when its pod is
deleted or restarted during background traffic (its pods before and after, and the prober pods
that answered each chunk, tell), the traffic's last error says so, naming the pod, so a scenario
that stops on "the traffic was interrupted" blames the prober and not what it measures.

Each `POST /probe` carries a run id. When its stream breaks on the way (the API server's proxy
between the suite and the prober), nothing is guessed: the prober's `GET /runs/<id>` answers every
record of that run once it is over, the missing answers are taken from there, and the break is
counted in `ProbeResult.read_back`. Only a run the prober cannot account for is an error.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from suite.kube import (
    JSON,
    PODS,
    Kube,
    KubeError,
    is_terminating,
    list_objects,
    name_of,
    restart_count,
)
from suite.waiting import (
    Done,
    Failed,
    Pending,
    Verdict,
    WaitFailed,
    retry_transient,
    wait_condition,
)

#: A background chunk that ends with no answer is retried after this pause (interruptible).
_CHUNK_ERROR_PAUSE_S = 0.5
#: The prober's maximum count: its duration, not the count, ends a background chunk.
_UNBOUNDED_COUNT = 20_000


#: The prober's container port (manifests/prober), for driving one prober pod directly.
PROBER_PORT = 8080
#: After a stream broke, how long past the run's own end its records are asked for.
_READ_BACK_S = 20.0


class ProbeError(Exception):
    """The prober could not be reached or did not speak the protocol."""


@dataclass(frozen=True)
class ProbeRequest:
    """What the prober is asked to do (the `POST /probe` body)."""

    url: str
    count: int = 100
    concurrency: int = 1
    duration_s: float = 60.0
    interval_ms: int = 0
    timeout_s: float = 5.0
    #: How the prober finds the Service: "dns" (its name) or "service-env" (the ClusterIP the
    #: kubelet put into the prober pod's environment, no DNS look-up).
    via: str = "dns"

    def to_json(self) -> JSON:
        """The request body."""
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """One request the prober sent: when, what came back, and who served it."""

    seq: int
    start: float
    end: float
    status: int | None
    ok: bool
    pod: str | None
    version: str | None
    error: str | None
    chunk: int = 0
    received: float = 0.0

    @property
    def duration(self) -> float:
        """Seconds the request took."""
        return self.end - self.start

    @classmethod
    def from_json(cls, data: dict[str, Any], *, chunk: int = 0, received: float = 0.0) -> Answer:
        """Build from one NDJSON record; raises ProbeError when a required field is missing."""
        try:
            status = data.get("status")
            return cls(
                seq=int(data["seq"]),
                start=float(data["start"]),
                end=float(data["end"]),
                status=int(status) if status is not None else None,
                ok=bool(data["ok"]),
                pod=str(data["pod"]) if data.get("pod") is not None else None,
                version=str(data["version"]) if data.get("version") is not None else None,
                error=str(data["error"]) if data.get("error") else None,
                chunk=chunk,
                received=received,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProbeError(f"malformed probe record {data!r}: {error}") from error


def parse_line(line: str, *, chunk: int = 0, received: float = 0.0) -> Answer | JSON | None:
    """One NDJSON line: an Answer, the summary dict, or None for a blank line."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError as error:
        raise ProbeError(f"not JSON from the prober: {line[:200]!r}") from error
    if not isinstance(data, dict):
        raise ProbeError(f"not a JSON object from the prober: {line[:200]!r}")
    if "summary" in data:
        return dict(data["summary"] or {})
    return Answer.from_json(data, chunk=chunk, received=received)


def parse_stream(
    lines: Iterable[str],
    *,
    chunk: int = 0,
    clock: Callable[[], float] = time.time,
    on_answer: Callable[[Answer], None] | None = None,
) -> tuple[list[Answer], JSON | None]:
    """All answers of a stream, and its summary (None if the stream ended without one)."""
    answers: list[Answer] = []
    summary: JSON | None = None
    for line in lines:
        parsed = parse_line(line, chunk=chunk, received=clock())
        if parsed is None:
            continue
        if isinstance(parsed, Answer):
            answers.append(parsed)
            if on_answer is not None:
                on_answer(parsed)
        else:
            summary = parsed
    return answers, summary


@dataclass
class ProbeResult:
    """Everything one probe (or one background run of chunks) brought back."""

    request: ProbeRequest
    answers: list[Answer] = field(default_factory=list)
    summaries: list[JSON] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    errors: list[str] = field(default_factory=list)
    chunks: int = 0
    label: str = ""
    #: When (this machine's clock) each chunk's `POST /probe` was sent: with the answers' receipt
    #: times, bounds the prober's clock offset (`suite.traffic_proofs.clock_offset`).
    chunk_sent: dict[int, float] = field(default_factory=dict)
    #: What happened to the prober pod during background traffic (deleted, restarted), if anything.
    prober_problem: str | None = None
    #: Chunks whose stream broke and whose answers were read back from the prober (one line each).
    read_back: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        """Requests sent."""
        return len(self.answers)

    @property
    def ok(self) -> list[Answer]:
        """Answered requests."""
        return [answer for answer in self.answers if answer.ok]

    @property
    def failed(self) -> list[Answer]:
        """Requests that failed (error, timeout or non-OK status)."""
        return [answer for answer in self.answers if not answer.ok]

    @property
    def complete(self) -> bool:
        """Every chunk ended with a summary and nothing went wrong on the way."""
        return not self.errors and len(self.summaries) == self.chunks and self.chunks > 0

    def by_pod(self) -> Counter[str]:
        """Answered requests per serving pod."""
        return Counter(answer.pod or "?" for answer in self.ok)

    def by_version(self) -> Counter[str]:
        """Answered requests per reported version."""
        return Counter(answer.version or "?" for answer in self.ok)

    def errors_by_kind(self) -> Counter[str]:
        """Failed requests grouped by error text (or status)."""
        return Counter(answer.error or f"HTTP {answer.status}" for answer in self.failed)

    def started_between(self, start_wall: float, end_wall: float) -> list[Answer]:
        """Answers whose request started in [start_wall, end_wall] (prober clock)."""
        return [answer for answer in self.answers if start_wall <= answer.start <= end_wall]

    def describe(self) -> str:
        """One line: sent, answered, failed, and the commonest errors."""
        text = f"{self.sent} sent, {len(self.ok)} answered, {len(self.failed)} failed"
        if self.failed:
            common = ", ".join(f"{error} x{n}" for error, n in self.errors_by_kind().most_common(3))
            text += f" ({common})"
        if self.read_back:
            text += f"; {len(self.read_back)} broken stream(s), their answers read back"
        if self.errors:
            text += f"; prober errors: {self.errors[-1]}"
        return text

    def to_dict(self) -> JSON:
        """JSON-serialisable form for the report."""
        return {
            "label": self.label,
            "request": self.request.to_json(),
            "started": self.started,
            "ended": self.ended,
            "chunks": self.chunks,
            "errors": list(self.errors),
            "summaries": list(self.summaries),
            "chunk_sent": {str(k): v for k, v in self.chunk_sent.items()},
            "prober_problem": self.prober_problem,
            "read_back": list(self.read_back),
            "sent": self.sent,
            "ok": len(self.ok),
            "failed": len(self.failed),
            "by_pod": dict(self.by_pod()),
            "by_version": dict(self.by_version()),
            "answers": [
                [
                    a.seq,
                    a.chunk,
                    round(a.start, 4),
                    round(a.end, 4),
                    a.status,
                    a.ok,
                    a.pod,
                    a.version,
                    a.error,
                ]
                for a in self.answers
            ],
            "answer_fields": [
                "seq",
                "chunk",
                "start",
                "end",
                "status",
                "ok",
                "pod",
                "version",
                "error",
            ],
        }


def prober_pods(kube: Kube, namespace: str, selector: str) -> dict[str, JSON] | None:
    """The prober's pods as `{name: {uid, restarts, terminating}}`; None when they cannot be
    listed (then nothing is concluded from them)."""
    try:
        items, _ = list_objects(kube, PODS, namespace, label_selector=selector)
    except KubeError:
        return None
    return {
        name_of(pod): {
            "uid": str((pod.get("metadata") or {}).get("uid") or ""),
            "restarts": restart_count(pod),
            "terminating": is_terminating(pod),
        }
        for pod in items
    }


def prober_problem(
    before: Mapping[str, Mapping[str, Any]] | None,
    after: Mapping[str, Mapping[str, Any]] | None,
    served_by: Collection[str],
    *,
    namespace: str,
) -> str | None:
    """What happened to the prober during traffic, in words naming its pod (None: nothing).

    `before` and `after` are `prober_pods()` at the start and the end of the traffic, `served_by`
    the prober pods that answered its chunks (from their summaries)."""
    fates: list[str] = []
    for name, was in sorted((before or {}).items()):
        now = (after or {}).get(name) if after is not None else None
        if after is not None and now is None:
            fates.append(f"the prober pod {name} was deleted during traffic")
        elif now is not None and now.get("uid") != was.get("uid"):
            fates.append(f"the prober pod {name} was replaced during traffic (a new uid)")
        elif now is not None and now.get("terminating") and not was.get("terminating"):
            fates.append(f"the prober pod {name} was being deleted during traffic")
        elif now is not None and int(now.get("restarts", 0)) > int(was.get("restarts", 0)):
            fates.append(
                f"the prober pod {name} was restarted during traffic (restartCount "
                f"{was.get('restarts')} -> {now.get('restarts')})"
            )
    strangers = sorted(set(served_by) - set(before or {})) if before else []
    if len(set(served_by)) > 1 or (strangers and not fates):
        fates.append(f"chunks were answered by prober pods {sorted(set(served_by))}")
    if not fates:
        return None
    newer = sorted(set(after or {}) - set(before or {}))
    text = "; ".join(fates)
    if newer:
        text += f" (now: {', '.join(newer)})"
    first = sorted(before or {}) or sorted(served_by)
    hint = f"kubectl -n {namespace} get events" + (
        f" --field-selector involvedObject.name={first[0]}" if first else ""
    )
    return (
        f"{text}: the traffic's gaps and failures from then on are the prober's (the suite's own "
        f"path), not the behaviour under test's; see: {hint}"
    )


def service_proxy_path(namespace: str, service: str, port: str, path: str) -> str:
    """The API server's proxy path to a Service port."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"


def pod_proxy_path(namespace: str, pod: str, port: int | str, path: str) -> str:
    """The API server's proxy path to one pod's port (bypasses the Service)."""
    return f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"


def pod_request(
    kube: Kube,
    namespace: str,
    pod: str,
    port: int | str,
    path: str,
    *,
    method: str = "POST",
    timeout: float = 10.0,
) -> Any:
    """Send one request to one pod through the API server's pod proxy."""
    return kube.request(method, pod_proxy_path(namespace, pod, port, path), timeout=(5.0, timeout))


class Prober:
    """Drives the prober workload in one namespace."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        *,
        service: str = "prober",
        port: str = "http",
        on_result: Callable[[ProbeResult], None] | None = None,
        selector: str | None = None,
        pod: str | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.service = service
        self.port = port
        self.on_result = on_result
        #: The prober's own pods (to tell when one dies during traffic).
        self.selector = selector or f"app.kubernetes.io/name={service}"
        #: One prober pod to drive directly (e.g. the client on one node), not the Service.
        self.pod = pod

    @property
    def probe_path(self) -> str:
        """Where `POST /probe` is sent."""
        return self._path("probe")

    def wait_ready(self, timeout_s: float) -> Any:
        """Wait (bounded retries on transient errors) until the prober answers via its Service."""
        if self.pod is not None:
            path = pod_proxy_path(self.namespace, self.pod, PROBER_PORT, "")
            what, how = f"pod/{self.pod}", "the API server's pod proxy"
            hint = f"kubectl -n {self.namespace} describe pod/{self.pod}"
        else:
            path = service_proxy_path(self.namespace, self.service, self.port, "")
            what, how = f"service/{self.service}", "the API server's service proxy"
            hint = (
                f"kubectl -n {self.namespace} get endpointslices "
                f"-l kubernetes.io/service-name={self.service}"
            )
        return retry_transient(
            lambda: self.kube.request("GET", path, timeout=(5.0, 10.0)),
            timeout_s=timeout_s,
            what=what,
            where=self.namespace,
            expected=f"an answer through {how}",
            hint=hint,
        )

    def _path(self, path: str) -> str:
        if self.pod is not None:
            return pod_proxy_path(self.namespace, self.pod, PROBER_PORT, path)
        return service_proxy_path(self.namespace, self.service, self.port, path)

    def _chunk(
        self,
        request: ProbeRequest,
        chunk: int,
        result: ProbeResult,
        on_answer: Callable[[Answer], None] | None,
        streams: list[Any] | None = None,
    ) -> None:
        result.chunk_sent[chunk] = time.time()
        run_id = f"{uuid.uuid4().hex[:16]}-{chunk}"
        delivered: dict[int, Answer] = {}

        def deliver(answer: Answer) -> None:
            delivered[answer.seq] = answer
            if on_answer is not None:
                on_answer(answer)

        try:
            stream = self.kube.stream(
                "POST",
                self.probe_path,
                body={**request.to_json(), "run": run_id},
                timeout=(10.0, request.timeout_s + 30.0),
            )
        except KubeError as error:
            result.errors.append(f"chunk {chunk}: POST {self.probe_path}: {error}")
            return
        if streams is not None:
            streams.append(stream)
        try:
            _, summary = parse_stream(stream, chunk=chunk, on_answer=deliver)
        except KubeError as broke:
            # The stream began and broke on the way: the prober still has every record.
            try:
                records, summary = self._read_back(run_id, request)
            except (KubeError, ProbeError, WaitFailed) as error:
                result.answers.extend(sorted(delivered.values(), key=lambda a: a.seq))
                result.errors.append(
                    f"chunk {chunk}: {broke}, after {len(delivered)} answers; reading the rest "
                    f"back from the prober failed too: {error}"
                )
                return
            missing = [Answer.from_json(r, chunk=chunk) for r in records]
            missing = [a for a in missing if a.seq not in delivered]
            for answer in sorted(missing, key=lambda a: a.end):
                deliver(answer)
            result.read_back.append(
                f"chunk {chunk}: {broke}, after {len(delivered) - len(missing)} answers; "
                f"{len(missing)} more read back from the prober (run {run_id})"
            )
        except ProbeError as error:
            result.errors.append(f"chunk {chunk}: {error}")
            return
        finally:
            stream.close()
        result.answers.extend(sorted(delivered.values(), key=lambda a: a.seq))
        if summary is None:
            result.errors.append(
                f"chunk {chunk}: the stream ended without a summary after {len(delivered)} answers"
            )
        else:
            result.summaries.append(summary)

    def _read_back(self, run_id: str, request: ProbeRequest) -> tuple[list[JSON], JSON]:
        """Every record and the summary of one run, from the prober, once the run is over."""
        path = self._path(f"runs/{run_id}")
        data = retry_transient(
            lambda: self.kube.request("GET", path, timeout=(5.0, 15.0)),
            timeout_s=request.duration_s + request.timeout_s + _READ_BACK_S,
            what=f"run {run_id} of the prober",
            where=self.namespace,
            expected="its records, once the run is over",
            hint=f"kubectl -n {self.namespace} logs -l {self.selector}",
        )
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("records"), list)
            or not isinstance(data.get("summary"), dict)
        ):
            raise ProbeError(f"GET {path}: not a run's records: {str(data)[:200]!r}")
        return [r for r in data["records"] if isinstance(r, dict)], dict(data["summary"])

    def run(self, request: ProbeRequest, *, label: str = "") -> ProbeResult:
        """Run one probe to completion; raises ProbeError if nothing at all came back."""
        result = ProbeResult(request, started=time.time(), chunks=1, label=label)
        self._chunk(request, 0, result, None)
        result.ended = time.time()
        if self.on_result is not None:
            self.on_result(result)
        if not result.answers and result.errors:
            raise ProbeError(f"prober in {self.namespace}: {result.errors[-1]}")
        return result

    def converge(
        self, url: str, pods: Collection[str], *, timeout_s: float, batch: int = 0
    ) -> float:
        """Wait until the Service behind `url` answers from every one of `pods`, with no failure.

        A Deployment is Ready before every node's service proxy has programmed the new endpoints
        (kube-proxy syncs at most once a second, after the EndpointSlice update reaches it), so
        measured traffic starts only once a whole batch of new-connection requests through the
        Service was answered and every expected pod answered. Returns the seconds it took; the
        batches are not part of any measurement.
        """
        wanted = set(pods)
        size = batch or max(20, 8 * len(wanted))
        request = ProbeRequest(url=url, count=size, concurrency=4, duration_s=30.0, timeout_s=2.0)
        started = time.monotonic()
        seen: list[str] = []

        def attempt() -> None:
            result = ProbeResult(request, started=time.time())
            self._chunk(request, 0, result, None)
            answered = set(result.by_pod())
            seen.append(
                f"{len(result.ok)}/{result.sent} answered, pods {sorted(answered)}"
                + (f", errors {dict(result.errors_by_kind())}" if result.failed else "")
            )
            if result.failed or result.errors or not wanted <= answered:
                raise ProbeError(seen[-1])

        try:
            for retry in Retrying(
                stop=stop_after_delay(timeout_s),
                wait=wait_fixed(0.5),
                retry=retry_if_exception_type(ProbeError),
                reraise=True,
            ):
                with retry:
                    attempt()
        except ProbeError as error:
            raise ProbeError(
                f"{url} in {self.namespace}: expected answers from all of {sorted(wanted)} with "
                f"no failure; last batch after {time.monotonic() - started:.0f}s: {error}. "
                f"Look at: kubectl -n {self.namespace} get endpointslices"
            ) from error
        return time.monotonic() - started

    def background(
        self, request: ProbeRequest, *, chunk_s: float, total_s: float, label: str = ""
    ) -> BackgroundProbe:
        """Start probing in a thread, `chunk_s` at a time, for at most `total_s`."""
        return BackgroundProbe(self, request, chunk_s=chunk_s, total_s=total_s, label=label).start()


class BackgroundProbe:
    """Keeps probing in chunks until stopped or out of time; answers are visible as they come."""

    def __init__(
        self,
        prober: Prober,
        request: ProbeRequest,
        *,
        chunk_s: float,
        total_s: float,
        label: str = "",
    ) -> None:
        self.prober = prober
        self.request = request
        self.chunk_s = chunk_s
        self.total_s = total_s
        self.result = ProbeResult(request, label=label)
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"probe-{prober.namespace}", daemon=True
        )
        self.stopped_wall: float | None = None
        self._prober_before: dict[str, JSON] | None = None

    def start(self) -> BackgroundProbe:
        """Start the thread (returns self)."""
        self._prober_before = prober_pods(
            self.prober.kube, self.prober.namespace, self.prober.selector
        )
        self.result.started = time.time()
        self._thread.start()
        return self

    def _check_prober(self) -> None:
        served_by = {
            str((summary.get("prober") or {}).get("pod"))
            for summary in self.result.summaries
            if (summary.get("prober") or {}).get("pod")
        }
        after = prober_pods(self.prober.kube, self.prober.namespace, self.prober.selector)
        problem = prober_problem(
            self._prober_before, after, served_by, namespace=self.prober.namespace
        )
        if problem is not None:
            with self.changed:
                self.result.prober_problem = problem
                # Last, so "the traffic was interrupted: {errors[-1]}" names the prober.
                self.result.errors.append(problem)

    def _on_answer(self, answer: Answer) -> None:
        with self.changed:
            self.result.answers.append(answer)
            self.changed.notify_all()

    def _run(self) -> None:
        deadline = time.monotonic() + self.total_s
        chunk = 0
        try:
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left < 0.5:
                    break
                request = ProbeRequest(
                    url=self.request.url,
                    count=_UNBOUNDED_COUNT,
                    concurrency=self.request.concurrency,
                    duration_s=round(min(self.chunk_s, left), 3),
                    interval_ms=self.request.interval_ms,
                    timeout_s=self.request.timeout_s,
                    via=self.request.via,
                )
                partial = ProbeResult(request)
                self.prober._chunk(request, chunk, partial, self._on_answer)
                chunk += 1
                with self.changed:
                    self.result.chunks = chunk
                    self.result.read_back.extend(partial.read_back)
                    self.result.summaries.extend(partial.summaries)
                    self.result.chunk_sent.update(partial.chunk_sent)
                    self.result.errors.extend(partial.errors)
                    self.changed.notify_all()
                if partial.errors and not partial.answers:
                    self._stop.wait(_CHUNK_ERROR_PAUSE_S)
        finally:
            self._check_prober()
            with self.changed:
                self.result.ended = self.stopped_wall = time.time()
                self._done.set()
                self.changed.notify_all()

    def answers(self) -> list[Answer]:
        """A copy of the answers so far."""
        with self.changed:
            return list(self.result.answers)

    def wait_for(
        self,
        predicate: Callable[[list[Answer]], Verdict],
        *,
        timeout_s: float,
        what: str,
        expected: str,
    ) -> Any:
        """Wait until the answers so far satisfy `predicate` (a Verdict), under one deadline."""

        def check() -> Verdict:
            verdict = predicate(list(self.result.answers))
            if self._done.is_set() and not isinstance(verdict, Done | Failed):
                return Failed(f"traffic ended first ({self.result.describe()})")
            return verdict

        return wait_condition(
            self.changed,
            check,
            timeout_s=timeout_s,
            what=what,
            where=self.prober.namespace,
            expected=expected,
        )

    def wait_answered(
        self,
        count: int,
        *,
        what: str,
        timeout_s: float,
        after: float | None = None,
        skew_s: float = 0.0,
    ) -> None:
        """Wait until `count` requests were answered: any, or those that started later than
        `after` + `skew_s` (epoch seconds; the prober's clock may be off by up to `skew_s`)."""

        def enough(answers: list[Answer]) -> Verdict:
            n = sum(a.ok and (after is None or a.start > after + skew_s) for a in answers)
            return Done() if n >= count else Pending(f"{n} answered")

        self.wait_for(
            enough,
            timeout_s=timeout_s,
            what=f"traffic to {self.request.url}",
            expected=f"{count} answered requests {what}",
        )

    def stop(self, *, timeout_s: float | None = None) -> ProbeResult:
        """Stop after the current chunk (so the load really ends) and return everything."""
        self._stop.set()
        self._thread.join(
            timeout_s if timeout_s is not None else self.chunk_s + self.request.timeout_s + 45.0
        )
        if self.prober.on_result is not None:
            self.prober.on_result(self.result)
        return self.result

    @property
    def running(self) -> bool:
        """True until the thread has ended."""
        return not self._done.is_set()
