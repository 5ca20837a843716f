"""Out of memory and the restart back-off: a container that allocates past its memory limit is
OOMKilled and restarted by the kubelet after a growing back-off (memhog's POST /oom), while the
Service answers from the other replica."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.oom_backoff import view

BEHAVIOUR = Behaviour(
    key="oom-backoff",
    title="Out of memory and the restart back-off",
    what=(
        "A container that allocates past its memory limit is OOMKilled by the kernel, and the "
        "kubelet restarts it in the same pod, waiting longer each time it dies again "
        "(its crash-loop back-off: at once, then about 10 s, then about 20 s). One of two "
        "replicas runs out of memory three times in a row under traffic through the Service, "
        "which keeps answering from the other."
    ),
    chart_caption=(
        "Top: the OOMKilled container's state over time (running, terminated, waiting in "
        "CrashLoopBackOff), each restart's measured delay against the kubelet's back-off window. "
        "Below: requests through the Service by the pod that answered; failed ones crossed."
    ),
    matrix_test="test_oom_killed_container_restarts_with_backoff_while_the_service_answers",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("admission-memory-limit-raised", parts.ADMISSION + r"resources\.limits\.memory"),
        Catch("endpointslice-controller-off", parts.ENDPOINTSLICE_CONTROLLER),
        Catch("service-routing-late", parts.KUBE_PROXY),
    ),
    variants=("kube-proxy-nftables",),
    on_registry_path=False,
)
