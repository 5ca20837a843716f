"""Load balancing: a Service spreads new connections over every ready replica (getip)."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.load_balancing import view

BEHAVIOUR = Behaviour(
    key="load-balancing",
    title="Load balancing",
    what=(
        "A Service spreads new connections over every ready replica. Four replicas of a small "
        "web app answer requests sent through one Service name, each on a new connection; every "
        "replica answers, and the counts are tested against an even spread (chi-square)."
    ),
    chart_caption="Requests answered by each pod; the dashed line is an even share.",
    matrix_test="test_service_spreads_new_connections_over_every_replica",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("service-routing-stopped", parts.KUBE_PROXY),
        Catch("endpointslice-controller-off", parts.ENDPOINTSLICE_CONTROLLER),
        Catch("cluster-dns-stopped", parts.CLUSTER_DNS),
        Catch("admission-session-affinity", parts.ADMISSION + r"sessionAffinity"),
        Catch("node-service-routing-dropped", parts.KUBE_PROXY, cluster="kind"),
    ),
    variants=("proxy-sync-period", "kube-proxy-nftables"),
    on_registry_path=True,
)
