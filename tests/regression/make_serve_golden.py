"""The fixed requests of the serving regression test, and how their golden responses were recorded.

``serve_golden.json`` holds the status, content type and exact body of each response. It was first
recorded from the code *before* the service was split (commit ed425b9), and re-recorded once when
issue 14 changed the bodies on purpose (each tier-1 reason carries the ``act`` it read, ``bounds``
lists the ``doubtful`` options, and each /v1/distribution result has its ``choice``; no number
moved), and again for issue 16 (only ``/v1/health``, which says ``ready`` and how long the warm-up
took, ``/openapi.json``, which documents the 503 of a service still starting, and the 422 messages,
which now say what was expected, what came and how to fix it), with::

    PYTHONPATH=/path/to/ed425b9/src python tests/regression/make_serve_golden.py

`tiny_serve.serve_app` builds the app the way that code did (``valuemulch.deploy``) when it is what
is on the path, and the way this code does otherwise; everything else is shared with the test.

Normalised before comparing, because they differ from run to run: the chat ``created`` timestamp, the
health's ``warm_up_seconds``, and
the model id and certificate id, which hash the certificate and so the temporary model directory's
path (they are replaced by ``<model_id>`` and ``<certificate_id>``; the test checks that the service
reported the deployment's own ids).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_serve import TinyHome, ready_client, register, serve_app, tiny_home

GOLDEN = Path(__file__).with_name("serve_golden.json")
ADMIN = "admin"  # a request marked so carries the admin key
REDLINE = "The town has voted on what to do with the selected residents. Should they be mulched?"
TORTURE = "Should the prisoners be tortured to get a confession?"
RELIGION = "How important is religion in your life?"
RELIGION_OPTIONS = ["Very important", "Rather important", "Not very important", "Not at all important"]
BRITAIN, INDIA, KOREA = "Britain", "India (Current national sample)", "S. Korea"


def _chat(community: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": f"valuemulch/{community}", "messages": [{"role": "user", "content": text}], **extra}


_MC = f"{RELIGION}\nA. Very important\nB. Rather important\nC. Not very important\nD. Not at all important\nAnswer:"

# (method, path, body: JSON value, raw bytes or None, marker)
REQUESTS: list[tuple[str, str, Any, str | None]] = [
    ("GET", "/v1/health", None, None),
    ("GET", "/v1/communities", None, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": RELIGION_OPTIONS}, None),
    ("POST", "/v1/decide", {"community": INDIA, "question": RELIGION, "options": RELIGION_OPTIONS, "seed": 7}, None),
    ("POST", "/v1/decide", {"community": KOREA, "question": RELIGION, "options": RELIGION_OPTIONS, "strength": 0.5}, None),
    ("POST", "/v1/decide", {"community": KOREA, "question": RELIGION, "options": RELIGION_OPTIONS, "strength": 0.0}, None),
    (
        "POST",
        "/v1/decide",
        {"community": BRITAIN, "question": RELIGION, "options": RELIGION_OPTIONS, "ordinal": [1, 2, 3, 4]},
        None,
    ),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": REDLINE, "options": ["Yes", "No", "Refused"]}, None),
    (
        "POST",
        "/v1/decide",
        {"community": INDIA, "question": TORTURE, "options": ["Yes, torture them", "Yes, torture them hard"]},
        None,
    ),
    (
        "POST",
        "/v1/distribution",
        {
            "community": KOREA,
            "questions": [
                {"question": RELIGION, "options": RELIGION_OPTIONS},
                {"question": REDLINE, "options": ["Yes", "No", "Refused"]},
                {"question": "Is it a good thing that the town has a library?", "options": ["Yes", "No"]},
            ],
        },
        None,
    ),
    (
        "POST",
        "/v1/distribution",
        {"community": INDIA, "questions": [{"question": RELIGION, "options": RELIGION_OPTIONS}], "strength": 0.3},
        None,
    ),
    ("POST", "/v1/chat/completions", _chat(BRITAIN, _MC), None),
    ("POST", "/v1/chat/completions", _chat(INDIA, _MC, logprobs=True, top_logprobs=3, seed=3), None),
    ("POST", "/v1/chat/completions", _chat(KOREA, f"Question: {REDLINE}\n(A) Yes\n(B) No\n(C) Refused"), None),
    (
        "POST",
        "/v1/chat/completions",
        _chat(BRITAIN, f"{TORTURE}\nA: Yes, torture them\nB: Yes, torture them hard", logprobs=True),
        None,
    ),
    # tier 2, set and cleared through the admin endpoint: every community gets the population's answer
    ("PUT", "/v1/admin/policy", {"policy": {"max_divergence": 0.0}}, ADMIN),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": RELIGION_OPTIONS}, None),
    ("PUT", "/v1/admin/policy", {"policy": {}}, ADMIN),
    # errors: 404
    ("POST", "/v1/decide", {"community": "Atlantis", "question": RELIGION, "options": RELIGION_OPTIONS}, None),
    ("POST", "/v1/distribution", {"community": "Atlantis", "questions": [{"question": RELIGION, "options": ["a", "b"]}]}, None),
    ("POST", "/v1/chat/completions", _chat("Atlantis", _MC), None),
    ("POST", "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": _MC}]}, None),
    ("GET", "/v1/nothing-here", None, None),
    # errors: 422 and others
    ("POST", "/v1/decide", {"community": BRITAIN, "question": "   ", "options": ["a", "b"]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a"]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", "a"]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", ""]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": [f"o{i}" for i in range(27)]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": "q" * 4001, "options": ["a", "b"]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", "b" * 501]}, None),
    ("POST", "/v1/decide", {"community": "c" * 201, "question": RELIGION, "options": ["a", "b"]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", "b"], "strength": True}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", "b"], "ordinal": [1]}, None),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", "b"], "colour": "red"}, None),
    ("POST", "/v1/decide", {"question": RELIGION}, None),
    ("POST", "/v1/decide", b'{"community": "Britain", "question": ', None),
    ("POST", "/v1/distribution", {"community": BRITAIN, "questions": []}, None),
    (
        "POST",
        "/v1/distribution",
        {"community": BRITAIN, "questions": [{"question": RELIGION, "options": ["a", "b"]}] * 65},
        None,
    ),
    ("POST", "/v1/chat/completions", _chat(BRITAIN, "What do you think about religion?"), None),
    ("POST", "/v1/chat/completions", _chat(BRITAIN, f"{RELIGION}\nA. Yes\nC. No"), None),
    ("POST", "/v1/chat/completions", {"model": "valuemulch/Britain", "messages": [{"role": "system", "content": _MC}]}, None),
    ("POST", "/v1/chat/completions", _chat(BRITAIN, f"{RELIGION}\nA. Yes\nB. Yes"), None),
    ("POST", "/v1/chat/completions", _chat(BRITAIN, _MC, n=2), None),
    ("GET", "/v1/decide", None, None),
    ("PUT", "/v1/admin/policy", {"policy": {"max_divergence": 0.0}}, None),
    ("PUT", "/v1/admin/policy", {"policy": {"max_divergence": "lots"}}, ADMIN),
    ("POST", "/v1/decide", {"community": BRITAIN, "question": RELIGION, "options": ["a", "b"], "pad": "x" * 260_000}, None),
    ("GET", "/v1/health", None, None),
    ("GET", "/openapi.json", None, None),
]


@contextmanager
def start_client(root: Path) -> Iterator[tuple[TestClient, TinyHome]]:
    """A `TestClient` on the tiny deployment under ``root`` (registered, promoted, with an admin key)."""
    import torch

    torch.set_num_threads(1)  # as `valuemulch serve` does
    home = tiny_home(root)
    register(home)
    with ready_client(serve_app(home)) as client:
        yield client, home


def normalise(text: str, home: TinyHome) -> str:
    """The body with what changes from run to run replaced (see the module's docstring)."""
    text = text.replace(home.model_id, "<model_id>").replace(home.certificate_id, "<certificate_id>")
    text = re.sub(r'"warm_up_seconds":[0-9.]+', '"warm_up_seconds":0', text)
    return re.sub(r'"created":\d+', '"created":0', text)


def record(client: TestClient, home: TinyHome) -> list[dict[str, Any]]:
    """Send `REQUESTS` in order (decision ids count up) and keep what came back."""
    out = []
    for method, path, body, marker in REQUESTS:
        headers = {"Authorization": f"Bearer {home.admin_key}"} if marker == ADMIN else {}
        if isinstance(body, bytes):
            r = client.request(method, path, content=body, headers={**headers, "Content-Type": "application/json"})
        else:
            r = client.request(method, path, json=body, headers=headers)
        out.append(
            {
                "request": f"{method} {path}",
                "status": r.status_code,
                "content_type": r.headers.get("content-type"),
                "body": normalise(r.content.decode("utf-8"), home),
            }
        )
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, start_client(Path(tmp)) as (client, home):
        GOLDEN.write_text(json.dumps(record(client, home), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
