"""Kubernetes: a `KubernetesCluster` block (kubeconfig, or server, token and CA), a client over
the official `kubernetes` library, the read-only actions `kubernetes.rollout_status` and
`kubernetes.describe`, and the destructive `kubernetes.rollout_restart`,
`kubernetes.rollout_undo`, `kubernetes.scale` and `kubernetes.delete_pod`, each made once per
step and limited to the namespaces and workloads the runbook's `kubernetes:` allowlist names.
"""

from integrations.kubernetes import change_actions as _change_actions
from integrations.kubernetes import read_actions as _read_actions

__all__: list[str] = []
del _change_actions, _read_actions
