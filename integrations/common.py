"""What every integration shares: the one retry layer, credentials lookup, threads.

Vendor clients are synchronous; actions run them in worker threads with a cached (pooled)
client per credentials. The clients' own retries are switched off, so transient failures are
retried here, once per action attempt, around the whole "check, then create" sequence: a retry
after a lost response first finds what the lost call created.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from firelane.errors import (
    ConfigError,
    IntegrationError,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from firelane.lanes import run_blocking
from firelane.redaction import register_secrets_of
from firelane.registry import ActionContext
from firelane.settings import Settings

__all__ = [
    "BLOCK_TTL_SECONDS",
    "RetryPolicy",
    "cached_block",
    "close_pooled",
    "default_tls",
    "forget_blocks",
    "forget_pooled",
    "in_thread",
    "load_block",
    "pooled",
    "retrying",
    "sandbox_endpoint",
    "sandbox_timeout",
    "ssl_context",
    "vendor_error",
]

T = TypeVar("T")

BLOCK_TTL_SECONDS = 300.0
_BLOCKS: dict[tuple[str, str], tuple[float, Any]] = {}
log = logging.getLogger("firelane.integrations")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient vendor failures.

    `FIRELANE_RETRY_ATTEMPTS` (default 4), `FIRELANE_RETRY_BASE_SECONDS` (0.5),
    `FIRELANE_RETRY_MAX_SECONDS` (30; also caps a vendor's Retry-After) and
    `FIRELANE_RETRY_SETTLE_SECONDS` (2): after a failure whose outcome is unknown (timeout,
    dropped connection, 5xx) the next attempt waits at least this long, so a request the
    vendor was still processing lands before the retry checks for it.
    """

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    settle_seconds: float = 2.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The policy in force now."""
        settings = Settings.from_env()
        return cls(settings.retry_attempts, settings.retry_base_seconds,
                   settings.retry_max_seconds, settings.retry_settle_seconds)

    def delay(self, attempt: int, error: Exception) -> float:
        """Seconds to wait before `attempt + 1`: the vendor's Retry-After, else backoff."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return float(min(self.max_seconds, error.retry_after))
        backoff = float(self.base_seconds * 2 ** (attempt - 1))
        wait = min(self.max_seconds, backoff) * (0.5 + random.random() / 2)
        return max(wait, self.settle_seconds) if isinstance(error, VendorUnavailable) else wait


