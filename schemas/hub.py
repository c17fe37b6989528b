"""What a hub name looks like, for the datasets curation reads and the models training loads:
both stages tell a hub id from a local path the same way and give the hub the same time."""
from __future__ import annotations

REPO_PATTERN = r"[A-Za-z0-9][\w.-]*/[\w.-]+"  # owner/name
PROBE_TIMEOUT_S = 10.0  # one question to the hub, when a name is not in the local cache
