"""Prefect API clients for a flow run on its own event loop, sharing one TLS context.

Every execution runs its `run-runbook` flow on a new event loop (`run_execution`), so Prefect's
engine builds a new `PrefectClient` for it, and a `SyncPrefectClient` to read the server's
default result storage. Each of those reads the CA bundle into a new SSL context, about 20 ms
of CPU, even for an `http://` API. `api_clients()` enters both clients first, built on one
context per process, so the engine and every `get_client()` inside the run use them. It
builds the context the way Prefect does (`PREFECT_API_SSL_CERT_FILE`, else certifi's bundle;
none verified with `PREFECT_API_TLS_INSECURE_SKIP_VERIFY`) and the clients with the same
URL, key and auth string; with no API URL (Prefect's ephemeral server) it does nothing.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["api_clients", "api_tls"]


@functools.lru_cache(maxsize=4)
def api_tls(cert_file: str | None, insecure: bool) -> ssl.SSLContext:
    """The context Prefect's clients would build for these settings, built once."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import certifi

    return ssl.create_default_context(cafile=cert_file or certifi.where())


@asynccontextmanager
async def api_clients() -> AsyncIterator[None]:
    """Enter a sync and an async Prefect client for this loop, on the shared context."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.context import AsyncClientContext, SyncClientContext
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_KEY,
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        PREFECT_API_URL,
    )

    api = PREFECT_API_URL.value()
    if not api:
        yield
        return
    tls = api_tls(PREFECT_API_SSL_CERT_FILE.value() or None,
                  bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value()))
    options = {"auth_string": PREFECT_API_AUTH_STRING.value(),
               "api_key": PREFECT_API_KEY.value(), "httpx_settings": {"verify": tls}}
    with SyncClientContext.model_construct(client=SyncPrefectClient(api, **options)):
        async with AsyncClientContext.model_construct(client=PrefectClient(api, **options)):
            yield
