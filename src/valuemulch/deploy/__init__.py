"""Deployment: the model registry, the hash-chained audit log and the decision service."""

from valuemulch.deploy._admin_key import create_admin_key, read_admin_key_hash
from valuemulch.deploy._audit import AuditLog, ChainReport, default_audit_path, verify_chain
from valuemulch.deploy._registry import Entry, Registry, default_registry_path

__all__ = [
    "AuditLog",
    "ChainReport",
    "Entry",
    "Registry",
    "create_admin_key",
    "default_audit_path",
    "default_registry_path",
    "read_admin_key_hash",
    "verify_chain",
]
