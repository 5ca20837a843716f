"""The kube-alive pytest plugin (placeholder until the plugin lands)."""
