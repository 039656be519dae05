"""The decision service: a FastAPI app that answers *for a community*, inside the three tiers of bounds.

Every answer goes through ``apply_bounds`` (the function certification measured), is written to the
hash-chained audit log, and only then returned. Requests are validated before any model runs, and
every error has one JSON shape: ``{"error": {"status", "code", "message", "field"}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from valuemulch.bounds import BoundedAnswer, OrgPolicy, apply_bounds, default_detector, load_org_policy
from valuemulch.certify import canonical_json, certificate_id, file_hashes, model_population, trusted_keys, verify_document
from valuemulch.deploy._audit import AuditLog, request_hash
from valuemulch.deploy._registry import Entry, Registry
from valuemulch.errors import ConfigError, ValuemulchError
from valuemulch.policies import Policy
from valuemulch.types import Question

MODEL_PREFIX = "valuemulch/"
PREDICTION_CACHE = 4096  # distinct questions whose per-community answers stay in memory
_CACHE_LOCK = threading.Lock()
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger requests get 413 or 422 before any model runs."""

    max_body_bytes: int = 256_000
    max_options: int = 26  # option letters A-Z in the chat endpoint
    max_batch: int = 64
    max_question_chars: int = 4_000
    max_option_chars: int = 500
    max_community_chars: int = 200


LIMITS = Limits()


@dataclass
class ServiceConfig:
    model: str | None = None  # a registry id or a model directory; None: the promoted model
    registry: Path | None = None
    audit: Path | None = None
    policy_file: Path | None = None  # tier 2
    admin_key_hash: str | None = None  # hex SHA-256 of the admin API key
    allow_uncertified: bool = False
    trusted_keys: list[Path] = field(default_factory=list)  # public keys whose certificates we accept (default: our own)
    limits: Limits = field(default_factory=Limits)


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field_name


def error_body(status: int, code: str, message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "field": field_name}}


# -- the loaded model ------------------------------------------------------------------------------
@dataclass
class Deployment:
    """One model, its certificate and the tier-2 policy: swapped whole on reload, never edited."""

    model_id: str
    model_dir: Path
    policy: Policy
    communities: list[str]
    certificate_id: str | None
    certified: bool
    certificate: dict[str, Any] | None
    org_policy: OrgPolicy

    _predictions: OrderedDict[tuple[object, ...], tuple[dict[str, np.ndarray], np.ndarray]] = field(default_factory=OrderedDict)

    def _predict(self, questions: list[Question]) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
        """Every community's raw answer and the population answer per question, memoised by content:
        deployers ask the same question for many communities, and the model is frozen while it serves."""
        keys = [(q.text, q.options, q.ordinal) for q in questions]
        found: dict[tuple[object, ...], tuple[dict[str, np.ndarray], np.ndarray]] = {
            k: v for k in keys if (v := self._predictions.get(k)) is not None
        }
        missing = [q for q, k in zip(questions, keys, strict=True) if k not in found]
        if missing:
            everyone = self.policy.predict_communities(self.communities, missing)
            population = model_population(self.policy, self.communities, missing)
            for i, q in enumerate(missing):
                found[(q.text, q.options, q.ordinal)] = ({c: everyone[c][i] for c in self.communities}, population[i])
            with _CACHE_LOCK:
                self._predictions.update(found)
                while len(self._predictions) > PREDICTION_CACHE:
                    self._predictions.popitem(last=False)
        return [found[k] for k in keys]

    def answers(self, community: str, questions: list[Question], strength: float) -> list[tuple[BoundedAnswer, np.ndarray]]:
        """Bounded answers; the population answer is the mean over the model's communities, as certified."""
        out = []
        for q, (everyone, population) in zip(questions, self._predict(questions), strict=True):
            raw = everyone[community]
            bounded = apply_bounds(
                q, raw, community, self.org_policy, population=population, strength=strength, detector=default_detector()
            )
            out.append((bounded, raw))
        return out


