"""What the intake's tests share: a configured Alertmanager source, a sample payload and
posting to an in-process intake."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.intake.config import IntakeConfig, SecretRef, SourceSettings

HERE = Path(__file__).resolve().parent / "payloads"
AM = (HERE / "alertmanager_group_mixed.json").read_bytes()
TOKEN = {"authorization": "Bearer am-secret", "content-type": "application/json"}


def am_config(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> IntakeConfig:
    """An intake configuration with the Alertmanager source behind bearer `am-secret`."""
    monkeypatch.setenv("TEST_AM_TOKEN", "am-secret")
    return IntakeConfig(sources={"alertmanager": SourceSettings(
        bearer_token=SecretRef(env="TEST_AM_TOKEN"))}, **kw)


def post(app: Any, calls: list[tuple[str, bytes, dict[str, str]]]) -> list[httpx.Response]:
    """POST each (path, body, headers) to the ASGI `app` in turn; the responses."""
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return [await client.post(path, content=body, headers=headers)
                    for path, body, headers in calls]
    return asyncio.run(go())
