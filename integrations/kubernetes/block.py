"""`KubernetesCluster`: where a cluster's API server is and how to authenticate to it (a
kubeconfig, or a server URL with a bearer token and CA certificate); builds the official
client's `ApiClient`."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Self

import yaml
from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from firelane.errors import ConfigError
from integrations.common import pooled, sandbox_timeout

__all__ = ["SANDBOX_TOKEN", "KubernetesCluster"]

SANDBOX_TOKEN = "sandbox-k8s-token"


class KubernetesCluster(Block):
    """A Kubernetes cluster's API server and the credentials to use it: a kubeconfig (and
    optionally which `context` of it), or `server` with a bearer `token` and the cluster's CA
    certificate `ca_cert` (PEM). The kubeconfig, token and CA are secrets: never logged.

    Runbooks name it under `credentials: {kubernetes: BLOCK_NAME}` (default `default`); the
    `kubernetes.*` actions act only on the namespaces and workloads the runbook's
    `kubernetes:` allowlist names.

    Example:
        ```python
        from integrations.kubernetes.block import KubernetesCluster
        kubernetes_cluster = KubernetesCluster.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Firelane Kubernetes Cluster"
    _documentation_url: ClassVar[Any] = "https://github.com/firelane/firelane#kubernetes"

    kubeconfig: SecretStr | None = Field(default=None, description=(
        "A whole kubeconfig (YAML or JSON), e.g. the output of `kubectl config view --raw "
        "--minify`; its user's token or client certificate is used."))
    context: str | None = Field(default=None, description=(
        "The kubeconfig context to use (default: its current-context)."))
    server: str | None = Field(default=None, pattern=r"^https://", description=(
        "API server URL, without a kubeconfig (https://10.0.0.1:6443)."))
    token: SecretStr | None = Field(default=None, description=(
        "Bearer token (a ServiceAccount's), with `server`."))
    ca_cert: SecretStr | None = Field(default=None, description=(
        "The cluster's CA certificate (PEM), with `server`; the system CAs when empty."))
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, description=(
        "Per-request timeout."))

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        if self.kubeconfig is not None and (self.server or self.token):
            raise ValueError("set a kubeconfig, or server and token, not both")
        if self.kubeconfig is None and not (self.server and self.token):
            raise ValueError("set a kubeconfig, or server and token")
        return self

    @classmethod
    def for_sandbox(cls, url: str, ca_file: str) -> KubernetesCluster:
        """The cluster for the sandbox's Kubernetes stand-in at `url`, as a kubeconfig
        trusting the CA file `ca_file`."""
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
                  "clusters": [{"name": "sandbox", "cluster": {
                      "server": f"{url}/kubernetes", "certificate-authority": ca_file}}],
                  "users": [{"name": "firelane", "user": {"token": SANDBOX_TOKEN}}],
                  "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox",
                                                               "user": "firelane"}}]}
        return cls(kubeconfig=SecretStr(yaml.safe_dump(config)),
                   timeout_seconds=sandbox_timeout())

    def _fingerprint(self) -> str:
        parts = [self.kubeconfig, self.server, self.token, self.ca_cert, self.context]
        raw = "\0".join(p.get_secret_value() if isinstance(p, SecretStr) else str(p)
                        for p in parts)
        return hashlib.sha256(raw.encode()).hexdigest()

    def configuration(self) -> Any:
        """The official client's `Configuration` for this cluster (the one place its secrets
        are read). Its own retries are off: Firelane's retry layer retries."""
        from kubernetes import client, config

        cfg = client.Configuration()
        if self.kubeconfig is not None:
            try:
                loaded = yaml.safe_load(self.kubeconfig.get_secret_value())
                load: Any = config.load_kube_config_from_dict
                load(loaded, context=self.context, client_configuration=cfg,
                     persist_config=False)
            except (yaml.YAMLError, config.ConfigException, KeyError, TypeError) as exc:
                raise ConfigError(f"the KubernetesCluster kubeconfig cannot be used: "
                                  f"{type(exc).__name__}") from exc
        else:
            assert self.server is not None and self.token is not None
            cfg.host = self.server
            cfg.api_key = {"BearerToken": self.token.get_secret_value()}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
            if self.ca_cert is not None:
                cfg.ca_cert_data = self.ca_cert.get_secret_value()
        cfg.retries = False
        return cfg

    def get_client(self) -> Any:
        """A pooled `kubernetes.client.ApiClient` for this cluster."""
        from kubernetes import client

        return pooled(("kubernetes", self._fingerprint()),
                      lambda: client.ApiClient(self.configuration()))
