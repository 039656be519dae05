"""Serving: the model registry, the hash-chained audit log and the decision service (`create_app`)."""

from valuemulch.serve._audit import AuditLog, ChainReport, Record, request_hash, verify_chain
from valuemulch.serve._deployment import Deployment, LiveDeployment, load_deployment
from valuemulch.serve._registry import Entry, Registry, checked_certificate, signed_verdict
from valuemulch.serve.app import create_app

__all__ = [
    "AuditLog",
    "ChainReport",
    "Deployment",
    "Entry",
    "LiveDeployment",
    "Record",
    "Registry",
    "checked_certificate",
    "create_app",
    "load_deployment",
    "request_hash",
    "signed_verdict",
    "verify_chain",
]
