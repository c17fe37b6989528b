"""`curate build --engine ray` (curate.engine_ray) writes the local engine's bundle, byte for byte.

A 50k-record recipe (identity templates; JSONL files, a glob, Parquet, a saved dataset and a
sampled source; exact and near duplicates; rejects of every per-record kind; a mix that leaves
records out) is built once with the local engine (a subprocess, two workers) and then on a local
two-CPU Ray started here: plainly, with a Ray worker killed mid-build, and with the driver killed.
The shuffled dedup is also checked against the local functions on adversarial inputs (buckets far
larger than the fan-out), and the refusal without Ray is one line.
"""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from curate_helpers import general_rows, write_jsonl
from test_bundle_pinned import (
    PINNED_FILES,
    fingerprint,
    generated_project,
    with_a_large_source,
)

ROOT = Path(__file__).resolve().parents[1]
RAY_TASK_TITLES = ("ray::MapBatches", "ray::map", "ray::reduce")  # Ray workers running our tasks


def big_project(tmp: Path) -> Path:
    """tests.test_bundle_pinned's generated recipe (identity, every kind of reject) grown to ~50k
    records: a large en source, a zh domain source with 1,000 exact and 1,000 near copies, a glob of
    two files, a Parquet file, a saved dataset and a sampled source."""
    recipe = with_a_large_source(generated_project(tmp), rows=27_000)
    rng = random.Random(17)
    zh = general_rows("zh", 9000, start=50_000)
    exact = [dict(row, instruction=row["instruction"].replace("，", ", ") + " ？")
             for row in rng.sample(zh, 1000)]
    near = [dict(row, output=row["output"].replace("即可", "就可以了")) for row in rng.sample(zh, 1000)]
    mixed = zh + exact + near
    rng.shuffle(mixed)
    write_jsonl(tmp / "domain" / "zh.jsonl", mixed)
    parts = general_rows("en", 8000, start=100_000)
    write_jsonl(tmp / "general" / "part-1.jsonl", [dict(r, instruction=r["instruction"].upper()) if i % 50 == 0 else r
                                                   for i, r in enumerate(parts[:4000])])
    write_jsonl(tmp / "general" / "part-2.jsonl", parts[4000:] + parts[:40])  # exact copies across files
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(general_rows("en", 2000, start=200_000)), tmp / "general" / "extra.parquet")
    datasets.Dataset.from_list(general_rows("en", 1000, start=300_000)).save_to_disk(str(tmp / "saved"))
    write_jsonl(tmp / "general" / "sampled.jsonl", general_rows("en", 3000, start=400_000))
    data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data["sources"] += [{"path": "domain/zh.jsonl", "kind": "domain", "languages": ["zh"]},
                        {"path": "general/part-*.jsonl", "kind": "general", "languages": ["en"]},
                        {"path": "general/extra.parquet", "kind": "general"},
                        {"path": "saved", "kind": "general"},
                        {"path": "general/sampled.jsonl#1000", "kind": "general"}]
    data["mix"] = {"ratio": "1:2"}
    recipe.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return recipe


