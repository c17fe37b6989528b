"""`train serve` without training: names, the OpenAI shapes, every refusal, limits, cancelling, the CLI's lines.

Adapters here are untrained (random LoRA weights, built directly with peft, with the chatml template's
trainable tokens as a --template run has); nothing asserts what a random model says, only shapes,
statuses and counts. Where a test needs generation that never ends on its own (a client leaving
mid-answer, a timeout), it serves `Parrot`, a stand-in model that always predicts the same token.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from tests.serve_support import QUESTION, call, connection, sse_events, wait_until
from train.cli import main

pytest.importorskip("fastapi", reason="needs curatune[serve]")
pytest.importorskip("uvicorn", reason="needs curatune[serve]")

from train.serve.adapters import AdapterSpec, Served, default_name, load_served, parse_specs  # noqa: E402
from train.serve.batcher import Batcher, Limits, QueueFull  # noqa: E402
from train.serve.jobs import BASE, Delta, Done, Failed, Job  # noqa: E402
from train.serve.mixed import mixed_batches_work  # noqa: E402
from train.serve.protocol import ApiLimits  # noqa: E402
from train.serve.sampling import RowText, SamplingParams, choose_tokens, make_generator  # noqa: E402
from train.serve.server import BackgroundServer  # noqa: E402

USER = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def random_adapters(tiny_model: Path, tmp_path_factory) -> dict[str, Path]:
    from train.tiny import build_random_adapter

    root = tmp_path_factory.mktemp("serve-random")
    return {name: build_random_adapter(tiny_model, root / name / "adapter", seed=i, template="chatml")
            for i, name in enumerate(["grace", "bluebird"])}


@pytest.fixture(scope="module")
def served(random_adapters) -> Served:
    return load_served([AdapterSpec(name, path) for name, path in random_adapters.items()])


@pytest.fixture(scope="module")
def server(served):
    with BackgroundServer(served, api=ApiLimits(max_tokens=64, default_max_tokens=8, max_prompt_tokens=200,
                                                max_body_bytes=4096)) as running:
        yield running


# ---------------------------------------------------------------- pieces without a server


def test_adapter_names_come_from_the_run_folder(tmp_path):
    assert default_name(Path("runs/grace/adapter")) == "grace"
    assert default_name(Path("runs/grace/adapter/")) == "grace"
    assert default_name(Path("runs/grace/adapter_plain")) == "grace"  # the plain-LoRA copy `train run` also writes
    assert default_name(Path("exports/bluebird-v2")) == "bluebird-v2"
    specs = parse_specs(["runs/grace/adapter", "blue=runs/bluebird/adapter"])
    assert [(s.name, str(s.path)) for s in specs] == [("grace", "runs/grace/adapter"),
                                                      ("blue", "runs/bluebird/adapter")]
    odd = tmp_path / "a=b"  # an existing folder whose name holds '=' stays a path
    odd.mkdir()
    assert parse_specs([str(odd)])[0] == AdapterSpec("a=b", odd)
    with pytest.raises(Exception, match="would both be served as 'grace'"):
        parse_specs(["x/grace/adapter", "y/grace/adapter"])


class Bytes:
    """A tokenizer whose tokens are byte strings: decoding a split UTF-8 character gives U+FFFD, as BPE does."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True):
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


def test_row_text_holds_back_split_characters_and_stop_prefixes():
    ni = "你".encode()
    row = RowText(Bytes([ni[:1], ni[1:], b"ab", b"c", b"END", b"x"]), stop=("cEND",))
    assert row.add(0) == ("", False)  # half a character: held
    assert row.add(1) == ("你", False)
    assert row.add(2) == ("ab", False)
    assert row.add(3) == ("", False)  # "c" may start "cEND"
    assert row.add(4) == ("", True) and row.text == "你ab"  # the stop string is cut, nothing of it sent
    free = RowText(Bytes([b"ab", b"c", b"x"]), stop=("cEND",))
    assert [free.add(0), free.add(1), free.add(2)] == [("ab", False), ("", False), ("cx", False)]
    held = RowText(Bytes([b"c"]), stop=("cEND",))
    assert held.add(0) == ("", False) and held.finish() == "c"  # at max_tokens the held tail goes out


