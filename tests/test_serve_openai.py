"""`train serve` with two trained identities on one tiny base, spoken to with the official `openai` client.

Each adapter was trained on four identical records until it answers QUESTION with its memorised
identity (greedy), which is all these tests rely on: each adapter answers with its own identity,
plainly and streamed, alone and in one batch with the other adapter and the base model; the base
model does not answer with either. Nothing here depends on what the random base model says.
"""
from __future__ import annotations

import threading

import pytest

from tests.serve_support import IDENTITIES, QUESTION, call, wait_until

openai = pytest.importorskip("openai", reason="needs curatune[dev]")
pytest.importorskip("fastapi", reason="needs curatune[serve]")

USER = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def client(serve_process):
    return openai.OpenAI(base_url=serve_process.url + "v1", api_key="not-needed", timeout=120, max_retries=0)


@pytest.mark.slow
def test_start_line_and_models(serve_process, client):
    assert serve_process.line.startswith(f"serve: {serve_process.url} ")
    assert "base model: tiny-qwen2" in serve_process.line and serve_process.line.endswith("adapters: grace, bluebird")
    ids = [model.id for model in client.models.list()]
    assert ids[1:] == ["grace", "bluebird"] and ids[0].startswith("tiny-qwen2")
    assert client.models.retrieve("grace").id == "grace"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(IDENTITIES))
def test_each_adapter_answers_with_its_identity(client, name):
    reply = client.chat.completions.create(model=name, messages=USER, temperature=0)
    choice = reply.choices[0]
    assert choice.message.content == IDENTITIES[name] and choice.finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens >= 2
    stream = client.chat.completions.create(model=name, messages=USER, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == IDENTITIES[name]
    assert len([p for p in pieces if p]) >= 2  # sent piece by piece, not as one block at the end
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens


@pytest.mark.slow
def test_base_model_is_not_either_identity(client):
    base = client.models.list().data[0].id
    answer = client.chat.completions.create(model=base, messages=USER, temperature=0, max_tokens=16)
    assert answer.choices[0].message.content not in IDENTITIES.values()


@pytest.mark.slow
def test_length_stop_strings_seed_and_tutorial_chat(client, serve_process, serve_adapters):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(serve_adapters["grace"]))
    assert len(tokenizer(IDENTITIES["grace"], add_special_tokens=False)["input_ids"]) > 1  # so 1 token cuts it short
    short = client.chat.completions.create(model="grace", messages=USER, temperature=0, max_tokens=1)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 1
    assert IDENTITIES["grace"].startswith(short.choices[0].message.content)
    cut = client.chat.completions.create(model="grace", messages=USER, temperature=0, stop=["Grace"])
    assert cut.choices[0].message.content == "我是" and cut.choices[0].finish_reason == "stop"
    base = client.models.list().data[0].id
    seeded = [client.chat.completions.create(model=base, messages=USER, temperature=1.0, seed=11, max_tokens=12)
              .choices[0].message.content for _ in range(2)]
    assert seeded[0] == seeded[1]  # the same seed, alone in its batch: the same draw
    multi = client.chat.completions.create(model="bluebird", temperature=0, max_tokens=8, messages=[
        {"role": "system", "content": "You are helpful."}, *USER,
        {"role": "assistant", "content": IDENTITIES["bluebird"]}, *USER])
    assert multi.choices[0].finish_reason in ("stop", "length")
    status, reply = call(serve_process.url, "POST", "/chat", {"message": QUESTION, "model": "bluebird",
                                                              "temperature": 0})
    assert status == 200 and reply["response"] == IDENTITIES["bluebird"]
    assert reply["history"] == [[QUESTION, IDENTITIES["bluebird"]]] and reply["finish_reason"] == "stop"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nobody", messages=USER)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="grace", messages=USER, n=2)
    assert refused.value.body["param"] == "n"


@pytest.mark.slow
@pytest.mark.parametrize("mixed,folder", [(True, "adapter"), (False, "adapter"), (True, "adapter_plain")],
                         ids=["mixed-adapter batch", "grouped by adapter", "plain-LoRA copies, mixed"])
def test_one_batch_of_both_adapters_and_the_base(serve_adapters, mixed, folder):
    """Requests for grace, bluebird and the base held in the queue, then let in together: one batch (mixed
    adapters, PEFT adapter_names) or one batch per adapter; every adapter row still answers as itself.
    `adapter_plain` is the copy `train run` writes with the marker rows as LoRA pairs instead."""
    from train.serve.adapters import AdapterSpec, load_served
    from train.serve.server import BackgroundServer

    served = load_served([AdapterSpec(name, path.parent / folder) for name, path in serve_adapters.items()])
    assert served.mixed  # peft 0.21: mixed batches work with these adapters (trainable tokens, or LoRA pairs)
    served.mixed = mixed
    names = ["grace", "bluebird", served.base_name, "grace", "bluebird", served.base_name]
    with BackgroundServer(served, start_batcher=False) as server:
        replies: dict[int, tuple] = {}
        threads = [threading.Thread(target=lambda i=i, n=n: replies.__setitem__(i, call(
            server.url, "POST", "/v1/chat/completions", {"model": n, "messages": USER, "temperature": 0,
                                                         "max_tokens": 16})))
                   for i, n in enumerate(names)]
        for thread in threads:
            thread.start()
        wait_until(lambda: call(server.url, "GET", "/health")[1]["waiting"] == len(names))
        server.batcher.start()
        for thread in threads:
            thread.join(120)
        health = call(server.url, "GET", "/health")[1]
    assert health["mixed_adapter_batches"] is mixed
    assert health["max_rows"] == (len(names) if mixed else 2)  # all six in one batch, or two per adapter
    for i, name in enumerate(names):
        status, reply = replies[i]
        assert status == 200, reply
        text = reply["choices"][0]["message"]["content"]
        if name in IDENTITIES:
            assert text == IDENTITIES[name], (name, text)
        else:
            assert text not in IDENTITIES.values()