def cli_build(recipe: Path, output: Path, *extra: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "curate", "build", str(recipe), "--output", str(output), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


def same_bundle(one: Path, two: Path) -> None:
    """Byte-identical data files and equal manifest counts and stages."""
    for name in PINNED_FILES:
        assert (one / name).read_bytes() == (two / name).read_bytes(), f"{name} differs"
    assert fingerprint(one) == fingerprint(two)
    first, second = (json.loads((v / "manifest.json").read_text(encoding="utf-8")) for v in (one, two))
    assert first["sources"] == second["sources"] and first["ratio"] == second["ratio"]


# These two come first: they hide Ray from the import system, before this module starts one.
def test_cli_refuses_the_ray_engine_without_ray_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from curate_helpers import make_project

    import curate
    from curate.cli import main

    for name in ("engine_ray", "ray_dedup"):  # as if never imported: `from curate import engine_ray` imports again
        monkeypatch.delitem(sys.modules, f"curate.{name}", raising=False)
        monkeypatch.delattr(curate, name, raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    recipe = make_project(tmp_path)
    result = CliRunner().invoke(main, ["build", str(recipe), "--engine", "ray"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == ["Error: --engine ray needs the ray extra: pip install 'curatune[ray]'"]
    assert not (tmp_path / "bundle").exists()


def test_the_local_engine_needs_no_ray(tmp_path):
    """In a process where `import ray` fails, the default build runs and never tries to import it."""
    from curate_helpers import make_project

    recipe = make_project(tmp_path)
    code = ("import sys; sys.modules['ray'] = None; from curate.cli import main; "
            f"sys.argv = ['curate', 'build', {str(recipe)!r}]; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "bundle" / "v0001" / "train.jsonl").is_file()


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs on 127.0.0.1 for this module; the builds below use it as it is."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """(recipe, the local engine's bundle of it)."""
    tmp = tmp_path_factory.mktemp("ray-project")
    recipe = big_project(tmp / "project")
    return recipe, cli_build(recipe, tmp / "local", "--workers", "2")


def ray_build(recipe: Path, output: Path) -> Path:
    from curate.pipeline import build
    from schemas.recipe import load_recipe

    return build(load_recipe(recipe), output, engine="ray").version_dir


@pytest.mark.slow
def test_shuffled_dedup_equals_the_local_functions(ray_local):
    """Exact and candidate pairs from the Ray shuffles equal the local functions', with buckets of
    thousands (where the fan-out picks which pairs exist), empty signatures and a few records."""
    from curate import ray_dedup
    from curate.dedup.exact import find_exact_duplicates
    from curate.dedup.minhash import (
        _EMPTY,
        band,
        candidates,
        lsh_params,
        near_duplicates,
    )

    rng = np.random.default_rng(3)
    n = 60_000
    sig = rng.integers(0, 2**31, size=(n, 64), dtype=np.uint32)
    twins = rng.choice(n, n // 5, replace=False)
    noisy = rng.random((len(twins), 64)) < 0.15
    sig[twins] = np.where(noisy, sig[twins] + 1, sig[rng.choice(n, len(twins))])
    sig[100:2600] = sig[7]  # one bucket of 2,501 records in every band
    sig[5000:5040, :8] = sig[9, :8]  # forty records sharing one band only
    sig[3000:3100] = _EMPTY
    params = lsh_params(0.8, 64)
    keys, valid = band(sig, params), sig[:, 0] != _EMPTY
    assert np.array_equal(ray_dedup.candidate_pairs(keys, valid), candidates(keys, valid))
    for small in (1, 5, 12):
        assert np.array_equal(ray_dedup.candidate_pairs(keys[:small], valid[:small]),
                              candidates(keys[:small], valid[:small]))
    assert len(near_duplicates(sig, 0.8)) > 2500
    words = rng.integers(0, 40, size=(n, 16), dtype=np.uint8)
    words[:, :15] = 0
    exact_keys = words.view("S16").reshape(-1)
    assert ray_dedup.exact_duplicates(exact_keys) == find_exact_duplicates(exact_keys)
    assert ray_dedup.exact_duplicates(exact_keys[:0]) == {}


def test_candidates_pair_each_member_with_earlier_members_by_index():
    """The local rule the shuffle reproduces: in a bucket larger than fanout + 1, member j is
    paired with the `fanout` members just before it in index order (not in sort order)."""
    from curate.dedup.minhash import candidates

    keys = np.zeros((30, 1), dtype=np.uint64)
    keys[::3] = 5  # a second bucket interleaved with the first
    pairs = candidates(keys, np.ones(30, dtype=bool), fanout=2)
    for bucket in (np.arange(0, 30, 3), np.setdiff1d(np.arange(30), np.arange(0, 30, 3))):
        expected = {(int(bucket[k - s]), int(bucket[k])) for k in range(len(bucket)) for s in (1, 2) if k >= s}
        assert {tuple(p) for p in pairs.tolist() if p[1] in bucket} == expected


@pytest.mark.slow
def test_ray_engine_writes_the_local_bundle(ray_local, project, tmp_path):
    recipe, local = project
    counts = json.loads((local / "manifest.json").read_text(encoding="utf-8"))["counts"]
    assert counts["read"] >= 50_000 and counts["mixed_out"] > 0
    stages = {s["name"]: s["rejected"] for s in json.loads((local / "manifest.json").read_text())["stages"]}
    assert all(stages[name] > 0 for name in ("read", "validate", "length", "language", "exact_dedup", "near_dedup"))
    same_bundle(local, ray_build(recipe, tmp_path / "ray"))


def _ray_task_workers() -> list:
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if title.startswith(RAY_TASK_TITLES):
            found.append((proc, title))
    return found


@pytest.mark.slow
def test_a_killed_ray_worker_still_gives_the_same_bundle(ray_local, project, tmp_path):
    """SIGKILL the Ray worker running a prepare task, then one running a dedup shuffle task if the
    build gets there in time: Ray retries the tasks and the bundle is the local one."""
    recipe, local = project
    result: dict = {}

    def run() -> None:
        try:
            result["version"] = ray_build(recipe, tmp_path / "ray")
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed: list[str] = []
    deadline = time.monotonic() + 300
    while thread.is_alive() and time.monotonic() < deadline:
        for proc, title in _ray_task_workers():
            wanted = "prepare" if not killed else "map" if len(killed) == 1 else None
            if wanted and wanted in title and (wanted != "map" or "MapBatches" not in title):
                time.sleep(0.3 if not killed else 0)
                try:
                    proc.send_signal(signal.SIGKILL)
                except Exception:  # noqa: BLE001 - it finished first; try the next one
                    continue
                killed.append(title.strip())
                break
        time.sleep(0.02)
    thread.join(timeout=60)
    print("killed:", killed)
    assert "error" not in result, result.get("error")
    assert killed and "_prepare_batch" in killed[0], "no Ray worker was seen running a prepare task"
    same_bundle(local, result["version"])


@pytest.mark.slow
def test_a_killed_driver_leaves_no_version(project, tmp_path):
    """`curate build --engine ray` killed (SIGKILL) while Ray reads: no vNNNN in the output root."""
    import psutil

    recipe, _ = project
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "curate", "build", str(recipe), "--output", str(out),
                             "--engine", "ray", "--workers", "2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stderr:
            if "Ray tasks" in line:  # the prepare stage has started in Ray
                break
        time.sleep(0.5)  # short: a fast machine must not finish the 50k records first
        assert proc.poll() is None, "the build ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        # what the killed driver started (its local Ray) is in its session; end those processes by id
        for leftover in psutil.process_iter():
            try:
                if os.getsid(leftover.pid) == proc.pid:
                    leftover.kill()
            except (psutil.Error, OSError):
                pass
    assert not [p.name for p in out.iterdir() if p.name.startswith("v")], list(out.iterdir())
    assert [p.name for p in out.iterdir() if p.name.startswith(".building-")]  # it was killed mid-build
