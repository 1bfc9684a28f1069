"""Conformance: public faces, every action typed and documented, the registry's rules."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import firelane
import integrations  # noqa: F401  (registers the bundled actions)
from firelane.registry import ActionContext, action, registered_actions


def test_public_face_is_exactly_what_it_says() -> None:
    for name in firelane.__all__:
        assert hasattr(firelane, name), name
    assert sorted(firelane.__all__) == firelane.__all__


def test_every_action_is_typed_and_documented() -> None:
    actions = registered_actions()
    assert {"core.note", "core.wait", "core.fail"} <= set(actions)
    for name, spec in actions.items():
        assert issubclass(spec.inputs, BaseModel) and issubclass(spec.outputs, BaseModel), name
        assert spec.summary, f"{name} has no docstring"
        assert name.count(".") == 1 and name == name.lower()


class _In(BaseModel):
    x: int


class _Out(BaseModel):
    y: int


async def _twice(inputs: _In, ctx: ActionContext) -> _Out:
    """Doubles x."""
    return _Out(y=inputs.x * 2)


def test_registering_the_same_function_again_is_harmless_but_a_clash_is_not() -> None:
    action("conformance.twice")(_twice)
    action("conformance.twice")(_twice)
    assert registered_actions()["conformance.twice"].fn is _twice

    async def other(inputs: _In, ctx: ActionContext) -> _Out:
        """Something else."""
        return _Out(y=0)

    with pytest.raises(ValueError, match="already registered"):
        action("conformance.twice")(other)


def test_registry_refuses_untyped_sync_or_badly_named_actions() -> None:
    def sync(inputs: _In, ctx: ActionContext) -> _Out:
        """Sync."""
        return _Out(y=1)

    async def untyped(inputs, ctx):  # type: ignore[no-untyped-def]
        """No models."""

    async def undocumented(inputs: _In, ctx: ActionContext) -> _Out:
        return _Out(y=1)

    with pytest.raises(TypeError, match="async def"):
        action("conformance.sync")(sync)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="pydantic model"):
        action("conformance.untyped")(untyped)
    with pytest.raises(TypeError, match="docstring"):
        action("conformance.undocumented")(undocumented)
    with pytest.raises(ValueError, match=r"integration\.verb_noun"):
        action("Bad-Name")(_twice)
