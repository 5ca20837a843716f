"""A real single-node Kubernetes cluster from pinned upstream components, run as host processes.

`python -m localcluster up|down|status|load-images|build`; the pytest provider `--cluster=local`
uses `localcluster.api`.
"""
