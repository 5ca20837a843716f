"""The e2e tests that are not a behaviour: preflight, the frontend and its RBAC, the demo's
manifests, an interrupted run (they need `--cluster`). The behaviours are in suite/behaviours/."""
