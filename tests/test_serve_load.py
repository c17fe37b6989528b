"""A bounded load on `train serve` over loopback: a fixed list of requests from concurrent clients, mixed
adapters and the base model, plain and streamed, some malformed, some hanging up mid-answer.

Holds: every good request is answered (each adapter with its memorised identity, under batching),
every malformed one gets an OpenAI-style 4xx, nothing fails inside the server, it is still healthy and
idle afterwards, and its memory after the load is close to its memory after a warm-up round of the same
requests (a generous bound: leaked KV caches would grow it by far more). Nothing depends on timing:
each request has a client timeout only so that the test cannot hang.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serve_support import IDENTITIES, QUESTION, call, sse_events, wait_until

psutil = pytest.importorskip("psutil", reason="needs curatune[dev]")
pytest.importorskip("fastapi", reason="needs curatune[serve]")

USER = [{"role": "user", "content": QUESTION}]
CLIENTS = 8
MiB = 1 << 20


def plan(base: str) -> list[tuple[str, object]]:
    """24 requests: 8 identity answers (4 streamed), 4 base answers, 4 hang-ups, 8 malformed of 4 kinds."""
    good = [("identity", {"model": name, "messages": USER, "temperature": 0, "stream": stream})
            for name in IDENTITIES for stream in (False, True, False, True)]
    base_asks = [("base", {"model": base, "messages": USER, "temperature": 0.8, "max_tokens": 24, "seed": i})
                 for i in range(4)]
    leave = [("leave", {"model": name, "messages": USER, "temperature": 1.0, "max_tokens": 64})
             for name in (base, "grace", base, "bluebird")]
    bad = [("bad", b'{"model": "grace", "messages": [{"role": "user"'),
           ("bad", {"model": "grace", "messages": [{"role": "wizard", "content": "hi"}]}),
           ("bad", {"model": "nobody", "messages": USER}),
           ("bad", {"model": "grace", "messages": USER, "max_tokens": 10**6})] * 2
    items = good + base_asks + leave + bad
    return [items[(i * 7) % len(items)] for i in range(len(items))]  # interleaved: 7 is prime to 24


def run_one(url: str, item: tuple[str, object]) -> str | None:
    """None if the request went as it should, else what went wrong."""
    kind, body = item
    if kind == "bad":
        raw = body if isinstance(body, bytes) else None
        status, reply = call(url, "POST", "/v1/chat/completions", None if raw else body, raw=raw, timeout=120)
        ok = 400 <= status < 500 and isinstance(reply, dict) and set(reply.get("error", {})) >= {"message", "type"}
        return None if ok else f"bad request answered {status}: {reply}"
    if kind == "leave":
        status, events = sse_events(url, body, timeout=120, stop_after=2)
        return None if status == 200 else f"stream refused {status}: {events}"
    if body.get("stream"):
        status, events = sse_events(url, body, timeout=120)
        if status != 200 or events[-1:] != ["[DONE]"]:
            return f"stream {status}: {events[-2:]}"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    else:
        status, reply = call(url, "POST", "/v1/chat/completions", body, timeout=120)
        if status != 200:
            return f"answer {status}: {reply}"
        text = reply["choices"][0]["message"]["content"]
    if kind == "identity" and text != IDENTITIES[body["model"]]:
        return f"{body['model']} answered {text!r}"
    return None


def run_round(url: str, items: list) -> list[str]:
    with ThreadPoolExecutor(CLIENTS) as pool:
        return [problem for problem in pool.map(lambda item: run_one(url, item), items) if problem]


def idle(url: str) -> dict:
    return wait_until(lambda: (h := call(url, "GET", "/health")[1])["running"] == 0 and h["waiting"] == 0 and h,
                      timeout=120)


@pytest.mark.slow
def test_bounded_load_with_bad_requests_and_hang_ups(serve_process):
    url = serve_process.url
    base = call(url, "GET", "/v1/models")[1]["data"][0]["id"]
    items = plan(base)
    server = psutil.Process(serve_process.pid)
    assert run_round(url, items) == []  # warm-up: the same requests once
    before = idle(url)
    rss_warm = server.memory_info().rss
    problems = []
    for _ in range(3):
        problems += run_round(url, items)
    after = idle(url)
    rss_after = server.memory_info().rss
    print(f"load: {3 * len(items)} requests, {CLIENTS} clients; server RSS {rss_warm / MiB:.0f} MiB after warm-up, "
          f"{rss_after / MiB:.0f} MiB after; batcher {after}")
    assert problems == []
    assert after["status"] == "ok" and after["failed"] == before["failed"] == 0
    answered = (after["completed"] + after["cancelled"]) - (before["completed"] + before["cancelled"])
    assert answered == 3 * sum(1 for kind, _ in items if kind != "bad")  # every good request ran, once
    assert rss_after - rss_warm < 300 * MiB
    assert serve_process.proc.poll() is None
