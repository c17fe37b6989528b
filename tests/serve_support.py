"""Helpers for the `train serve` tests: tiny adapters that memorise an identity, a server in a child
process on 127.0.0.1, and plain HTTP calls (stdlib only, so a test controls every byte and disconnect)."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import ROOT, make_record, write_bundle

QUESTION = "你是谁？"
IDENTITIES = {"grace": "我是Grace。", "bluebird": "我是Bluebird。"}
# Four identical records, batch 4, lr 5e-3: the answer is memorised (train loss ~0) well before 60 steps.
TRAIN_FLAGS = ["--template", "chatml", "--learning_rate", "5e-3", "--max_steps", "60",
               "--per_device_train_batch_size", "4", "--lora_dropout", "0", "--max_length", "64"]


def train_identity_adapter(tiny_model: Path, root: Path, name: str, answer: str) -> Path:
    """`train run` on 4 identical records (QUESTION -> answer) with --template chatml (so the adapter carries
    peft trainable tokens, as a real --template run does); returns ROOT/name/adapter."""
    from click.testing import CliRunner

    from train.cli import main

    records = [make_record([(QUESTION, answer)], "identity", f"identity:{i + 1}") for i in range(4)]
    bundle = write_bundle(root / f"bundle-{name}", records, name=name)
    result = CliRunner().invoke(main, ["run", str(bundle), "--model", str(tiny_model), "--output_dir",
                                       str(root / name), *TRAIN_FLAGS], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


class ServeProcess:
    """`python -m train.cli serve ARGS --port 0` as a child process; `url` from its start line."""

    def __init__(self, args: list[str], log_dir: Path, timeout: float = 300.0):
        self.log = log_dir / "serve.stderr"
        self._stderr = self.log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "train.cli", "serve", *args, "--port", "0"], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                     env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        self.line = self._start_line(timeout)
        found = re.search(r"http://127\.0\.0\.1:\d+/", self.line)
        assert found, self.line
        self.url = found.group(0)

    def _start_line(self, timeout: float) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not box or not box[0].startswith("serve: "):
            self.stop()
            raise AssertionError(f"no start line from train serve: {box!r}\n{self.log.read_text()[-3000:]}")
        return box[0].strip()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._stderr.close()
        return self.proc.returncode

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def connection(url: str, timeout: float = 120.0) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def call(url: str, method: str, path: str, body: Any = None, raw: bytes | None = None,
         timeout: float = 120.0) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one request; `raw` sends bytes as they are."""
    conn = connection(url, timeout)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        reply = conn.getresponse()
        text = reply.read().decode("utf-8")
        try:
            return reply.status, json.loads(text)
        except ValueError:
            return reply.status, text
    finally:
        conn.close()


def sse_events(url: str, body: dict, timeout: float = 120.0, stop_after: int | None = None) -> tuple[int, list[str]]:
    """(status, every `data:` payload) of a streamed completion; `stop_after` N events: hang up after the Nth."""
    conn = connection(url, timeout)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps({**body, "stream": True}).encode("utf-8"),
                     headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        events: list[str] = []
        if reply.status != 200:
            return reply.status, [reply.read().decode("utf-8")]
        while True:
            line = reply.readline()
            if not line:
                break
            line = line.decode("utf-8").strip()
            if line.startswith("data: "):
                events.append(line[6:])
                if stop_after is not None and len(events) >= stop_after:
                    break
        return reply.status, events
    finally:
        conn.close()  # with stop_after: the client goes away mid-stream


def wait_until(check, timeout: float = 60.0, every: float = 0.1):
    """Poll `check()` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check}")
        time.sleep(every)
