"""One settings model: every FIRELANE_* variable is a field, read when asked, refused clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firelane.errors import ConfigError
from firelane.settings import Settings, settings_reference

ROOT = Path(__file__).resolve().parent.parent
READ = re.compile(r"""(?:environ\.get\(|getenv\(|environ\[)\s*["'](FIRELANE_[A-Z_]+)["']"""
                  r"""\]?+(?!\s*=[^=])""")


def test_no_module_reads_a_firelane_variable_but_the_settings() -> None:
    readers = {}
    for path in [*ROOT.glob("firelane/**/*.py"), *ROOT.glob("flows/**/*.py"),
                 *ROOT.glob("integrations/**/*.py")]:
        if path == ROOT / "firelane" / "settings.py":
            continue
        found = READ.findall(path.read_text(encoding="utf-8"))
        if found:
            readers[str(path.relative_to(ROOT))] = found
    assert not readers, f"read FIRELANE_* through firelane.settings.Settings instead: {readers}"


def test_the_pattern_sees_a_read_and_not_a_write() -> None:
    assert READ.findall('x = os.environ.get("FIRELANE_X", "1")') == ["FIRELANE_X"]
    assert READ.findall('os.environ["FIRELANE_Y"] = url') == []


def test_values_are_parsed_and_reread_when_the_environment_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_PLUGINS", " a.b , c ,,")
    monkeypatch.setenv("FIRELANE_WAKE_ADDRESS", "off")
    monkeypatch.setenv("FIRELANE_CATALOG", "/etc/firelane/services.yaml")
    first = Settings.from_env()
    assert first.plugins == ("a.b", "c") and first.wake_address is None
    assert first.catalog_path == Path("/etc/firelane/services.yaml")
    monkeypatch.setenv("FIRELANE_WAKE_ADDRESS", "127.0.0.2:9000")
    monkeypatch.setenv("FIRELANE_RETRY_ATTEMPTS", "7")
    second = Settings.from_env()
    assert second.wake_address == ("127.0.0.2", 9000) and second.retry_attempts == 7


@pytest.mark.parametrize(("name", "value", "says"), [
    ("FIRELANE_LEASE_SECONDS", "soon", "valid number"),
    ("FIRELANE_LEASE_SECONDS", "0", "greater than 0"),
    ("FIRELANE_WAKE_ADDRESS", "localhost", "host:port"),
    ("FIRELANE_RETRY_ATTEMPTS", "2.5", "valid integer"),
])
def test_a_bad_value_names_the_variable_and_the_value(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        Settings.from_env()
    assert f"{name}={value!r}" in str(info.value) and says in str(info.value)


def test_the_reference_lists_every_variable() -> None:
    page = settings_reference()
    for name in ("FIRELANE_DATABASE_URL", "FIRELANE_CATALOG", "FIRELANE_WAKE_ADDRESS",
                 "FIRELANE_RETRY_SETTLE_SECONDS", "FIRELANE_SANDBOX_CLIENT_TIMEOUT"):
        assert f"| `{name}` |" in page
    assert page.count("| `FIRELANE_") == len(Settings.model_fields)
