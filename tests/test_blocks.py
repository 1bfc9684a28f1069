"""Every credentials Block passes Prefect's block standards, saves and loads, hides secrets."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites.blocks import BlockStandardTestSuite
from pydantic import SecretStr

from integrations import blocks

BLOCKS = blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.__name__ for b in BLOCKS])
class TestBlockStandards(BlockStandardTestSuite):
    """Prefect's conformance suite (description, docs URL, field descriptions, code example;
    the logo check needs Pillow and the internet and skips itself without them)."""

    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block


def _example(block_cls: type[Block]) -> Any:
    from integrations.alertmanager.block import AlertmanagerConnection
    from integrations.prometheus.block import PrometheusConnection
    from integrations.remediation.blocks import HttpHeaders, SshTarget, SupervisorCredentials

    examples: dict[type[Block], Any] = {
        SshTarget: lambda: SshTarget(host="10.0.0.5", user="ops", private_key=SecretStr(
            "-----BEGIN OPENSSH PRIVATE KEY-----x"), known_hosts="10.0.0.5 ssh-ed25519 AAAA"),
        HttpHeaders: lambda: HttpHeaders(headers={"Authorization": SecretStr("Bearer s3cr3t")}),
        SupervisorCredentials: lambda: SupervisorCredentials(username="ops",
                                                             password=SecretStr("pw-123456")),
        PrometheusConnection: lambda: PrometheusConnection(
            url="https://prometheus.internal:9090", bearer_token=SecretStr("prom-t0ken")),
        AlertmanagerConnection: lambda: AlertmanagerConnection(
            url="https://alertmanager.internal:9093", basic_username="ops",
            basic_password=SecretStr("am-pa55word")),
    }
    if block_cls in examples:
        return examples[block_cls]()
    return block_cls.for_sandbox("https://127.0.0.1:9", "/tmp/ca.pem")  # type: ignore[attr-defined]


def _secrets(block: Any) -> list[str]:
    out = []
    for value in vars(block).values():
        values = value.values() if isinstance(value, dict) else [value]
        out += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
    return out


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("block_cls", BLOCKS, ids=[b.__name__ for b in BLOCKS])
def test_blocks_save_load_and_never_show_secrets(block_cls: type[Block]) -> None:
    made = _example(block_cls)
    made.save("contract-test", overwrite=True)
    loaded: Any = block_cls.load("contract-test")
    assert loaded.model_dump() == made.model_dump()
    text = repr(loaded) + str(loaded.model_dump()) + loaded.model_dump_json()
    secrets = _secrets(loaded)
    assert secrets, "every credentials block holds at least one secret"
    for secret in secrets:
        assert f"'{secret}'" not in text and f'"{secret}"' not in text


@pytest.mark.usefixtures("prefect_api")
def test_cached_blocks_keep_paging_when_the_prefect_api_is_down(
        caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import logging

    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from bench.common import free_port
    from firelane.errors import VendorUnavailable
    from integrations.common import cached_block, forget_blocks

    Secret(value="routing-key-1").save("cache-test-key", overwrite=True)
    forget_blocks()
    first = asyncio.run(cached_block(Secret, "cache-test-key"))
    assert first.get() == "routing-key-1"
    with pytest.raises(ValueError):
        asyncio.run(cached_block(Secret, "no-such-block"))
    dead = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: dead}), \
            caplog.at_level(logging.WARNING, logger="firelane.integrations"):
        stale = asyncio.run(cached_block(Secret, "cache-test-key", ttl=0))
        assert stale.get() == "routing-key-1"
        assert any("Prefect API unavailable" in r.getMessage() for r in caplog.records)
        assert "routing-key-1" not in caplog.text
        forget_blocks()
        with pytest.raises(VendorUnavailable, match="cannot load the Secret block"):
            asyncio.run(cached_block(Secret, "cache-test-key"))