def checked_certificate(path: Path, expected_id: str, trusted_key_files: list[Path]) -> dict[str, Any]:
    """The certificate a registry entry points to, refused unless its id matches its content and it is
    signed by a trusted key: the registry's `certified` flag alone is not evidence."""
    try:
        certificate = json.loads(path.read_text(encoding="utf-8"))
        certificate["model"]["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: cannot read the model's certificate ({err}); register the model again.") from None
    if certificate.get("certificate_id") != expected_id or certificate_id(certificate, canonical_json) != expected_id:
        raise ConfigError(
            f"{path}: the certificate's content does not match id {expected_id} recorded in the registry; it was changed."
        )
    trusted = trusted_keys(trusted_key_files)
    ok, reason = verify_document(certificate, trusted)
    if not ok:
        raise ConfigError(f"{path}: {reason}. Pass --key with the signer's public key, or certify the model again with your key.")
    return certificate


def load_deployment(config: ServiceConfig, registry: Registry, org_policy: OrgPolicy) -> Deployment:
    """Resolve ``--model`` to a registered, certified model (or refuse), and check its files are the certified ones."""
    entry: Entry | None
    if config.model is None:
        entry = registry.promoted()
        if entry is None:
            raise ConfigError(
                f"No promoted model in {registry.path}. Run `valuemulch registry promote ID` (ids: `valuemulch registry list`), "
                "or pass --model ID|DIR."
            )
    elif Path(config.model).is_dir():
        entry = registry.find_by_dir(config.model)
    else:
        entry = registry.get(config.model)
    if entry is not None and entry.status == "retired":
        raise ConfigError(f"Model '{entry.id}' is retired; promote another one.")
    certified = entry is not None and entry.certified
    if not certified and not config.allow_uncertified:
        what = f"'{entry.id}' is not certified" if entry is not None else f"{config.model} is not in the registry"
        raise ConfigError(
            f"{what}; only certified models serve. For development pass --allow-uncertified (answers are marked uncertified)."
        )
    model_dir = Path(entry.model_dir if entry is not None else str(config.model))
    certificate = None
    if entry is not None:
        certificate = checked_certificate(Path(entry.certificate), entry.certificate_id, config.trusted_keys)
        hashes = file_hashes(model_dir)
        changed = sorted(
            f for f in set(hashes) | set(certificate["model"]["files"]) if certificate["model"]["files"].get(f) != hashes.get(f)
        )
        if changed:
            raise ConfigError(
                f"{model_dir}: files differ from its certificate ({changed or 'files added or missing'}); it will not serve."
            )
    policy = Policy.load(model_dir)
    communities = list(getattr(policy, "communities_", []))
    if not communities:
        raise ConfigError(f"{model_dir}: this policy has no communities to answer for.")
    return Deployment(
        model_id=entry.id if entry is not None else f"dir:{model_dir}",
        model_dir=model_dir,
        policy=policy,
        communities=communities,
        certificate_id=certificate["certificate_id"] if certificate and certified else None,
        certified=certified,
        certificate=certificate,
        org_policy=org_policy,
    )


