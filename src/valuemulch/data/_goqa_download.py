"""Downloading GlobalOpinionQA from its official source, the Hugging Face dataset ``Anthropic/llm_global_opinions``.

Apart from the parsers (`_globalopinionqa`) because only the testbed loader needs the network path,
and its failures have their own rules: one line that says how to pass a local copy instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from valuemulch.data._cache import user_cache_dir
from valuemulch.errors import DataError
from valuemulch.filemodes import private_dir

HF_REPO_ID = "Anthropic/llm_global_opinions"
HF_FILENAME = "data/global_opinions.csv"
HF_URL = f"https://huggingface.co/datasets/{HF_REPO_ID}"


def default_cache_dir() -> Path:
    """Where the Hugging Face copy is cached: ``<user cache>/hf``."""
    return user_cache_dir() / "hf"


def download_global_opinions(cache_dir: Path | None = None) -> Path:
    """Fetch (or reuse the cached) ``data/global_opinions.csv`` of ``Anthropic/llm_global_opinions``.

    Any hub, network or offline failure becomes a one-line `DataError` saying how to pass a local
    copy instead, since the user can act on that and a hub traceback tells them nothing.
    With ``HF_HUB_OFFLINE`` set only the cache is consulted, so an offline run never waits on the network.
    """
    cache = private_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    offline = _env_true("HF_HUB_OFFLINE")
    try:
        import huggingface_hub
    except ImportError as err:
        raise _download_error(err, offline) from None
    try:
        local = huggingface_hub.hf_hub_download(
            repo_id=HF_REPO_ID,
            repo_type="dataset",
            filename=HF_FILENAME,
            cache_dir=cache,
            local_files_only=offline,
        )
    except _hub_errors() as err:
        raise _download_error(err, offline) from None
    return Path(local)


def _download_error(err: BaseException, offline: bool) -> DataError:
    detail = (str(err).strip().splitlines() or [""])[0]
    reason = "offline (HF_HUB_OFFLINE is set) and not in the cache" if offline else "the Hugging Face Hub could not be reached"
    return DataError(
        f"download of {HF_REPO_ID} ({HF_FILENAME}) failed: {reason}",
        expected="the CSV from the Hugging Face Hub",
        got=f"{type(err).__name__}: {detail}" if detail else type(err).__name__,
        fix=f"download the CSV from {HF_URL} and pass it with --norms PATH/global_opinions.csv",
    )


def _hub_errors() -> tuple[type[BaseException], ...]:
    """The exception types a failed hub download can raise, across huggingface_hub versions."""
    errors: list[type[BaseException]] = [OSError, ConnectionError, TimeoutError]
    try:
        from huggingface_hub import errors as hub_errors

        errors += [
            getattr(hub_errors, name)
            for name in ("HfHubHTTPError", "LocalEntryNotFoundError", "OfflineModeIsEnabled", "EntryNotFoundError")
            if hasattr(hub_errors, name)
        ]
    except ImportError:
        pass
    for module, name in (("requests", "RequestException"), ("httpx", "HTTPError"), ("httpx2", "HTTPError")):
        try:
            errors.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
