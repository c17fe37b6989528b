"""A build killed at any moment leaves no partial version and older versions untouched."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemas.bundle import resolve_bundle, verify_bundle, version_dirs
from tests.curate_helpers import make_project

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(version: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(version.iterdir())}


@pytest.mark.slow
def test_sigkill_during_build_leaves_no_partial_version(tmp_path):
    recipe = make_project(tmp_path, general_per_lang=6000)
    command = [sys.executable, "-m", "curate", "build", str(recipe), "--workers", "1"]
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    first = tmp_path / "bundle" / "v0001"
    before = _snapshot(first)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    full = time.perf_counter() - start
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.97):
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * fraction)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for version in version_dirs(tmp_path / "bundle"):
            verify_bundle(version)  # every version that exists is complete and intact
        assert _snapshot(first) == before
        leftovers = [p for p in (tmp_path / "bundle").iterdir() if p.name.startswith("v")]
        assert all((p / "manifest.json").is_file() for p in leftovers)
    assert verify_bundle(resolve_bundle(tmp_path / "bundle"))
    # the next build clears the staging dirs the killed builds left behind
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    assert not list((tmp_path / "bundle").glob(".building-*"))
