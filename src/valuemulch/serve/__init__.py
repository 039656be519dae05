"""Serving: the model registry, the hash-chained audit log and the deployment the decision service answers with.

The app itself is `valuemulch.serve.app.create_app` (not imported here, so that commands that only
read the registry do not load the web framework)."""

from valuemulch.serve._admin_key import create_admin_key, read_admin_key_hash
from valuemulch.serve._audit import AuditLog, Record, request_hash
from valuemulch.serve._audit_copy import Copied, backup_audit, export_audit
from valuemulch.serve._audit_verify import ChainReport, verify_chain
from valuemulch.serve._decisions import choose
from valuemulch.serve._deployment import Deployment, LiveDeployment, load_deployment, make_guard
from valuemulch.serve._registry import Entry, Registry, checked_certificate, signed_verdict

__all__ = [
    "AuditLog",
    "ChainReport",
    "Copied",
    "Deployment",
    "Entry",
    "LiveDeployment",
    "Record",
    "Registry",
    "backup_audit",
    "checked_certificate",
    "choose",
    "create_admin_key",
    "export_audit",
    "load_deployment",
    "make_guard",
    "read_admin_key_hash",
    "request_hash",
    "signed_verdict",
    "verify_chain",
]
