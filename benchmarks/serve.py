"""Requests per second and p99 of `valuemulch serve`'s POST /v1/decide next to a bare FastAPI endpoint.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/serve.py [--registry R [--model-dir D]] [--duration 10]

Needs wrk (`apt-get install wrk`). Both servers run as subprocesses on free ports on 127.0.0.1 with
the same uvicorn settings (one worker, log_level="warning", sync endpoints): (a) `valuemulch serve`
with a fresh audit log, and (b) a bare FastAPI app defined here, whose one sync `POST /bare` parses a
pydantic body of the same shape as /v1/decide and returns a small JSON (framework overhead only).
wrk runs on the same machine (loopback), with a Lua script that POSTs JSON bodies: for /v1/decide
it rotates over a few survey questions and every community the model answers for. A short warm-up
run of each endpoint comes first and is not reported. Without --registry/--model-dir the script runs
`valuemulch pipeline --testbed us-32` into a temporary directory first. The goal (issue): /v1/decide
at >= 50% of the bare endpoint's req/s and p99 <= 20 ms on 2 cores. `--stages N` then times the
stages of one decision in-process. Prints Markdown for docs/serve_benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

GOAL_RATIO = 0.5
GOAL_P99_MS = 20.0

# Survey-style questions (OpinionQA / World Values Survey wording), each asked for every community.
QUESTIONS: list[dict[str, Any]] = [
    {
        "question": "How much, if at all, do you trust the federal government to do what is right?",
        "options": ["Just about always", "Most of the time", "Only some of the time", "Never"],
    },
    {
        "question": "Overall, would you say the growing number of immigrants in the country strengthens or threatens American values?",
        "options": ["Strengthens", "Threatens", "Neither"],
    },
    {
        "question": "Do you favor or oppose stricter gun laws?",
        "options": ["Strongly favor", "Somewhat favor", "Somewhat oppose", "Strongly oppose"],
    },
    {
        "question": "How important is religion in your life?",
        "options": ["Very important", "Somewhat important", "Not too important", "Not at all important"],
    },
    {
        "question": "In the future, do you think automation will mostly help or mostly hurt American workers?",
        "options": ["Mostly help", "Mostly hurt", "Neither help nor hurt"],
    },
    {
        "question": "Is climate change a major threat, a minor threat, or not a threat to the well-being of the country?",
        "options": ["A major threat", "A minor threat", "Not a threat"],
    },
]

LUA = """
local bodies = {
%s
}
local counter = 1
local n = 0
function setup(thread)
  thread:set("id", n)
  n = n + 1