async def retrying(call: Callable[[], Awaitable[T]], ctx: ActionContext | None = None,
                   policy: RetryPolicy | None = None) -> T:
    """Run `call`, retrying rate limits and unavailability; each retry goes on the timeline."""
    policy = policy or RetryPolicy.from_env()
    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except (RateLimited, VendorUnavailable) as exc:
            if attempt == policy.attempts:
                raise
            wait = policy.delay(attempt, exc)
            if ctx is not None:
                ctx.emit("integration.retry", f"{exc}; retrying in {wait:.1f} s",
                         {"attempt": attempt, "error": str(exc), "wait_seconds": wait})
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous vendor call in a worker thread (the paging lane's, for pages)."""
    return await run_blocking(fn, *args, **kwargs)


def vendor_error(vendor: str, status: int | None, message: str,
                 retry_after: str | None = None) -> IntegrationError:
    """The Firelane error for a vendor's HTTP failure: 429 → `RateLimited` (with its
    Retry-After seconds), 5xx or no status → `VendorUnavailable`, other 4xx → `VendorRejected`."""
    if status == 429:
        after = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
        return RateLimited(vendor, message, after)
    if status is None or status >= 500:
        return VendorUnavailable(vendor, message, status)
    return VendorRejected(vendor, message, status)


_POOL: dict[tuple[str, ...], Any] = {}
_POOL_LOCK = threading.Lock()


def pooled(key: tuple[str, ...], make: Callable[[], T]) -> T:
    """One client per key for the whole process (its HTTP session is pooled and reused)."""
    with _POOL_LOCK:
        client = _POOL.get(key)
        if client is None:
            client = _POOL[key] = make()
        return client


def forget_pooled() -> None:
    """Drop every pooled client (tests that restart a vendor stand-in)."""
    with _POOL_LOCK:
        _POOL.clear()


def close_pooled() -> None:
    """Drop every pooled client and close its kept connections, before the server they talk
    to stops (an embedded sandbox would otherwise wait out its shutdown timeout on them)."""
    with _POOL_LOCK:
        clients = list(_POOL.values())
        _POOL.clear()
    for client in clients:
        close = getattr(client, "close", None)
        if callable(close):
            close()


@functools.lru_cache(maxsize=32)
def ssl_context(verify: str | bool) -> ssl.SSLContext | bool:
    """What httpx-based clients take for `verify`: a context for a CA file, else the bool.
    Cached: building a context reads the CA bundle, which costs milliseconds per call."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


@functools.lru_cache(maxsize=1)
def default_tls() -> ssl.SSLContext:
    """The verifying context httpx builds when given none (certifi's bundle, or the
    `SSL_CERT_FILE`/`SSL_CERT_DIR` it trusts), built once per process: each build reads the
    bundle for about 20 ms of CPU, and `http.check` runs twice per incident."""
    import httpx

    return httpx.create_ssl_context()


def sandbox_timeout() -> float:
    """Client timeout against the sandbox (`FIRELANE_SANDBOX_CLIENT_TIMEOUT`, default 10 s);
    fault tests shorten it to turn injected latency into client timeouts quickly."""
    return Settings.from_env().sandbox_client_timeout


def sandbox_endpoint() -> tuple[str, str]:
    """The running sandbox's URL and CA file (`FIRELANE_SANDBOX_URL`, `FIRELANE_SANDBOX_CA`)."""
    settings = Settings.from_env()
    url, ca = settings.sandbox_url, settings.sandbox_ca
    if not url or not ca:
        raise ConfigError("this execution runs against the sandbox, but no sandbox is running "
                          "(start one with `firelane sandbox`, or use `firelane run --sandbox`, "
                          "which embeds one)")
    return url.rstrip("/"), ca


async def cached_block(cls: Any, name: str, ttl: float = BLOCK_TTL_SECONDS) -> Any:
    """`cls.aload(name)`, kept for `ttl` seconds; when the Prefect API is down or slow (5 s),
    the last copy loaded is used (with a warning), so paging does not depend on Prefect
    answering. A missing block still raises `ValueError`."""
    key = (f"{cls.__module__}.{cls.__qualname__}", name)
    hit = _BLOCKS.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    try:
        async with asyncio.timeout(5):
            value = await cls.aload(name)
    except ValueError:
        raise
    except Exception as exc:
        if hit is not None:
            log.warning("Prefect API unavailable (%s); using the %s block %r loaded %.0f s ago",
                        type(exc).__name__, cls.__name__, name, now - hit[0])
            return hit[1]
        raise VendorUnavailable("prefect", f"cannot load the {cls.__name__} block {name!r}: "
                                f"{type(exc).__name__}: {exc}") from exc
    register_secrets_of(value)
    _BLOCKS[key] = (now, value)
    return value


def forget_blocks() -> None:
    """Drop every cached block (tests; a changed block is otherwise picked up within the TTL)."""
    _BLOCKS.clear()


async def load_block(cls: Any, ctx: ActionContext, kind: str) -> Any:
    """The credentials block for `kind`: the sandbox's in sandbox runs, else the Prefect block
    named in the runbook's `credentials:` (default `default`), through `cached_block`."""
    if ctx.sandbox:
        block = cls.for_sandbox(*sandbox_endpoint())
        register_secrets_of(block)
        return block
    name = ctx.credentials.get(kind, "default")
    try:
        return await cached_block(cls, name)
    except ValueError as exc:
        raise ConfigError(f"no {cls.__name__} block named {name!r}: create it in the Prefect "
                          f"UI or with `{cls.__name__}(...).save({name!r})`") from exc
