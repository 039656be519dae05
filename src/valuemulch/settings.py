"""Every path and limit ValueMulch reads from the environment, in one pydantic-settings model.

Each field is read from ``VALUEMULCH_<FIELD>`` (the limits from ``VALUEMULCH_LIMITS__<FIELD>``); an
empty variable counts as unset. Paths the user does not set follow the XDG base directories, as
they always did. A command-line flag (``--data``, ``--audit``) wins over the environment: callers
pass it on, the settings never read ``sys.argv``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from valuemulch.errors import ConfigError

ENV_PREFIX = "VALUEMULCH_"


def env_name(field: str) -> str:
    """The environment variable a top-level `Settings` field is read from, for messages that name it."""
    return ENV_PREFIX + field.upper()


def _xdg(variable: str, fallback: str) -> Path:
    """``$XDG_..._HOME`` when set and not empty, else ``~/<fallback>``."""
    return Path(os.environ.get(variable) or Path.home() / fallback)


def _cache_default() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "valuemulch"


def _keys_default() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "valuemulch" / "keys"


def _registry_default() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "valuemulch" / "registry.sqlite"


def _audit_default() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "valuemulch" / "audit.sqlite"


class Limits(BaseModel):
    """What one request to the decision service may ask for; larger requests get 413 or 422 before any model runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_body_bytes: int = Field(default=256_000, gt=0, description="Largest request body in bytes; larger ones get 413.")
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds a request body may take to arrive; slower ones (slowloris) get 408."
    )
    max_options: int = Field(
        default=26, ge=2, le=26, description="Most options per question (the chat endpoint letters them A-Z)."
    )
    max_batch: int = Field(default=64, ge=1, description="Most questions in one /v1/distribution request.")
    max_question_chars: int = Field(default=4_000, ge=1, description="Longest question text, in characters.")
    max_option_chars: int = Field(default=500, ge=1, description="Longest option text, in characters.")
    max_community_chars: int = Field(default=200, ge=1, description="Longest community id, in characters.")
    max_chat_chars: int = Field(
        default=32_000,
        ge=1,
        description="Longest chat message the multiple-choice parser reads, in characters (bounds its work per request).",
    )
    max_total_chars: int = Field(
        default=64_000,
        ge=1,
        description="Most characters of question and option text in one request, all questions together; more gets 413.",
    )
    max_new_questions: int = Field(
        default=16,
        ge=1,
        description="Most questions in one request the service has not answered before (each costs model and detector "
        "time; answered ones are cached); more gets 413, so split the batch.",
    )
    deadline_s: float = Field(
        default=15.0,
        gt=0,
        description="Seconds of work one request may take; past it the work stops, nothing is logged, and the answer is "
        "503 with Retry-After.",
    )
    rate_per_minute: float | None = Field(
        default=600.0,
        gt=0,
        description="Requests per minute one client (by address) may make, on average; more get 429 with Retry-After. "
        "None: no limit (behind a proxy that limits instead).",
    )
    rate_burst: int = Field(default=60, ge=1, description="Requests one client may make at once before the rate applies.")


class ServeSettings(BaseModel):
    """Which model `valuemulch serve` answers with, under which tier-2 policy, and who may administer it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        default=None, description="A registry id or a model directory; None: the registry's promoted model."
    )
    policy_file: Path | None = Field(
        default=None, description="The tier-2 organisation policy (.toml or .yaml); None: no policy."
    )
    admin_key_hash: str | None = Field(
        default=None, description="Hex SHA-256 of the admin API key (`valuemulch admin-key`); None: admin endpoints are disabled."
    )
    allow_uncertified: bool = Field(
        default=False, description="Development only: serve a model that is not certified; answers say so."
    )
    trusted_keys: tuple[Path, ...] = Field(
        default=(), description="Public keys whose certificates are accepted; empty: this machine's own signing key."
    )
    guard_url: str | None = Field(
        default=None,
        description="API root of an OpenAI-compatible chat model that judges tier 1 too (e.g. http://127.0.0.1:8001/v1); it can only add masks.",
    )
    guard_model: str | None = Field(default=None, description="The model name the guard server serves (with guard_url).")
    workers: int = Field(
        default=40,
        ge=1,
        le=256,
        description="Threads answering requests at once (the rest queue). Each waits on the audit log's fsync, so on "
        "2 cores 40 answered more than 8 or 2 (docs/serve_benchmark.md).",
    )
    guard_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a guard verdict; a timeout counts as doubt."
    )
    audit_busy_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds an answer waits for the audit log when another process holds its lock; then 503, nothing sent.",
    )
    audit_max_bytes: int | None = Field(
        default=None,
        ge=4096,
        description="Cap on the audit log's size in bytes; a full log is answered like a full disk (503, nothing sent). "
        "None: only the disk limits it.",
    )
    audit_checkpoint_every: int = Field(
        default=1000,
        ge=1,
        description="Records between the audit log's signed checkpoints (one more is written at shutdown); "
        "at most this many records are ever covered by no signature.",
    )

    @model_validator(mode="after")
    def _guard_pair(self) -> ServeSettings:
        if (self.guard_url is None) != (self.guard_model is None):
            raise ValueError(
                f"guard_url and guard_model go together (got url {self.guard_url!r}, model {self.guard_model!r}); set both or neither."
            )
        return self


class Settings(BaseSettings):
    """Where ValueMulch keeps data, caches, keys, the registry and the audit log, and the service's limits."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_ignore_empty=True, extra="forbid", frozen=True
    )

    data: Path | None = Field(default=None, description="Survey data directory (`--data` wins over it); unset: `<cache>/data`.")
    cache: Path = Field(
        default_factory=_cache_default,
        description="Per-user cache for downloads, the default data directory and embeddings "
        "(default `$XDG_CACHE_HOME/valuemulch`, `~/.cache/valuemulch`).",
    )
    keys: Path = Field(
        default_factory=_keys_default,
        description="Directory of the Ed25519 key pair that signs certificates "
        "(default `$XDG_CONFIG_HOME/valuemulch/keys`, `~/.config/valuemulch/keys`).",
    )
    registry: Path = Field(
        default_factory=_registry_default,
        description="The model registry's SQLite file (default `$XDG_DATA_HOME/valuemulch/registry.sqlite`).",
    )
    audit: Path = Field(
        default_factory=_audit_default,
        description="The decision service's hash-chained audit log (default `$XDG_DATA_HOME/valuemulch/audit.sqlite`).",
    )
    limits: Limits = Field(default_factory=Limits, description="What one request to the decision service may ask for.")
    serve: ServeSettings = Field(default_factory=ServeSettings, description="What the decision service serves, and how.")

    def __init__(self, **values: Any) -> None:
        """Read the environment (``values`` win over it); a bad value is a one-line `ConfigError`
        naming the variable, what it must be and what it was, not a validation traceback."""
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise ConfigError(_explain(err)) from None


def _explain(err: ValidationError) -> str:
    """The first problem of a settings validation error, named as the environment variable to fix."""
    problem = err.errors()[0]
    name = ENV_PREFIX + "__".join(str(part) for part in problem["loc"]).upper()
    return (
        f"{name}: {problem['msg']}; got {problem.get('input')!r}. "
        f"Fix or unset the environment variable (or the value passed in code)."
    )