def test_choose_tokens_greedy_top_p_and_seeds():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.9], [5.0, 0.0, 0.0, 0.0]])
    greedy = SamplingParams(temperature=0)
    assert choose_tokens(logits, [greedy, greedy], [make_generator(0)] * 2) == [1, 0]
    narrow = SamplingParams(temperature=1.0, top_p=0.01)  # only the most likely token is left
    assert choose_tokens(logits, [narrow, narrow], [make_generator(1), make_generator(2)]) == [1, 0]
    hot = SamplingParams(temperature=2.0, seed=7)
    draws = [choose_tokens(logits[:1].repeat(1, 1), [hot], [make_generator(7)]) for _ in range(2)]
    assert draws[0] == draws[1]  # the same seed draws the same token


class Boom(torch.nn.Module):
    peft_config = {"a0": None}
    active_adapter = "a0"

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, **_kwargs):
        raise KeyError("a0")


def test_mixed_probe_says_no_when_peft_cannot_mix():
    works, why = mixed_batches_work(Boom(), [1, 2, 3], ["a0"])
    assert not works and "KeyError" in why


# ---------------------------------------------------------------- the HTTP API


def test_models_health_and_page(server, served):
    status, models = call(server.url, "GET", "/v1/models")
    assert status == 200 and models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [served.base_name, "grace", "bluebird"]
    assert [m.get("parent") for m in models["data"]] == [None, served.base_name, served.base_name]
    assert call(server.url, "GET", "/v1/models/grace") == (200, models["data"][1])
    status, health = call(server.url, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["adapters"] == ["grace", "bluebird"]
    conn = connection(server.url)
    conn.request("GET", "/")
    reply = conn.getresponse()
    page = reply.read().decode("utf-8")
    assert reply.status == 200 and "default-src 'none'" in reply.getheader("Content-Security-Policy")
    assert re.search(r'<html lang="zh', page) and "Noto Sans CJK SC" in page and "PingFang SC" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\(""", page, re.I)  # nothing fetched
    assert "http://" not in page and "https://" not in page


def test_answer_and_stream_have_openai_shapes(server):
    body = {"model": "grace", "messages": USER, "temperature": 0, "max_tokens": 6}
    status, whole = call(server.url, "POST", "/v1/chat/completions", body)
    assert status == 200 and whole["object"] == "chat.completion" and whole["model"] == "grace"
    choice, use = whole["choices"][0], whole["usage"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length")
    assert use["prompt_tokens"] > 0 and 1 <= use["completion_tokens"] <= 6
    assert use["total_tokens"] == use["prompt_tokens"] + use["completion_tokens"]
    status, events = sse_events(server.url, {**body, "stream_options": {"include_usage": True}})
    assert status == 200 and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == use  # the usage chunk comes last
    assert chunks[-2]["choices"][0]["finish_reason"] == choice["finish_reason"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == choice["message"]["content"]  # greedy, alone in its batch both times: the same answer
    status, tutorial = call(server.url, "POST", "/chat", {"message": QUESTION, "history": [["hi", "hello"]],
                                                          "max_tokens": 3, "temperature": 0})
    assert status == 200 and tutorial["model"] == "grace" and isinstance(tutorial["response"], str)
    assert tutorial["history"] == [["hi", "hello"], [QUESTION, tutorial["response"]]]


BAD = [
    ("malformed JSON", b'{"model": "grace", "messages": [', 400, None),
    ("not an object", b"[1, 2]", 400, None),
    ("not UTF-8", b'{"model": "\xff"}', 400, None),
    ("no model", {"messages": USER}, 400, "model"),
    ("empty messages", {"model": "grace", "messages": []}, 400, "messages"),
    ("wrong role", {"model": "grace", "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role"),
    ("late system", {"model": "grace", "messages": [*USER, {"role": "system", "content": "x"}, *USER]}, 400,
     "messages.1.role"),
    ("assistant last", {"model": "grace", "messages": [*USER, {"role": "assistant", "content": "x"}]}, 400,
     "messages"),
    ("unknown model", {"model": "nobody", "messages": USER}, 404, "model"),
    ("n=2", {"model": "grace", "messages": USER, "n": 2}, 400, "n"),
    ("max_tokens over the limit", {"model": "grace", "messages": USER, "max_tokens": 65}, 400, "max_tokens"),
    ("max_tokens zero", {"model": "grace", "messages": USER, "max_tokens": 0}, 400, "max_tokens"),
    ("temperature out of range", {"model": "grace", "messages": USER, "temperature": 9}, 400, "temperature"),
    ("prompt over the limit", {"model": "grace", "messages": [{"role": "user", "content": "Paris " * 300}]}, 400,
     "messages"),
    ("five stops", {"model": "grace", "messages": USER, "stop": list("abcde")}, 400, "stop"),
    ("tools", {"model": "grace", "messages": USER, "tools": [{"type": "function"}]}, 400, "tools"),
    ("chat without message", {"history": []}, 400, "message"),
]


@pytest.mark.parametrize("what,body,status,param", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_openai_errors(server, what, body, status, param):
    path = "/chat" if what.startswith("chat") else "/v1/chat/completions"
    raw = body if isinstance(body, bytes) else None
    got, reply = call(server.url, "POST", path, None if raw else body, raw=raw)
    assert got == status, reply
    assert set(reply) == {"error"} and set(reply["error"]) == {"message", "type", "param", "code"}
    assert reply["error"]["param"] == param and reply["error"]["message"]
    assert call(server.url, "GET", "/health")[0] == 200  # and the server is still there


def test_body_too_large_is_413_declared_or_chunked(server):
    big = json.dumps({"model": "grace", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    status, reply = call(server.url, "POST", "/v1/chat/completions", raw=big)
    assert status == 413 and reply["error"]["code"] == "request_too_large"
    conn = connection(server.url)
    conn.request("POST", "/v1/chat/completions", body=iter([big[:3000], big[3000:]]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    reply = conn.getresponse()
    assert reply.status == 413 and json.loads(reply.read())["error"]["type"] == "invalid_request_error"
    assert call(server.url, "GET", "/health")[0] == 200


def test_a_base_model_alone(tiny_model):
    served = load_served([], model=str(tiny_model))
    assert served.adapters == {} and served.base_name == tiny_model.name
    with BackgroundServer(served) as alone:
        assert [m["id"] for m in call(alone.url, "GET", "/v1/models")[1]["data"]] == [tiny_model.name]
        status, reply = call(alone.url, "POST", "/chat", {"message": QUESTION, "max_tokens": 2})
        assert status == 200 and reply["model"] == tiny_model.name and reply["usage"]["completion_tokens"] <= 2


def test_unknown_route_and_method_are_json(server):
    status, reply = call(server.url, "GET", "/v2/nothing")
    assert status == 404 and reply["error"]["type"] == "not_found_error"
    status, reply = call(server.url, "GET", "/v1/chat/completions")
    assert status == 405 and "error" in reply


# ---------------------------------------------------------------- limits and cancelling, with a stand-in model


class Parrot(torch.nn.Module):
    """Always predicts `token`, so an answer only ends at max_tokens, a cancel or a timeout; `fail` raises."""

    def __init__(self, vocab: int, token: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.vocab, self.token, self.fail, self.config = vocab, token, False, None

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=True,
                logits_to_keep=1, **_kwargs):
        if self.fail:
            raise RuntimeError("boom in forward")
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab)
        logits[..., self.token] = 1000.0  # certain at any temperature
        return SimpleNamespace(logits=logits)


@pytest.fixture
def parrot(served) -> Served:
    token = served.tokenizer("Paris", add_special_tokens=False)["input_ids"][0]
    return Served(Parrot(len(served.tokenizer), token), served.tokenizer, "parrot", stop_ids=served.stop_ids,
                  context=10**9)


def test_queue_full_is_429_and_a_queued_client_that_leaves_frees_its_place(parrot):
    body = {"model": "parrot", "messages": USER, "max_tokens": 3, "stream": True}
    with BackgroundServer(parrot, Limits(max_batch=1, max_queue=1), start_batcher=False) as server:
        leaver = connection(server.url)
        leaver.request("POST", "/v1/chat/completions", body=json.dumps(body).encode())
        wait_until(lambda: call(server.url, "GET", "/health")[1]["waiting"] == 1)
        status, reply = call(server.url, "POST", "/v1/chat/completions", {**body, "stream": False})
        assert status == 429 and reply["error"]["code"] == "queue_full"
        leaver.close()  # the waiting client goes away: its place is given back
        wait_until(lambda: call(server.url, "GET", "/health")[1]["abandoned"] == 1)
        answer: list = []
        worker = threading.Thread(target=lambda: answer.append(
            call(server.url, "POST", "/v1/chat/completions", {**body, "stream": False})))
        worker.start()
        wait_until(lambda: call(server.url, "GET", "/health")[1]["waiting"] == 1)
        server.batcher.start()
        worker.join(60)
        assert answer[0][0] == 200 and answer[0][1]["choices"][0]["finish_reason"] == "length"
        health = call(server.url, "GET", "/health")[1]
        assert (health["cancelled"], health["completed"], health["running"], health["waiting"]) == (1, 1, 0, 0)


def test_a_client_leaving_mid_stream_frees_its_row(parrot):
    with BackgroundServer(parrot, Limits(max_batch=1, context=10**9), ApiLimits(max_tokens=10**7)) as server:
        body = {"model": "parrot", "messages": USER, "max_tokens": 1_000_000, "temperature": 0}
        status, events = sse_events(server.url, body, stop_after=3)  # role chunk + two pieces, then hang up
        assert status == 200 and len(events) == 3
        health = wait_until(lambda: (h := call(server.url, "GET", "/health")[1])["cancelled"] == 1 and h)
        assert health["running"] == 0 and health["completed"] == 0
        status, events = sse_events(server.url, {**body, "max_tokens": 4})  # the slot serves the next client
        assert status == 200 and events[-1] == "[DONE]" and '"finish_reason": "length"' in events[-2]


def test_timeout_and_a_failing_step_are_json_errors(parrot):
    api = ApiLimits(timeout_s=0.3, max_tokens=10_000_000)
    with BackgroundServer(parrot, Limits(context=10**9), api) as server:
        body = {"model": "parrot", "messages": USER, "max_tokens": 10_000_000}
        status, reply = call(server.url, "POST", "/v1/chat/completions", body)
        assert status == 504 and reply["error"]["type"] == "timeout_error", (reply["choices"], reply["usage"])
        status, events = sse_events(server.url, body)  # a stream already under way ends with an error event
        assert status == 200 and events[-1] == "[DONE]" and json.loads(events[-2])["error"]["type"] == "timeout_error"
        parrot.model.fail = True
        status, reply = call(server.url, "POST", "/v1/chat/completions", {**body, "max_tokens": 2})
        assert status == 500 and "boom in forward" in reply["error"]["message"]
        parrot.model.fail = False
        status, reply = call(server.url, "POST", "/v1/chat/completions", {**body, "max_tokens": 2})
        assert status == 200 and reply["usage"]["completion_tokens"] == 2


def test_batcher_cancel_and_queue_limit_without_http(parrot):
    batcher = Batcher(parrot.model, parrot.tokenizer, parrot.stop_ids, True,
                      Limits(max_batch=2, max_queue=1, context=10**9))
    first = Job([1, 2, 3], BASE, SamplingParams(max_tokens=10**9))
    batcher.submit(first)
    with pytest.raises(QueueFull):
        batcher.submit(Job([1], BASE, SamplingParams()))
    seen: list = []
    first.post = seen.append  # collect events on this thread's side
    batcher.start()
    try:
        wait_until(lambda: any(isinstance(e, Delta) for e in seen))
        first.cancel()
        wait_until(lambda: batcher.stats()["cancelled"] == 1)
        assert batcher.stats()["running"] == 0 and not any(isinstance(e, Done) for e in seen)
    finally:
        batcher.stop()
    assert isinstance(seen[-1], Failed) and seen[-1].kind == "cancelled"


# ---------------------------------------------------------------- the command line refuses, in one line


def one_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("train")]
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    return lines[0]


def test_serve_refuses_adapters_that_do_not_belong_together(random_adapters, tiny_model, tmp_path):
    from train.tiny import build_random_adapter

    invoke = lambda *args: CliRunner().invoke(main, ["serve", *map(str, args)], catch_exceptions=False)  # noqa: E731
    moved = Path(shutil.copytree(tiny_model, tmp_path / "other-base"))
    elsewhere = build_random_adapter(moved, tmp_path / "runs" / "elsewhere" / "adapter", template="chatml")
    assert "different base models" in one_line(invoke(random_adapters["grace"], elsewhere))
    plain = build_random_adapter(tiny_model, tmp_path / "runs" / "plain" / "adapter")  # no --template
    assert "different chat templates" in one_line(invoke(random_adapters["grace"], plain))
    assert "not a LoRA adapter folder" in one_line(invoke(tiny_model))
    assert "no such adapter folder" in one_line(invoke(tmp_path / "nothing"))
    assert "would both be served as 'grace'" in one_line(invoke(random_adapters["grace"], random_adapters["grace"]))
    assert "nothing to serve" in one_line(invoke())
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        line = one_line(invoke(random_adapters["grace"], "--port", taken.getsockname()[1]))
        assert "cannot listen on 127.0.0.1" in line
    finally:
        taken.close()