end
function init(args)
  counter = 1 + (id or 0) * 7
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  local body = bodies[(counter - 1) %% #bodies + 1]
  counter = counter + 1
  return wrk.format(nil, nil, nil, body)
end
"""


# -- the bare endpoint (run as `serve.py --bare-server PORT`) ---------------------------------------
class BareIn(BaseModel):
    """The same shape as /v1/decide's body, without its validators (module level, so FastAPI resolves the annotation)."""

    community: str
    question: str
    options: list[str]


def run_bare_server(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/bare")
    def bare(payload: BareIn) -> dict[str, Any]:
        return {"community": payload.community, "n_options": len(payload.options), "choice": 0}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", workers=1)


# -- servers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    base: str

    def wait_healthy(self, path: str, timeout: float = 180.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(
                    f"{self.name} server exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            try:
                return get_json(self.base + path, timeout=2)
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"{self.name} server not healthy after {timeout:.0f} s:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(name: str, args: list[str], env: dict[str, str], log: Path, port: int) -> Server:
    handle = log.open("wb")
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    return Server(name, proc, log, f"http://127.0.0.1:{port}")


# -- wrk -------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot read the duration '{text}' from wrk's output")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: str
    raw: str
    server_cpu_s: float = float("nan")  # the server process's user + system CPU time during the run

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1e3 / max(self.requests, 1)

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx


def parse_wrk(out: str) -> WrkResult:
    def find(pattern: str) -> re.Match[str]:
        m = re.search(pattern, out, re.MULTILINE)
        if not m:
            sys.exit(f"unexpected wrk output (no match for {pattern!r}):\n{out}")
        return m

    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:\s*(.+)$", out, re.MULTILINE)
    return WrkResult(
        requests=int(find(r"^\s*(\d+) requests in")[1]),
        rps=float(find(r"^Requests/sec:\s*([\d.]+)")[1]),
        p50_ms=to_ms(find(r"^\s*50%\s+(\S+)")[1]),
        p99_ms=to_ms(find(r"^\s*99%\s+(\S+)")[1]),
        non2xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=errors[1].strip() if errors else "none",
        raw=out,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_lua(path: Path, bodies: list[dict[str, Any]]) -> Path:
    lines = []
    for body in bodies:
        text = json.dumps(body)
        if "]==]" in text:
            raise ValueError("a request body contains ']==]'")
        lines.append(f"  [==[{text}]==],")
    path.write_text(LUA % "\n".join(lines), encoding="utf-8")
    return path


def run_wrk(url: str, script: Path, seconds: float, connections: int, threads: int, server: Server | None = None) -> WrkResult:
    cpu = cpu_seconds(server.proc.pid) if server is not None else float("nan")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    result = parse_wrk(proc.stdout)
    if server is not None:
        result.server_cpu_s = cpu_seconds(server.proc.pid) - cpu
    return result


# -- the model -------------------------------------------------------------------------------------
def prepare_model(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """``serve`` arguments and a description of the model; sets VALUEMULCH_REGISTRY in ``env``."""
    from valuemulch.serve import Registry

    if args.registry is not None:
        env["VALUEMULCH_REGISTRY"] = str(args.registry)
        registry = Registry(args.registry)
        if args.model_dir is not None:
            entry = registry.find_by_dir(args.model_dir)
            if entry is None:
                sys.exit(f"{args.model_dir} is not in the registry {args.registry}.")
            return ["--model", str(args.model_dir)], f"{entry.id} (from {args.registry})"
        entry = registry.promoted() or next((e for e in reversed(registry.list()) if e.certified and e.status != "retired"), None)
        if entry is None:
            sys.exit(f"{args.registry} has no promoted or certified model; pass --model-dir or run without --registry.")
        return ["--model", entry.id], f"{entry.id} (from {args.registry})"

    registry_path = tmp / "registry.sqlite"
    env["VALUEMULCH_REGISTRY"] = str(registry_path)
    if args.model_dir is not None:
        candidates = [
            args.model_dir / "certificate" / "certificate.json",
            args.model_dir.parent / "certificate" / "certificate.json",
        ]
        cert = next((c for c in candidates if c.is_file()), None)
        if cert is None:
            sys.exit(f"no certificate next to {args.model_dir} (looked for {', '.join(map(str, candidates))}); pass --registry.")
        entry = Registry(registry_path).register(cert)
        if not entry.certified:
            sys.exit(f"{entry.id} is not certified; `valuemulch serve` will not serve it.")
        return ["--model", entry.id], f"{entry.id} (from {args.model_dir})"

    print(f"running `valuemulch pipeline --testbed {args.testbed}` into {tmp / 'run'} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "valuemulch.cli", "pipeline", "--testbed", args.testbed, "--out", str(tmp / "run"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        sys.exit(f"pipeline failed or did not certify (exit {proc.returncode}):\n{proc.stderr[-3000:]}\n{proc.stdout[-2000:]}")
    result = json.loads(proc.stdout)
    print(f"pipeline: {time.perf_counter() - started:.0f} s, registered {result['registry_id']}", file=sys.stderr, flush=True)
    return ["--model", result["registry_id"]], f"{result['registry_id']} (pipeline run by this script)"


# -- in-process stage timings ----------------------------------------------------------------------
def time_stages(model_args: list[str], env: dict[str, str], bodies: list[dict[str, Any]], n: int, tmp: Path) -> list[str]:
    """The stages of one /v1/decide, timed in this process in the service's order (ms: mean, p50, p99)."""
    import numpy as np

    from valuemulch.bounds import OrgPolicy, apply_bounds, default_detector
    from valuemulch.serve import AuditLog, load_deployment, request_hash
    from valuemulch.serve.schemas import BoundsOut, DecideOut, request_models
    from valuemulch.settings import Settings

    settings = Settings(registry=Path(env["VALUEMULCH_REGISTRY"]), keys=Path(env["VALUEMULCH_KEYS"]))  # the servers' homes
    DecideIn = request_models(settings.limits).decide
    d = load_deployment(settings, model_args[1], OrgPolicy())
    audit = AuditLog(tmp / "stages-audit.sqlite")
    detector = default_detector()
    policy: Any = d.policy
    stages: dict[str, list[float]] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        stages.setdefault(name, []).append((time.perf_counter() - t) * 1e3)

    for i in range(len(bodies) + n):  # the first pass over the bodies warms the caches, as the warm-up run does
        if i == len(bodies):
            stages.clear()
        raw = json.dumps(bodies[i % len(bodies)]).encode()
        if hasattr(policy, "embeddings"):  # measured apart: predict_communities does this lookup again
            body = bodies[i % len(bodies)]
            texts = [body["question"], *body["options"], *(f"{body['question']} {o}" for o in body["options"])]
            with timed("embedding lookup alone (in-memory cache; part of predict_communities, not of the total)"):
                policy.embeddings.embed(texts)
        with timed("total (one request at a time)"):
            with timed("parse and validate the body (pydantic)"):
                payload = DecideIn.model_validate_json(raw)
                question = payload.to_question(f"request:{i}")
            with timed("canonical body + request hash"):
                digest = request_hash(json.dumps(payload.model_dump(), sort_keys=True).encode())
            with timed(f"predict_communities, all {len(d.communities)} communities"):
                everyone = policy.predict_communities(d.communities, [question])
            with timed("population mean"):
                population = np.mean([everyone[c][0] for c in d.communities], axis=0)
            with timed("apply_bounds (tier-1 detector, tiers 2-3)"):
                answer = apply_bounds(
                    question,
                    everyone[payload.community][0],
                    payload.community,
                    d.org_policy,
                    population=population,
                    strength=payload.strength,
                    detector=detector,
                )
            distribution = None if answer.distribution is None else answer.distribution.tolist()
            with timed("audit append (WAL, synchronous=FULL, COMMIT)"):
                record = audit.append(
                    request_hash=digest,
                    community=payload.community,
                    model_id=d.model_id,
                    certificate_id=d.certificate_id,
                    certified=d.certified,
                    endpoint="/v1/decide",
                    bounds=BoundsOut(masked=list(answer.masked), refused=answer.refused, reasons=[r.to_dict() for r in answer.reasons]).model_dump(),
                    answer={"question": question.text, "options": list(question.options), "distribution": distribution},
                )
            with timed("response model + JSON"):
                choice = None if distribution is None else int(np.argmax(distribution))
                DecideOut(
                    decision_id=record.seq,
                    distribution=distribution,
                    choice=choice,
                    choice_text=None if choice is None else question.options[choice],
                    bounds=BoundsOut(masked=list(answer.masked), refused=answer.refused, reasons=[r.to_dict() for r in answer.reasons]),
                    model_id=d.model_id,
                    certificate_id=d.certificate_id,
                    certified=d.certified,
                ).model_dump_json()
    audit.close()
    import torch

    threads = torch.get_num_threads()
    if threads > 1:  # the same forward pass with one intra-op thread: does the thread pool cost time on a busy machine?
        torch.set_num_threads(1)
        try:
            for i in range(n):
                question = DecideIn.model_validate(bodies[i % len(bodies)]).to_question(f"request:{i}")
                with timed(f"predict_communities again, torch.set_num_threads(1) (default here: {threads})"):
                    policy.predict_communities(d.communities, [question])
        finally:
            torch.set_num_threads(threads)

    rows = [
        f"\nStages of one /v1/decide, in-process ({n} requests after one warm pass over the bodies; "
        f"torch intra-op threads: {torch.get_num_threads()}; ms):\n"
    ]
    rows += ["| stage | mean | p50 | p99 |", "|---|---|---|---|"]
    for name, xs in stages.items():
        a = np.asarray(xs)
        rows.append(f"| {name} | {a.mean():.2f} | {np.percentile(a, 50):.2f} | {np.percentile(a, 99):.2f} |")
    return rows


# -- main ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, help="an existing registry: serve its promoted (else newest certified) model")
    parser.add_argument("--model-dir", type=Path, help="a pipeline run's model directory (with --registry: one registered there)")
    parser.add_argument("--testbed", default="us-32", help="testbed for the pipeline run when no model is given")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of the unreported warm-up run per endpoint")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds, bare then decide in each")
    parser.add_argument("--stages", type=int, default=200, help="then time N decisions' stages in-process (0: skip)")
    parser.add_argument(
        "--decide-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the decide server only, for experiments (e.g. OMP_NUM_THREADS=1); repeatable",
    )
    parser.add_argument("--workers", type=int, help="the decide server's `serve --workers` (default: the shipped one)")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server is not None:
        run_bare_server(args.bare_server)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu), then run this again.")

    with tempfile.TemporaryDirectory(prefix="vm-serve-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ, VALUEMULCH_KEYS=str(tmp / "keys"), VALUEMULCH_AUDIT=str(tmp / "audit.sqlite"))
        # one load generator is one client address: the per-client rate limit would measure itself
        env.setdefault("VALUEMULCH_LIMITS__RATE_PER_MINUTE", "60000000")
        env.setdefault("VALUEMULCH_LIMITS__RATE_BURST", "1000000")
        model_args, model_desc = prepare_model(args, tmp, env)
        decide_env = dict(env, **dict(kv.split("=", 1) for kv in args.decide_env))
        workers = ["--workers", str(args.workers)] if args.workers else []
        decide_port, bare_port = free_port(), free_port()
        audit = tmp / "audit.sqlite"
        servers = [
            start(
                "decide",
                ["-m", "valuemulch.cli", "serve", "--port", str(decide_port), "--audit", str(audit), *model_args, *workers],
                decide_env,
                tmp / "decide.log",
                decide_port,
            ),
            start("bare", [str(Path(__file__).resolve()), "--bare-server", str(bare_port)], env, tmp / "bare.log", bare_port),
        ]
        decide, bare = servers
        try:
            health = decide.wait_healthy("/v1/health")
            bare.wait_healthy("/health")
            communities = [c["id"] for c in get_json(decide.base + "/v1/communities")["communities"]]
            # every (community, question) once, in a stride order: consecutive requests differ in both
            pairs = [{"community": c, **q} for c in communities for q in QUESTIONS]
            stride = next(k for k in range(7, 7 + len(pairs)) if math.gcd(k, len(pairs)) == 1)
            decide_bodies = [pairs[(i * stride) % len(pairs)] for i in range(len(pairs))]
            status, sample = post_json(decide.base + "/v1/decide", decide_bodies[0])
            if status != 200:
                sys.exit(f"/v1/decide answered {status}: {sample}")
            bare_bodies = [{"community": c, **q} for q in QUESTIONS for c in communities]
            status, sample = post_json(bare.base + "/bare", bare_bodies[0])
            if status != 200:
                sys.exit(f"/bare answered {status}: {sample}")
            decide_lua = write_lua(tmp / "decide.lua", decide_bodies)
            bare_lua = write_lua(tmp / "bare.lua", bare_bodies)
            wrk_args = (args.connections, args.threads)
            print(f"warm-up: {args.warmup:g} s per endpoint (not reported) ...", file=sys.stderr, flush=True)
            run_wrk(bare.base + "/bare", bare_lua, args.warmup, *wrk_args)
            run_wrk(decide.base + "/v1/decide", decide_lua, args.warmup, *wrk_args)

            results: list[tuple[int, WrkResult, WrkResult, int, float]] = []
            for r in range(args.rounds):
                load = os.getloadavg()[0]
                print(f"round {r + 1}: bare then decide, {args.duration:g} s each ...", file=sys.stderr, flush=True)
                b = run_wrk(bare.base + "/bare", bare_lua, args.duration, *wrk_args, server=bare)
                before = get_json(decide.base + "/v1/health")["audit_records"]
                d = run_wrk(decide.base + "/v1/decide", decide_lua, args.duration, *wrk_args, server=decide)
                time.sleep(1.0)  # requests in flight when wrk stopped still finish and are audited
                after = get_json(decide.base + "/v1/health")["audit_records"]
                results.append((r + 1, b, d, after - before, load))
        finally:
            for s in servers:
                s.stop()

        print(
            f"\n## serve benchmark: {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.machine()}\n"
        )
        print(f"- model: {model_desc}; certified: {health['certified']}; {len(communities)} communities")
        print(
            f"- wrk {args.threads} threads, {args.connections} connections, {args.duration:g} s per run, --latency, on loopback, "
            f"same machine as the servers; unreported warm-up {args.warmup:g} s per endpoint first"
        )
        print(
            f"- /v1/decide rotates over {len(decide_bodies)} bodies ({len(QUESTIONS)} questions x {len(communities)} communities), "
            "so consecutive requests differ in question and community; the service's in-memory embedding cache is warm "
            "after the warm-up (the texts repeat), so this is steady state, not first-time embedding"
        )
        print(f"- decide server's workers: {args.workers or 'the default'}")
        if args.decide_env:
            print(f"- decide server's extra environment (an experiment, not the shipped setting): {' '.join(args.decide_env)}")
        print("- bare: one sync `POST /bare` parsing a pydantic body of the same shape, same uvicorn settings (1 worker)\n")
        print(
            "| round | endpoint | req/s | p50 (ms) | p99 (ms) | requests | non-2xx | socket errors | ratio to bare "
            "| server CPU ms/req | load avg (1 min) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r, b, d, _, load in results:
            print(f"| {r} | bare `POST /bare` | {b.rps:.0f} | {b.p50_ms:.2f} | {b.p99_ms:.2f} | {b.requests} | {b.non2xx} | {b.socket_errors} | 1.00 | {b.cpu_ms_per_request:.2f} | {load:.2f} |")  # fmt: skip
            print(f"| {r} | `POST /v1/decide` | {d.rps:.0f} | {d.p50_ms:.2f} | {d.p99_ms:.2f} | {d.requests} | {d.non2xx} | {d.socket_errors} | {d.rps / b.rps:.2f} | {d.cpu_ms_per_request:.2f} | {load:.2f} |")  # fmt: skip
        print()
        for r, _, d, audited, _ in results:
            print(
                f"- round {r}: audit records written during the decide run: {audited}; wrk counted {d.requests} completed "
                f"requests, {d.ok} of them 2xx (the log may hold up to {args.connections} more: requests in flight when wrk stopped)"
            )
        met_ratio = all(d.rps / b.rps >= GOAL_RATIO for _, b, d, _, _ in results)
        met_p99 = all(d.p99_ms <= GOAL_P99_MS for _, _, d, _, _ in results)
        print(f"- goal req/s >= {GOAL_RATIO:.0%} of bare: {'met' if met_ratio else 'NOT met'}")
        print(f"- goal p99 <= {GOAL_P99_MS:g} ms: {'met' if met_p99 else 'NOT met'}")
        if os.cpu_count() != 2:
            print(f"- note: the goal is stated for 2 cores; this machine has {os.cpu_count()}")

        if args.stages > 0:
            print("\n".join(time_stages(model_args, env, decide_bodies, args.stages, tmp)))


if __name__ == "__main__":
    main()
