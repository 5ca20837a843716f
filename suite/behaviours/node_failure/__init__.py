"""Node failure: a worker of a multi-node cluster stops (its kind container paused); it goes
NotReady, is tainted, its pods are evicted after their tolerations and replaced on a healthy
node, the Service is measured throughout, and the node rejoins."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.node_failure import view

BEHAVIOUR = Behaviour(
    key="node-failure",
    title="Node failure",
    what=(
        "One worker of a multi-node cluster stops under traffic (its kind container is paused: "
        "kubelet, kube-proxy and pods frozen). The node lifecycle controller marks it NotReady "
        "after its grace period and taints it; its pods are evicted once their tolerationSeconds "
        "(10 s, read back) have passed, and replacements become Ready on a healthy node. Requests "
        "fail only while the stopped pods are still routed to; the node is brought back and "
        "rejoins."
    ),
    chart_caption=(
        "Requests through the Service by the node of the pod that answered; failed requests are "
        "crossed on the strip beneath. Marks: the node stopped, NotReady, tainted, its pods "
        "evicted, replacements Ready, the node restarted and rejoined."
    ),
    matrix_test="test_node_failure_evicts_its_pods_and_the_service_recovers",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("node-lifecycle-controller-off", parts.NODE_LIFECYCLE_CONTROLLER, cluster="kind"),
    ),
    clusters=("kind", "existing"),
    on_registry_path=False,
)