# -- request and response bodies -------------------------------------------------------------------
def _encodable(text: str, what: str = "text") -> str:
    """JSON allows lone surrogates (\\ud800); nothing downstream can store or hash them, so refuse them here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode (a lone surrogate such as \\ud800)") from None
    return text


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("must be a number, not true/false")
    return v


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=LIMITS.max_question_chars, description="The question's wording.")
    options: list[str] = Field(min_length=2, max_length=LIMITS.max_options, description="Answer options in order.")
    ordinal: list[float | None] | None = Field(None, description="Each option's position on the scale, null off it.")

    @field_validator("question")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must contain text, not only spaces")
        return _encodable(v)

    @field_validator("options")
    @classmethod
    def _options(cls, v: list[str]) -> list[str]:
        for i, o in enumerate(v):
            if not o.strip():
                raise ValueError(f"option {i} is empty")
            _encodable(o, f"option {i}")
            if len(o) > LIMITS.max_option_chars:
                raise ValueError(f"option {i} has {len(o)} characters; at most {LIMITS.max_option_chars}")
        if len(set(v)) != len(v):
            raise ValueError("options must be distinct")
        return v

    @model_validator(mode="after")
    def _ordinal(self) -> QuestionIn:
        if self.ordinal is not None and len(self.ordinal) != len(self.options):
            raise ValueError(f"ordinal needs {len(self.options)} entries (one per option), got {len(self.ordinal)}")
        if self.ordinal is not None and any(x is not None and not (np.isfinite(x) and abs(x) <= 1e6) for x in self.ordinal):
            raise ValueError("ordinal positions must be finite numbers within +-1e6, or null")
        return self

    def to_question(self, qid: str) -> Question:
        ordinal = tuple(self.ordinal) if self.ordinal is not None else None
        return Question(qid, self.question, tuple(self.options), ordinal)


class DecideIn(QuestionIn):
    community: str = Field(
        min_length=1, max_length=LIMITS.max_community_chars, description="A community id from /v1/communities."
    )
    strength: float = Field(1.0, ge=0.0, le=1.0, description="Tier 3: how far to personalise, 0 = the population's answer.")
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="Sample the choice with this seed; without it, the most likely option."
    )

    _strength = field_validator("strength", mode="before")(_not_bool)
    _community = field_validator("community")(_encodable)


class BoundsOut(BaseModel):
    masked: list[int]
    refused: bool
    reasons: list[dict[str, Any]]


class DecideOut(BaseModel):
    decision_id: int
    distribution: list[float] | None
    choice: int | None
    choice_text: str | None
    bounds: BoundsOut
    model_id: str
    certificate_id: str | None
    certified: bool


class DistributionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    community: str = Field(min_length=1, max_length=LIMITS.max_community_chars)
    questions: list[QuestionIn] = Field(min_length=1, max_length=LIMITS.max_batch)
    strength: float = Field(1.0, ge=0.0, le=1.0)

    _strength = field_validator("strength", mode="before")(_not_bool)
    _community = field_validator("community")(_encodable)


class DistributionItem(BaseModel):
    decision_id: int
    distribution: list[float] | None
    bounds: BoundsOut


class DistributionOut(BaseModel):
    results: list[DistributionItem]
    model_id: str
    certificate_id: str | None
    certified: bool


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields we do not use
    model: str = Field(min_length=1, max_length=LIMITS.max_community_chars + len(MODEL_PREFIX))
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    n: int | None = Field(None, ge=1, le=1)


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str = Field(min_length=1, max_length=300)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: dict[str, Any] = Field(description="A tier-2 policy, as in a policy file (max_divergence, allowed_communities, ...).")


# -- helpers ---------------------------------------------------------------------------------------
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[\.\):]\s+(.+?)\s*$")


def parse_multiple_choice(text: str) -> tuple[str, list[str]]:
    """Question and options from a chat message: the question, then lines ``A. ...``, ``B. ...``."""
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if (m := _OPTION_LINE.match(line)) and m.group(1) == "A"), None)
    if start is None:
        raise ServiceError(
            422,
            "no_multiple_choice",
            "The last user message has no options: write the question, then one option per line as 'A. ...', 'B. ...'.",
            "messages",
        )
    options: list[str] = []
    for line in lines[start:]:
        m = _OPTION_LINE.match(line)
        if not m:
            if line.strip().lower().startswith("answer"):
                break
            continue
        if len(options) >= LIMITS.max_options:
            raise ServiceError(422, "too_many_options", f"At most {LIMITS.max_options} options (A to Z).", "messages")
        if m.group(1) != LETTERS[len(options)]:
            raise ServiceError(
                422,
                "bad_option_letters",
                f"Options must be lettered A, B, C... in order; found '{m.group(1)}' where '{LETTERS[len(options)]}' was expected.",
                "messages",
            )
        options.append(m.group(2))
    question = re.sub(r"^\s*question\s*:\s*", "", " ".join(x.strip() for x in lines[:start] if x.strip()), flags=re.IGNORECASE)
    if len(options) < 2 or not question:
        raise ServiceError(
            422, "no_multiple_choice", "Need a question followed by at least two options 'A. ...', 'B. ...'.", "messages"
        )
    return question, options


def _bounds_dict(answer: BoundedAnswer) -> dict[str, Any]:
    return {"masked": list(answer.masked), "refused": answer.refused, "reasons": [r.to_dict() for r in answer.reasons]}


def _bounds_out(answer: BoundedAnswer) -> BoundsOut:
    return BoundsOut(**_bounds_dict(answer))


def _choose(answer: BoundedAnswer, seed: int | None) -> int | None:
    if answer.distribution is None:
        return None
    if seed is None:
        return int(np.argmax(answer.distribution))
    return int(np.random.default_rng(seed).choice(len(answer.distribution), p=answer.distribution))


class BodyLimit:
    """Refuse bodies over the limit with 413, counting bytes as they arrive (Content-Length may lie or be absent)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_big = JSONResponse(
            error_body(413, "body_too_large", f"Request bodies are limited to {self.max_bytes} bytes."), status_code=413
        )
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_big(scope, receive, send)
            return
        # Read the whole body first (it is small by construction), so that an oversized chunked body
        # is answered 413 here instead of failing inside the framework's body parser.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = bool(message.get("more_body", False))
            if seen > self.max_bytes:
                await too_big(scope, receive, send)
                return
        body = b"".join(chunks)
        scope.setdefault("state", {})["raw_body"] = body  # what the audit log hashes: the request as received
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def raw_body(request: Request) -> bytes:
    """The request body exactly as received (kept by `BodyLimit`), so anyone holding it can find its audit record."""
    return bytes(getattr(request.state, "raw_body", b""))


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


