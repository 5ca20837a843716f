// podnet: the kind node image's pod network agent (standard library only).
module kube-alive.local/build/podnet

go 1.24.0
