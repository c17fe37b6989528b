"""Read a JSON object from a file someone else may have written: any problem is one short line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonFileError(ValueError):
    """The file is unreadable, not JSON, too deeply nested, or not a JSON object; str() names the file."""


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise JsonFileError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise JsonFileError(f"{path}: not valid JSON: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise JsonFileError(f"{path}: not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise JsonFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
