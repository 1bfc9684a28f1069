"""requirements.lock decides every version: it is current with pyproject.toml, it pins every
direct requirement within its range, and what is installed is exactly what it pins."""

from __future__ import annotations

import importlib.util
import itertools
import re
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK_TEXT = (ROOT / "requirements.lock").read_text(encoding="utf-8")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", re.M)


def _lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("firelane_lock", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(LOCK_TEXT)}


def test_the_lock_was_made_from_this_pyproject() -> None:
    lock = _lock_script()
    first = LOCK_TEXT.splitlines()[0]
    assert first.startswith(lock.DIGEST_PREFIX), "requirements.lock has no digest line"
    assert first.removeprefix(lock.DIGEST_PREFIX) == lock.pyproject_digest(), (
        "pyproject.toml's dependencies changed since requirements.lock was made: run `make lock`")


def test_the_digest_changes_with_any_requirement(tmp_path: Path) -> None:
    lock = _lock_script()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace('"httpx>=0.27"', '"httpx>=0.28"'), encoding="utf-8")
    assert lock.pyproject_digest(changed) != lock.pyproject_digest()


def test_every_direct_requirement_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = _pins()
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for line in wanted:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside {req.specifier}")


def test_every_pin_carries_hashes() -> None:
    starts = [m.start() for m in PIN.finditer(LOCK_TEXT)] + [len(LOCK_TEXT)]
    unhashed = [LOCK_TEXT[a:b].split()[0] for a, b in itertools.pairwise(starts)
                if "--hash=sha256:" not in LOCK_TEXT[a:b]]
    assert len(starts) > 100 and not unhashed, unhashed


def test_every_locked_package_is_installed_at_its_pinned_version() -> None:
    wrong = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong[name] = f"locked {version}, installed {installed}"
    assert not wrong, f"the environment differs from requirements.lock (run `make venv`): {wrong}"
