"""Self-healing: a liveness-probe failure restarts the container and the Service recovers
(healthcheck); a killed process is restarted, a deleted pod replaced."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.self_healing import view

BEHAVIOUR = Behaviour(
    key="self-healing",
    title="Self-healing",
    what=(
        "Kubernetes restarts a sick or crashed container and replaces a lost pod, while the "
        "Service keeps answering from the healthy replica. One of two replicas is infected (its "
        "health check fails), one has its process killed, one pod is deleted."
    ),
    chart_caption=(
        "Requests through the Service around the infection, by the pod that answered; failed "
        "requests are crossed on the strip beneath."
    ),
    matrix_test="test_infected_pod_is_restarted_while_the_service_keeps_answering",
    headlines=(view.infected_headline, view.killed_headline, view.deleted_headline),
    chart=view.chart,
    more_charts=view.more_charts,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("service-routing-late", parts.KUBE_PROXY),
        Catch("admission-probe-slowed", parts.ADMISSION + r"livenessProbe\.periodSeconds"),
    ),
    variants=("proxy-sync-period", "kube-proxy-nftables"),
)
