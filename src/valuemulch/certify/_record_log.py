"""The certificate's reference to its evaluation log (every raw LLM output the certification read).
Split from ``_record`` to keep that module readable."""

from __future__ import annotations

from valuemulch.certify._record_layer import _Strict


class EvaluationLogRef(_Strict):
    """The evaluation log sidecar, bound to the signed certificate by its hash."""

    file: str
    """Its file name, beside ``certificate.json``."""
    sha256: str
    """SHA-256 of the file's bytes; ``verify`` checks it before replaying anything from it."""
    n_entries: int
    """Lines in the file: one per distinct request a language model answered."""
