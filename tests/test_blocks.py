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


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("block_cls", BLOCKS, ids=[b.__name__ for b in BLOCKS])
def test_blocks_save_load_and_never_show_secrets(block_cls: type[Block]) -> None:
    made = block_cls.for_sandbox("https://127.0.0.1:9", "/tmp/ca.pem")  # type: ignore[attr-defined]
    made.save("contract-test", overwrite=True)
    loaded: Any = block_cls.load("contract-test")
    assert loaded.model_dump() == made.model_dump()
    text = repr(loaded) + str(loaded.model_dump()) + loaded.model_dump_json()
    secrets = [v.get_secret_value() for v in vars(loaded).values() if isinstance(v, SecretStr)]
    assert secrets, "every credentials block holds at least one secret"
    for secret in secrets:
        assert f"'{secret}'" not in text and f'"{secret}"' not in text
