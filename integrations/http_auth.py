"""The authentication of an HTTP connection block (Prometheus, Alertmanager): a bearer token or
basic auth, never both, turned into what `httpx` sends. One place reads the secrets."""

from __future__ import annotations

from pydantic import SecretStr

__all__ = ["auth_parts", "check_auth"]


def check_auth(bearer: SecretStr | None, user: str | None, password: SecretStr | None) -> None:
    """Refuse a block that sets both kinds, or half of basic auth (ValueError)."""
    if bearer is not None and (user or password):
        raise ValueError("set a bearer token or basic auth, not both")
    if (user is None) != (password is None):
        raise ValueError("basic auth needs both basic_username and basic_password")


def auth_parts(bearer: SecretStr | None, user: str | None, password: SecretStr | None,
               ) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The headers (`Authorization: Bearer ...`) and the basic-auth pair to send."""
    headers: dict[str, str] = {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer.get_secret_value()}"
    auth = (user, password.get_secret_value()) if user is not None and password is not None \
        else None
    return headers, auth
