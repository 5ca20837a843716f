"""The words a behaviour's assertion uses for each part of a cluster (regular expressions, matched
case-insensitively). A fault's catch (`suite.behaviours.base.Catch`) names the part it breaks with
one of these, and the fault matrix counts a catch only when the failing assertion's own message
matches it."""

KUBE_PROXY = r"kube-proxy|service proxy"
HPA_CONTROLLER = r"horizontal-pod-autoscaler|HorizontalPodAutoscaler controller|HPA controller"
DEPLOYMENT_CONTROLLER = r"deployment controller"
METRICS_API = r"metrics API|metrics-server"
ENDPOINTSLICE_CONTROLLER = r"EndpointSlice controller"
CLUSTER_DNS = r"CoreDNS|cluster DNS"
DISRUPTION_CONTROLLER = r"disruption controller"
#: An admission fault: the read-back's line (suite/admitted.py `rewritten`), then the field it saw.
ADMISSION = r"an admission webhook or policy rewrote it\).*"
