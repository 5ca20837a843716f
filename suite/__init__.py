"""kube-alive: a pytest plugin and scenarios that prove how Kubernetes behaves on a real cluster."""
