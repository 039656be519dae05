"""Hyper-parameter overrides given as text, as a command line or a script passes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from valuemulch.errors import ConfigError


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """Read ``key=value`` pairs into keyword arguments for `build`.

    A value is read as JSON when it parses (``40`` is an int, ``true`` a bool, ``0.5`` a float), else
    kept as text, so ``--set backbone=minilm`` needs no quotes. The training config checks the values.

    Raises:
        ConfigError: a pair has no ``=`` or an empty key.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value (e.g. --set epochs=40), got '{pair}'.")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params
