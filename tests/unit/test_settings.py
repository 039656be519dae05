"""One `Settings` for every path and limit: the same variables, defaults and precedence as the five
lookups it replaced (data, cache, keys, registry, audit), and a description on every field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from valuemulch.data import resolve_data_root, user_cache_dir
from valuemulch.errors import ConfigError
from valuemulch.settings import Limits, ServeSettings, Settings

PATHS = {"cache": "VALUEMULCH_CACHE", "keys": "VALUEMULCH_KEYS", "registry": "VALUEMULCH_REGISTRY", "audit": "VALUEMULCH_AUDIT"}


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ValueMulch or XDG variables set; HOME is ``tmp_path/home``."""
    for name in [*PATHS.values(), "VALUEMULCH_DATA", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_defaults_are_the_xdg_directories_under_home(clean: Path) -> None:
    s = Settings()
    assert s.data is None
    assert s.cache == clean / ".cache" / "valuemulch"
    assert s.keys == clean / ".config" / "valuemulch" / "keys"
    assert s.registry == clean / ".local" / "share" / "valuemulch" / "registry.sqlite"
    assert s.audit == clean / ".local" / "share" / "valuemulch" / "audit.sqlite"


def test_xdg_variables_move_the_defaults(clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "k"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    s = Settings()
    assert (s.cache, s.keys) == (tmp_path / "c" / "valuemulch", tmp_path / "k" / "valuemulch" / "keys")
    assert (s.registry, s.audit) == (tmp_path / "d" / "valuemulch" / "registry.sqlite", tmp_path / "d" / "valuemulch" / "audit.sqlite")
    monkeypatch.setenv("XDG_DATA_HOME", "")  # empty counts as unset, as before
    assert Settings().audit == clean / ".local" / "share" / "valuemulch" / "audit.sqlite"


@pytest.mark.parametrize("field", sorted(PATHS))
def test_each_path_has_its_old_variable_which_wins_over_xdg(
    field: str, clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(PATHS[field], str(tmp_path / "mine"))
    assert getattr(Settings(), field) == tmp_path / "mine"
    monkeypatch.setenv(PATHS[field], "")
    assert getattr(Settings(), field) != tmp_path / "mine"


def test_the_old_lookups_read_the_settings(clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from valuemulch.certify._signing import default_key_dir

    monkeypatch.setenv("VALUEMULCH_KEYS", str(tmp_path / "keys"))
    monkeypatch.setenv("VALUEMULCH_CACHE", str(tmp_path / "cache"))
    assert default_key_dir() == tmp_path / "keys" and user_cache_dir() == tmp_path / "cache"


def test_data_flag_wins_over_env_which_wins_over_the_cache(clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("flag", "env", "cache/data"):
        (tmp_path / name).mkdir(parents=True)
    monkeypatch.setenv("VALUEMULCH_CACHE", str(tmp_path / "cache"))
    assert resolve_data_root() == tmp_path / "cache" / "data"
    monkeypatch.setenv("VALUEMULCH_DATA", str(tmp_path / "env"))
    assert Settings().data == tmp_path / "env" and resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "flag") == tmp_path / "flag"


def test_limits_and_serve_options_come_from_nested_variables(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEMULCH_LIMITS__MAX_BATCH", "8")
    monkeypatch.setenv("VALUEMULCH_SERVE__ALLOW_UNCERTIFIED", "true")
    s = Settings()
    assert s.limits == Limits(max_batch=8) and s.serve == ServeSettings(allow_uncertified=True)


def test_typos_and_bad_values_fail() -> None:
    with pytest.raises(ValidationError, match="max_optoins"):
        Limits(max_optoins=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="max_options"):
        Limits(max_options=27)  # the chat endpoint letters options A-Z
    with pytest.raises(ConfigError, match="VALUEMULCH_REGSITRY: Extra inputs are not permitted"):
        Settings(regsitry="x")  # type: ignore[call-arg]


@pytest.mark.parametrize("model", [Settings, Limits, ServeSettings])
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    assert [name for name, f in model.model_fields.items() if not f.description] == []


def test_a_bad_environment_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, an invalid limit raised pydantic's multi-line ValidationError from deep in a command."""
    from valuemulch.errors import ConfigError
    from valuemulch.settings import Settings

    monkeypatch.setenv("VALUEMULCH_LIMITS__MAX_OPTIONS", "40")
    with pytest.raises(ConfigError, match=r"^VALUEMULCH_LIMITS__MAX_OPTIONS: .*less than or equal to 26; got '40'\. Fix or unset"):
        Settings()