# -- the app ---------------------------------------------------------------------------------------
def create_app(config: ServiceConfig) -> FastAPI:
    """Build the service: load the model and policy once, open the audit log, wire the routes."""
    registry = Registry(config.registry)
    org_policy = load_org_policy(config.policy_file) if config.policy_file is not None else OrgPolicy()
    state = {"deployment": load_deployment(config, registry, org_policy)}
    audit = AuditLog(config.audit)
    swap = threading.Lock()
    warm = state["deployment"]  # load the encoder, the detector's classifier and the weights now, not on the first request
    warm.answers(warm.communities[0], [Question("warm-up", "Is this service ready?", ("Yes", "No"))], 1.0)

    app = FastAPI(
        title="ValueMulch decision service",
        version="1",
        description="Answers for a community inside three tiers of bounds; every decision is audited.",
    )
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return JSONResponse(
                error_body(422, "invalid_json", f"The body is not valid JSON: {first.get('msg')}."), status_code=422
            )
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        message = f"{where or 'body'}: {first.get('msg', 'invalid')}" + (
            f" ({len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        )
        return JSONResponse(error_body(422, "invalid_request", message, where), status_code=422)

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.code, exc.message, exc.field), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(exc.status_code, code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(ValuemulchError)
    async def _domain(_: Request, exc: ValuemulchError) -> JSONResponse:
        return JSONResponse(error_body(422, "invalid_request", str(exc)), status_code=422)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        logging.getLogger(__name__).exception("unhandled error")
        return JSONResponse(
            error_body(500, "internal_error", f"Internal error ({type(exc).__name__}); it is logged."), status_code=500
        )

    def deployment() -> Deployment:
        return state["deployment"]

    def community_of(d: Deployment, community: str) -> str:
        if community not in d.communities:
            raise ServiceError(
                404,
                "unknown_community",
                f"Unknown community '{community}'; GET /v1/communities lists the {len(d.communities)} this model answers for.",
                "community",
            )
        return community

    def decide(
        d: Deployment, body: bytes, endpoint: str, community: str, questions: list[Question], strength: float
    ) -> list[tuple[BoundedAnswer, Any]]:
        """Answer and audit; a record is committed before its answer leaves."""
        results = d.answers(community, questions, strength)
        digest = request_hash(body)
        out = []
        for q, (answer, _) in zip(questions, results, strict=True):
            record = audit.append(
                request_hash=digest,
                community=community,
                model_id=d.model_id,
                certificate_id=d.certificate_id,
                certified=d.certified,
                endpoint=endpoint,
                bounds=_bounds_dict(answer),
                answer={
                    "question": q.text,
                    "options": list(q.options),
                    "distribution": None if answer.distribution is None else answer.distribution.tolist(),
                },
            )
            out.append((answer, record))
        return out

    @app.post(
        "/v1/decide",
        response_model=DecideOut,
        responses={404: {"description": "unknown community"}, 422: {"description": "invalid request"}},
    )
    def decide_one(payload: DecideIn, request: Request) -> JSONResponse:
        """One question for one community: the bounded distribution and a choice."""
        d = deployment()
        community = community_of(d, payload.community)
        question = payload.to_question(f"request:{uuid.uuid4().hex[:12]}")
        body = raw_body(request)
        [(answer, record)] = decide(d, body, "/v1/decide", community, [question], payload.strength)
        choice = _choose(answer, payload.seed)
        # Built as plain JSON (the schema is DecideOut): validating our own output again costs more than the rest.
        return JSONResponse(
            {
                "decision_id": record.seq,
                "distribution": None if answer.distribution is None else answer.distribution.tolist(),
                "choice": choice,
                "choice_text": None if choice is None else question.options[choice],
                "bounds": _bounds_dict(answer),
                "model_id": d.model_id,
                "certificate_id": d.certificate_id,
                "certified": d.certified,
            }
        )

    @app.post("/v1/distribution", response_model=DistributionOut, responses={404: {"description": "unknown community"}})
    def distribution(payload: DistributionIn, request: Request) -> DistributionOut:
        """A batch of questions for one community: bounded distributions, one audit record each."""
        d = deployment()
        community = community_of(d, payload.community)
        questions = [q.to_question(f"request:{uuid.uuid4().hex[:12]}") for q in payload.questions]
        body = raw_body(request)
        results = decide(d, body, "/v1/distribution", community, questions, payload.strength)
        items = [
            DistributionItem(
                decision_id=r.seq, distribution=None if a.distribution is None else a.distribution.tolist(), bounds=_bounds_out(a)
            )
            for a, r in results
        ]
        return DistributionOut(results=items, model_id=d.model_id, certificate_id=d.certificate_id, certified=d.certified)

    @app.get("/v1/communities")
    def communities() -> dict[str, Any]:
        """The communities this model answers for, with their certified 1-JSD where there is one."""
        d = deployment()
        per = (d.certificate or {}).get("evaluation", {}).get("seen", {}).get("per_community", {}) if d.certified else {}
        return {
            "model_id": d.model_id,
            "certified": d.certified,
            "communities": [{"id": c, "certified_one_minus_jsd": per.get(c, {}).get("one_minus_jsd")} for c in d.communities],
        }

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        d = deployment()
        return {
            "status": "ok",
            "model_id": d.model_id,
            "certificate_id": d.certificate_id,
            "certified": d.certified,
            "audit_records": audit.count(),
        }

    @app.post("/v1/chat/completions", responses={404: {"description": "unknown community"}})
    def chat(payload: ChatIn, request: Request) -> dict[str, Any]:
        """OpenAI-compatible: ``model`` names a community (``valuemulch/<community>``); the last user
        message holds a multiple-choice question; the reply is the bounded choice's letter."""
        d = deployment()
        if not payload.model.startswith(MODEL_PREFIX):
            raise ServiceError(
                404, "unknown_community", f"model must be '{MODEL_PREFIX}<community>', got '{payload.model}'.", "model"
            )
        community = community_of(d, payload.model.removeprefix(MODEL_PREFIX))
        user = [m for m in payload.messages if m.role == "user"]
        if not user or not isinstance(user[-1].content, str):
            raise ServiceError(
                422, "no_multiple_choice", "Expected a user message with text content holding the question.", "messages"
            )
        text, options = parse_multiple_choice(user[-1].content)
        try:
            question = QuestionIn(question=text[: LIMITS.max_question_chars], options=options, ordinal=None).to_question(
                f"request:{uuid.uuid4().hex[:12]}"
            )
        except ValidationError as err:
            first = err.errors()[0]
            raise ServiceError(422, "invalid_request", f"messages: {first.get('msg', 'invalid question')}", "messages") from None
        body = raw_body(request)
        [(answer, record)] = decide(d, body, "/v1/chat/completions", community, [question], 1.0)
        choice = _choose(answer, payload.seed)
        content = "I can't answer that: every option crosses a line I won't cross." if choice is None else LETTERS[choice]
        logprobs = None
        if payload.logprobs and answer.distribution is not None and choice is not None:
            top = [
                {"token": LETTERS[i], "logprob": float(np.log(p)), "bytes": list(LETTERS[i].encode())}
                for i, p in sorted(enumerate(answer.distribution), key=lambda x: -x[1])
                if p > 0
            ][: payload.top_logprobs or 0]
            logprobs = {
                "content": [
                    {
                        "token": LETTERS[choice],
                        "logprob": float(np.log(answer.distribution[choice])),
                        "bytes": list(LETTERS[choice].encode()),
                        "top_logprobs": top,
                    }
                ]
            }
        return {
            "id": f"chatcmpl-{record.seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": logprobs, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1},
            "valuemulch": {
                "decision_id": record.seq,
                "bounds": _bounds_dict(answer),
                "certified": d.certified,
                "certificate_id": d.certificate_id,
            },
        }

    # -- admin: an API key, stored hashed, compared in constant time --------------------------------
    def admin(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise ServiceError(401, "unauthorized", "Admin endpoints need 'Authorization: Bearer <admin key>'.")
        if config.admin_key_hash is None:
            raise ServiceError(403, "forbidden", "Admin endpoints are disabled: start `valuemulch serve` with --admin-key-file.")
        given = hashlib.sha256(header[7:].strip().encode()).hexdigest()
        if not hmac.compare_digest(given, config.admin_key_hash):
            raise ServiceError(403, "forbidden", "The admin key is not valid.")

    def reload(model: str | None) -> Deployment:
        with swap:
            fresh = load_deployment(replace(config, model=model), registry, deployment().org_policy)
            state["deployment"] = fresh
        return fresh

    @app.post("/v1/admin/promote", responses={401: {"description": "no key"}, 403: {"description": "wrong key"}})
    def promote(payload: PromoteIn, _: None = Depends(admin)) -> dict[str, Any]:
        """Promote a registered model and serve it from now on."""
        try:
            with swap:  # load first: the registry changes only once the new model is known to serve
                fresh = load_deployment(replace(config, model=payload.model_id), registry, deployment().org_policy)
                registry.promote(payload.model_id, allow_uncertified=config.allow_uncertified)
                state["deployment"] = fresh
            d = fresh
        except ConfigError as err:
            raise ServiceError(409, "cannot_promote", str(err), "model_id") from None
        return {"model_id": d.model_id, "certified": d.certified, "certificate_id": d.certificate_id}

    @app.post("/v1/admin/reload", responses={401: {"description": "no key"}, 403: {"description": "wrong key"}})
    def reload_route(_: None = Depends(admin)) -> dict[str, Any]:
        """Load the registry's promoted model again (after `valuemulch registry promote`)."""
        try:
            d = reload(None)
        except ConfigError as err:
            raise ServiceError(409, "cannot_reload", str(err)) from None
        return {"model_id": d.model_id, "certified": d.certified, "certificate_id": d.certificate_id}

    @app.put("/v1/admin/policy", responses={401: {"description": "no key"}, 403: {"description": "wrong key"}})
    def replace_policy(payload: PolicyIn, _: None = Depends(admin)) -> dict[str, Any]:
        """Replace the tier-2 policy (validated first; the old one stays on any error)."""
        try:
            policy = OrgPolicy.from_dict(payload.policy, where="policy")
        except ConfigError as err:
            raise ServiceError(422, "invalid_policy", str(err), "policy") from None
        with swap:
            d = deployment()
            state["deployment"] = Deployment(**{**d.__dict__, "org_policy": policy})
        return {"policy": payload.policy}

    return app
