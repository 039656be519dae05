"""Deployment: the model registry (and, next, the decision service)."""

from valuemulch.deploy._registry import Entry, Registry, default_registry_path

__all__ = ["Entry", "Registry", "default_registry_path"]
