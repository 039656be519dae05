"""A real OpenAI-compatible ``/chat/completions`` server over the real SmolLM2, on 127.0.0.1.

Besides ``/v1`` (the model), the same server answers at prefixes that misbehave the way real servers
do, so clients are tested over real HTTP: ``/nologprobs/v1`` (no logprobs), ``/slow/v1`` (answers
after ``SLOW_S`` seconds), ``/reply/<name>/v1`` (a fixed chat reply from ``REPLIES``) and
``/doubt/<word>/v1`` (an unreadable reply when the message holds ``word``, else the "clear" verdict).
Without a model (``lm=None``) only the fixed replies are served.

Faults a real server has, on demand: ``Server.fail_next(n, status, retry_after)`` makes the next ``n``
POSTs answer ``status`` (429 or 503) with a ``Retry-After`` header, and run as a script
(``python tests/openai_server.py --port P --die-after N``) the server SIGKILLs its own process once it
has answered N requests: a server that dies in the middle of a run. ``delay_s`` slows every answer
and ``max_in_flight`` counts the most requests answered at once (a client's concurrency, seen here).
``logit_temperature`` flattens (>1) the served model's logprobs: a hosted model that changed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from valuemulch.backbones import HFCausalLM

SLOW_S = 3.0
REPLIES = {
    "garbage": "I think it is probably fine.",
    "extra": '{"crosses": false, "redline": null, "reason": "fine", "confidence": 0.9}',
    "unknown": '{"crosses": true, "redline": "jaywalking", "reason": "bad"}',
    "crosses": '```json\n{"crosses": true, "redline": "killing", "reason": "it kills people"}\n```',
    "clear": '{"crosses": false, "redline": null, "reason": "an ordinary act"}',
}


@dataclass
class Server:
    url: str
    requests: list[str] = field(default_factory=list)  # the path of every POST, in order
    times: list[float] = field(default_factory=list)  # time.monotonic() of every POST, in order
    faults: list[tuple[int, float]] = field(default_factory=list)  # (status, Retry-After) for the next POSTs
    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: int = 0  # 200 responses sent (for --die-after)
    delay_s: float = 0.0  # every POST waits this long before it is answered
    in_flight: int = 0
    max_in_flight: int = 0  # the most POSTs being answered at once
    logit_temperature: float = 1.0  # logprobs of logits / this: set it to serve a model changed behind its name

    def fail_next(self, count: int, status: int = 429, retry_after: float = 1.0) -> None:
        """The next ``count`` POSTs get ``status`` with ``Retry-After: retry_after`` and no completion."""
        with self.lock:
            self.faults.extend([(status, retry_after)] * count)


def _handler(lm: HFCausalLM | None, server: Server, die_after: int | None = None) -> type[BaseHTTPRequestHandler]:
    import torch

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            with server.lock:
                server.requests.append(self.path)
                server.times.append(time.monotonic())
                fault = server.faults.pop(0) if server.faults else None
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                time.sleep(server.delay_s)
                self._answer(fault)
            finally:
                with server.lock:
                    server.in_flight -= 1

        def _answer(self, fault: tuple[int, float] | None) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if fault is not None:
                status, wait = fault
                self._send(status, {"error": {"message": "busy, try again"}}, {"Retry-After": f"{wait:g}"})
                return
            if self.path.startswith(("/reply/", "/doubt/")):
                kind, word = self.path.split("/")[1:3]
                said = json.dumps(body["messages"][-1]["content"])
                name = word if kind == "reply" else ("garbage" if word in said else "clear")
                self._send(200, {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": REPLIES[name]}}]})
                return
            if self.path.startswith("/slow/"):
                time.sleep(SLOW_S)
            if not self.path.endswith("/v1/chat/completions") or lm is None:
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            tok, model = lm.tokenizer, lm.model
            ids = tok.apply_chat_template(body["messages"], add_generation_prompt=True, return_dict=True, return_tensors="pt")
            if body.get("logprobs") and not self.path.startswith("/nologprobs"):
                with torch.no_grad():
                    logp = torch.log_softmax(model(**ids).logits[0, -1].float() / server.logit_temperature, dim=-1)
                top = torch.topk(logp, int(body.get("top_logprobs", 0)) or 1)
                entries = [
                    {"token": tok.decode([int(i)]), "logprob": float(v)} for v, i in zip(top.values, top.indices, strict=True)
                ]
                content = [{**entries[0], "top_logprobs": entries}]
                message = {"role": "assistant", "content": entries[0]["token"]}
                choices = [{"index": 0, "message": message, "logprobs": {"content": content}}]
            else:
                temperature = float(body.get("temperature", 1.0))
                sampling = (
                    {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
                )
                torch.manual_seed(int(body.get("seed", 0)))
                with torch.no_grad():
                    out = model.generate(
                        **ids,
                        max_new_tokens=int(body.get("max_tokens", 16)),
                        num_return_sequences=int(body.get("n", 1)),
                        pad_token_id=tok.pad_token_id,
                        **sampling,
                    )
                texts = tok.batch_decode(out[:, ids["input_ids"].shape[1] :], skip_special_tokens=True)
                choices = [{"index": i, "message": {"role": "assistant", "content": t}} for i, t in enumerate(texts)]
            self._send(200, {"object": "chat.completion", "model": body["model"], "choices": choices})

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            if die_after is not None and status == 200:
                with server.lock:
                    server.answered += 1
                    if server.answered >= die_after:
                        os.kill(os.getpid(), signal.SIGKILL)

    return Handler


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """``handler`` served by threads on a free port of 127.0.0.1 (yielded) for the duration of the block."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def serve_openai(lm: HFCausalLM | None) -> Iterator[Server]:
    """The server on a free port of 127.0.0.1 for the duration of the block."""
    state = Server("")
    with serving(_handler(lm, state)) as port:
        state.url = f"http://127.0.0.1:{port}/v1"
        yield state


def main() -> None:
    """Serve the fixed replies (no model) on 127.0.0.1:PORT in this process; print the API root, then serve."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--die-after", type=int, default=None, help="SIGKILL this process after N answers")
    args = parser.parse_args()
    state = Server("")
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(None, state, args.die_after))
    print(f"http://127.0.0.1:{httpd.server_address[1]}/v1", flush=True)
    sys.stdout.close()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
