"""Finding the model files that PyPI packages ship, without importing those packages.

It sits below both the encoders and the causal LMs, which each need it, so neither imports the other.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from valuemulch.errors import ConfigError


def package_dir(package: str, install_hint: str) -> Path:
    """Where an installed model package keeps its files, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"The model package '{package}' is not installed; install it with `{install_hint}`.")
    return Path(next(iter(spec.submodule_search_locations)))
