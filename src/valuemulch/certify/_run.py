"""``certify`` writes a signed certificate, its report and model card; ``verify`` re-checks all of it.

Verification trusts nothing in the file: the signature must come from a trusted key before any
field is used (`_trust`), the id must match the content, every model file and the evaluated data
must hash as recorded, and re-running the certification with the recorded settings must give the
same numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuemulch.certify._certificate import Built, Progress, build_body
from valuemulch.certify._config import CertifyConfig, evaluated_testbed
from valuemulch.certify._model_card import render_model_card
from valuemulch.certify._provenance import build_certificate, certificate_id
from valuemulch.certify._record import Report
from valuemulch.certify._records import read_records
from valuemulch.certify._report import render_report
from valuemulch.certify._requery import DRIFT_TOLERANCE, requery
from valuemulch.certify._signing import canonical_json, load_private_key, sign_document, verify_document
from valuemulch.certify._trust import confined, confined_hashes, load_document, recorded_model_dir, validate_report
from valuemulch.data import Testbed, load_testbed
from valuemulch.errors import ConfigError
from valuemulch.policies import EvaluationLog

CERTIFICATE = "certificate.json"
#: Numbers re-computed by ``verify`` must match the certificate within this absolute tolerance. On the
#: same machine and versions they match exactly; other CPUs may differ in the last bits of float sums.
TOLERANCE = 1e-6
#: Parts of the certificate that ``verify`` recomputes and compares, number by number.
COMPARED = ("testbed", "config", "evaluation", "bounds", "verdict")


@dataclass
class Written:
    """A signed certificate and the directory it was written to."""

    certificate: Report
    directory: Path

    @property
    def certified(self) -> bool:
        return self.certificate.verdict.certified


def certify(
    model_dir: str | Path,
    out: str | Path,
    config: CertifyConfig,
    data_root: Path,
    private_key: Path,
    progress: Progress | None = None,
    testbed: Testbed | None = None,
) -> Written:
    """Certify, sign and write ``certificate.json``, ``report.html`` and ``MODEL_CARD.md`` into ``out``.

    The directory appears whole or not at all (built beside it, then renamed), and a failing verdict
    is written like a passing one: the report is how people learn why.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty; choose a new directory (certificates are never overwritten).")
    load_private_key(private_key)  # a missing or unprotected key is refused now, not after the whole evaluation
    if testbed is None or testbed.name != config.testbed:
        testbed = load_testbed(config.testbed, data_root)
    built = build_certificate(model_dir, testbed, config, canonical_json, progress)
    signed = sign_document(built.report.document(), private_key)
    report = Report.model_validate(signed)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / CERTIFICATE).write_text(
            json.dumps(signed, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
        )
        (staging / report.records.file).write_bytes(built.records_bytes)
        if report.evaluation_log is not None and built.log_bytes is not None:
            (staging / report.evaluation_log.file).write_bytes(built.log_bytes)
        (staging / "report.html").write_text(render_report(report), encoding="utf-8")
        (staging / "MODEL_CARD.md").write_text(render_model_card(report), encoding="utf-8")
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Written(report, out)


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    """Every place where ``a`` (the certificate) and ``b`` (the re-run) differ beyond ``TOLERANCE``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(f"{where}: {'missing in the certificate' if key not in a else 'missing in the re-run'}")
            else:
                _diff(a[key], b[key], where, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} entries in the certificate, {len(b)} in the re-run")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        if not math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE):
            out.append(f"{path}: certificate {a!r}, re-run {b!r}")
    elif a != b:
        out.append(f"{path}: certificate {a!r}, re-run {b!r}")


def _check_sidecar(what: str, path: Path, expected: str, result: Verification) -> bool:
    """Whether a sidecar (the per-item records, the evaluation log) is there and hashes as the signed
    certificate says."""
    if not path.is_file():
        result.problems.append(f"{what}: {path} is missing; keep it beside certificate.json")
        return False
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        result.problems.append(f"{what}: {path.name} hashes to {actual[:16]}..., the certificate says {expected[:16]}...")
        return False
    result.checks.append(f"{what}: {path.name} hashes as recorded")
    return True


def _replay_log(cert_path: Path, report: Report, result: Verification) -> EvaluationLog | bool | None:
    """The certificate's evaluation log, ready to replay; None when it has none; False (with the
    reason in ``result``) when it is missing, tampered or unreadable."""
    ref = report.evaluation_log
    if ref is None:
        return None
    path = cert_path.parent / ref.file
    if not confined(path, cert_path.parent) or not _check_sidecar("evaluation log", path, ref.sha256, result):
        return False
    try:
        return EvaluationLog.read(path)
    except ConfigError as err:
        result.problems.append(f"evaluation log: {err}")
        return False


def _check_model(actual: dict[str, str], recorded: dict[str, str], result: Verification) -> bool:
    """Whether every file of the model hashes as the certificate says, none missing or added."""
    changed = sorted(f for f in set(recorded) | set(actual) if recorded.get(f) != actual.get(f))
    if changed:
        result.problems.append(
            "model files differ from the certificate: "
            + ", ".join(
                f"{f} ({'missing' if f not in actual else 'added' if f not in recorded else 'content changed'})" for f in changed
            )
        )
    else:
        result.checks.append(f"model files: {len(actual)} files match their SHA-256")
    return not changed


def _check_data(testbed: Testbed, config: CertifyConfig, report: Report, data_root: Path, result: Verification) -> bool:
    """Whether the items the certificate evaluated hash the same under ``data_root`` today."""
    data_now = {
        "seen_test": testbed.items(config.split, "seen").content_hash(),
        "unseen_test": testbed.items(config.split, "unseen").content_hash(),
        "frontier": testbed.frontier_items.content_hash(),
    }
    data_changed = [k for k, v in report.testbed.items_hash.model_dump().items() if data_now.get(k) != v]
    if data_changed:
        result.problems.append(
            f"data: the evaluated items changed since certification ({', '.join(data_changed)} hash differently under {data_root})"
        )
    else:
        result.checks.append("data: the evaluated items hash as recorded")
    return not data_changed


def _trusted_report(cert_path: Path, trusted: list[Any], result: Verification) -> tuple[dict[str, Any], Report] | None:
    """The certificate once a trusted key vouches for it and it validates; None (with the reason in
    ``result``) when the signature fails, before any path or field of it is used."""
    document = load_document(cert_path)
    ok, reason = verify_document(document, trusted)
    if not ok:
        result.problems.append(f"signature: {reason}")
        result.problems.append("not read: nothing in a certificate whose signature fails is used (no path, hash or setting)")
        return None
    result.checks.append(f"signature: {reason}")
    return document, validate_report(document, cert_path)


def verify(
    cert_path: str | Path,
    trusted: list[Any],
    data_root: Path,
    model_dir: Path | None = None,
    progress: Progress | None = None,
    *,
    requery: int | None = None,
    requery_tolerance: float = DRIFT_TOLERANCE,
) -> Verification:
    """Check the signature, the id, the model files, the records and the data, then re-run and compare every number.

    Only a certificate signed by a ``trusted`` key is read past its signature, and the files it names
    are read only inside its own directory and the model directory (``model_dir``, else the signed
    ``model.dir`` when it sits in the certificate's run directory).
    """
    result = Verification()
    cert_path = Path(cert_path)
    trusted_report = _trusted_report(cert_path, trusted, result)
    if trusted_report is None:
        return result
    document, report = trusted_report
    expected_id = certificate_id(document, canonical_json)
    if document.get("certificate_id") != expected_id:
        result.problems.append(f"certificate_id: recorded {document.get('certificate_id')}, content hashes to {expected_id}")

    records_path = cert_path.parent / report.records.file  # a plain file name (the schema says so), confined below
    if not confined(records_path, cert_path.parent):
        result.problems.append(f"records: {records_path} leads outside {cert_path.parent}; not read")
        return result
    records_ok = _check_sidecar("records", records_path, report.records.sha256, result)
    named, why = (Path(model_dir), "") if model_dir is not None else recorded_model_dir(report.model.dir, cert_path)
    if named is None:
        result.problems.append(why)
        return result
    model = named
    if not model.is_dir():
        result.problems.append(f"model: {model} is not a directory; pass --model with the certified model's directory")
        return result
    actual, outside = confined_hashes(model)
    if outside:
        result.problems.append(f"model: {', '.join(outside)} in {model} lead outside it; not read. Fix: copy the real files in")
        return result
    model_ok = _check_model(actual, report.model.files, result)
    config = report.config.settings()
    testbed = load_testbed(config.testbed, data_root)
    data_ok = _check_data(evaluated_testbed(testbed, config), config, report, data_root, result)
    if not (model_ok and data_ok):
        result.problems.append("not re-run: the model or the data is not what was certified")
        return result
    if not records_ok:
        result.problems.append("not re-run: the per-item records are not the ones the certificate was signed with")
        return result
    log = _replay_log(cert_path, report, result)
    if log is False:
        result.problems.append("not re-run: the evaluation log is not the one the certificate was signed with")
        return result

    with tempfile.TemporaryDirectory() as tmp:
        policy_file = Path(tmp) / report.verdict.policy_file  # a plain file name (the schema says so)
        policy_file.write_bytes(report.config.policy_text.encode("utf-8"))
        config.policy_file = str(policy_file)
        try:
            rerun = build_body(model, testbed, config, progress, log=log if isinstance(log, EvaluationLog) else None)
        except ConfigError as err:
            if not isinstance(log, EvaluationLog):
                raise
            result.problems.append(f"re-run from the evaluation log: {err}")
            return result
    if isinstance(log, EvaluationLog):
        result.checks.append(f"evaluation log: {log.replayed} model answers re-scored from the log, no model asked")
    _compare(document, report, rerun, records_path, result)
    if requery is not None:
        _check_drift(
            model, evaluated_testbed(testbed, config), config, cert_path, report, read_records(records_path), (requery, requery_tolerance), result, progress
        )
    return result


def _compare(document: dict[str, Any], report: Report, rerun: Built, records_path: Path, result: Verification) -> None:
    """Every recomputed number against the certificate's, and the records line by line when they differ."""
    rerun.report.config.policy_file = report.config.policy_file
    again = rerun.report.document()
    differences: list[str] = []
    for key in COMPARED:
        _diff(document.get(key), again.get(key), key, differences)
    if rerun.report.records.sha256 != report.records.sha256:  # equal hashes: the same bytes, nothing to diff
        recorded_items = [r.model_dump(mode="json") for r in read_records(records_path)]
        _diff(recorded_items, [r.model_dump(mode="json") for r in rerun.records], "records", differences)
    if differences:
        result.problems.append(
            f"re-run: {len(differences)} numbers differ (tolerance {TOLERANCE}):\n  " + "\n  ".join(differences[:40])
        )
    else:
        result.checks.append(f"re-run: every number matches (tolerance {TOLERANCE})")


def _check_drift(
    model: Path,
    testbed: Testbed,
    config: CertifyConfig,
    cert_path: Path,
    report: Report,
    records: list[Any],
    settings: tuple[int, float],
    result: Verification,
    progress: Progress | None,
) -> None:
    """``--requery N``: the live model's answers on N sampled items against the logged ones, per metric."""
    if report.evaluation_log is None:
        result.checks.append("requery: the certified model asks no language model, so there is nothing to ask again")
        return
    n, tolerance = settings
    found = requery(
        model,
        testbed,
        config,
        cert_path.parent / report.evaluation_log.file,
        records,
        n,
        tolerance=tolerance,
        say=progress or print,
    )
    line = f"requery: {len(found.items)} items asked again ({found.asked} prompts to the live model), drift per metric:\n  {found.table()}"
    if found.beyond:
        names = ", ".join(f"{d.metric} {d.change:+.4f}" for d in found.beyond)
        result.problems.append(
            f"{line}\n  drift beyond the tolerance {tolerance:g}: {names}. The live model no longer answers as certified; re-certify it."
        )
    else:
        result.checks.append(f"{line}\n  every drift within the tolerance {tolerance:g}")
