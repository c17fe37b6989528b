"""The HTTP side of `train serve`: OpenAI's chat completions and models, /chat, /health and the chat page.

Handlers only check, encode and wait: generation happens on the batcher's thread (train.serve.batcher),
and a handler waits for its job's events. No request can stop the server: every refusal is an
OpenAI-style JSON error with its status, and anything unexpected is a 500 of the same shape. A client
that goes away (noticed within half a second, or at the next piece of a stream) cancels its job, so
its row leaves the batch.
"""
from __future__ import annotations

import asyncio
import copy
from importlib import resources
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from train.errors import short_reason
from train.serve.adapters import Served
from train.serve.batcher import Batcher, Limits, QueueFull
from train.serve.jobs import Delta, Done, Failed, Job
from train.serve.protocol import (ApiError, ApiLimits, ChatCompletionRequest, ChatRequest, chat_messages,
                                  check_completion_request, error_body, history_messages, parse_body, sampling)
from train.serve.sampling import SamplingParams
from train.serve.sse import DONE, Completion, event, usage

POLL_S = 0.5
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def make_batcher(served: Served, limits: Limits) -> Batcher:
    """The batcher gets its own copy of the tokenizer: the web side encodes while the worker decodes."""
    return Batcher(served.model, copy.deepcopy(served.tokenizer), served.stop_ids, served.mixed, limits)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is larger than `limit` (by its Content-Length or as it arrives)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {int(declared)} bytes, over this server's limit of {limit}",
                       code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over this server's limit of {limit} bytes", code="request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def next_event(job: Job, request: Request, seen: list[float]) -> Delta | Done | Failed:
    """The job's next event; raises ClientGone once the client has left (checked every POLL_S seconds,
    whether events are flowing or not). `seen` holds the time of the last check."""
    loop = asyncio.get_running_loop()
    while True:
        if loop.time() - seen[0] >= POLL_S:
            seen[0] = loop.time()
            if await request.is_disconnected():
                raise ClientGone()
        try:
            return job.events.get_nowait()  # the common case under load: no timer needed
        except asyncio.QueueEmpty:
            pass
        try:
            return await asyncio.wait_for(job.events.get(), POLL_S)
        except asyncio.TimeoutError:
            continue


def create_app(served: Served, batcher: Batcher, limits: ApiLimits | None = None) -> FastAPI:
    limits = limits or ApiLimits()
    app = FastAPI(title="curatune serve", docs_url=None, redoc_url=None, openapi_url=None)
    page = resources.files("train.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"internal error: {short_reason(exc)}", "server_error"), status_code=500)

    def model_card(name: str) -> dict:
        card = {"id": name, "object": "model", "created": 0, "owned_by": "curatune", "root": name}
        if name != served.base_name:
            card.update(root=served.base_name, parent=served.base_name)
        return card

    def adapter_of(model: str) -> str:
        adapter = served.peft_name(model)
        if adapter is None:
            raise ApiError(404, f"The model {model!r} does not exist here; GET /v1/models lists "
                           f"{', '.join(served.names())}", param="model", code="model_not_found")
        return adapter

    def start(model: str, messages: list[dict[str, str]], params: SamplingParams, stream: bool) -> Job:
        adapter = adapter_of(model)
        try:
            prompt = served.prompt_ids(model, messages)
        except Exception as exc:  # noqa: BLE001 - the chat template refusing the conversation
            raise ApiError(400, f"messages: the chat template cannot render them: {short_reason(exc)}",
                           param="messages") from None
        if len(prompt) > limits.max_prompt_tokens or len(prompt) + params.max_tokens > served.context:
            raise ApiError(400, f"the prompt is {len(prompt)} tokens; this server takes at most "
                           f"{limits.max_prompt_tokens}, and prompt + max_tokens ({params.max_tokens}) at most "
                           f"{served.context}", param="messages", code="context_length_exceeded")
        job = Job.for_loop(prompt, adapter, params, limits.timeout_s, stream)
        try:
            batcher.submit(job)
        except QueueFull as exc:
            raise ApiError(429, f"the server is busy: {exc}; retry later", "rate_limit_error",
                           code="queue_full") from None
        return job

    async def answer(job: Job, request: Request) -> Done:
        seen = [asyncio.get_running_loop().time()]
        try:
            while True:
                got = await next_event(job, request, seen)
                if isinstance(got, Done):
                    return got
                if isinstance(got, Failed):
                    raise ApiError(got.status, got.message, got.kind)
        finally:
            if not job.finished:
                job.cancel()

    async def stream(job: Job, request: Request, completion: Completion, include_usage: bool) -> AsyncIterator[bytes]:
        seen = [asyncio.get_running_loop().time()]
        try:
            yield completion.chunk({"role": "assistant", "content": ""})
            while True:
                got = await next_event(job, request, seen)
                if isinstance(got, Delta):
                    yield completion.chunk({"content": got.text})
                    continue
                if isinstance(got, Done):
                    yield completion.chunk({}, got.finish_reason)
                    if include_usage:
                        yield completion.usage_chunk(got.prompt_tokens, got.completion_tokens)
                else:
                    yield event(error_body(got.message, got.kind))
                yield DONE
                return
        except ClientGone:
            return
        finally:
            if not job.finished:
                job.cancel()

    @app.get("/", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": served.base_name, "adapters": list(served.adapters), **batcher.stats()}

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [model_card(name) for name in served.names()]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str) -> dict:
        if served.peft_name(name) is None:
            raise ApiError(404, f"The model {name!r} does not exist here", param="model", code="model_not_found")
        return model_card(name)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        req = parse_body(await read_body(request, limits.max_body_bytes), ChatCompletionRequest)
        check_completion_request(req)
        adapter_of(req.model)  # an unknown model is a 404 before the rest is judged
        params = sampling(limits, req.max_completion_tokens or req.max_tokens, req.temperature, req.top_p,
                          req.stop, req.seed)
        job = start(req.model, chat_messages(req.messages), params, bool(req.stream))
        completion = Completion(req.model)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(stream(job, request, completion, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            done = await answer(job, request)
        except ClientGone:
            return Response(status_code=499)
        return JSONResponse(completion.whole(done.text, done.finish_reason, done.prompt_tokens, done.completion_tokens))

    @app.post("/chat")
    async def chat(request: Request) -> Response:
        req = parse_body(await read_body(request, limits.max_body_bytes), ChatRequest)
        model = req.model or (next(iter(served.adapters), served.base_name))
        messages = history_messages(req)
        job = start(model, messages, sampling(limits, req.max_tokens, req.temperature, req.top_p, None, req.seed,
                                              default_temperature=0.7), stream=False)
        try:
            done = await answer(job, request)
        except ClientGone:
            return Response(status_code=499)
        text = done.text
        turns = [m["content"] for m in messages if m["role"] != "system"] + [text]
        history = [[turns[i], turns[i + 1]] for i in range(0, len(turns) - 1, 2)]
        return JSONResponse({"response": text, "history": history, "model": model,
                             "finish_reason": done.finish_reason, "usage": usage(done.prompt_tokens,
                                                                                 done.completion_tokens)})

    return app
