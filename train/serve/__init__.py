"""`train serve`: many LoRA adapters on one base model behind an OpenAI-compatible API and a chat page.

adapters.py loads the base and the adapters, batcher.py generates for many requests at once (with
kv.py, sampling.py, jobs.py, mixed.py), protocol.py and sse.py speak OpenAI's shapes, app.py holds the
routes, server.py starts and stops it all, page.html is the chat page. Needs the `serve` extra.
"""
from __future__ import annotations

from train.errors import TrainError


def require_serve_extra() -> None:
    """One line instead of an ImportError when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise TrainError(f"train serve needs the serve extra ({exc.name} is missing): "
                         "pip install 'curatune[serve]'") from None
