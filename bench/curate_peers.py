"""curatune's full `curate build` against dedup-only peers (rensa, datatrove, datasketch).

    pip install rensa datatrove orjson datasketch     # bench-only, not project dependencies
    nice -n 19 python bench/curate_peers.py --records 200000      # or --records 20000 to try it

Generates one JSONL file of zh/en records (bench/peers_tools.py: 5% exact copies, 5% near copies,
by default 10% shared-answer records; truth = true 5-character-shingle Jaccard >= 0.8 of the whole
normalised record), then runs each tool in its own child process while sampling the summed PSS of
its process tree every 0.1 s, and scores the records it removed against the truth:

- curatune: `python -m curate build` (parse, validate, length and language filters, exact and
  near dedup, mix, split, bundle with report.html), timed as the child's whole wall time;
- rensa: full-set R-MinHash sketches of each record's shingles (`RMinHash.from_token_sets`, not
  the sampling "rho" sketch) fed to `RMinHashDeduplicator` (its LSH; a candidate counts only when
  the estimated Jaccard reaches 0.8);
- datatrove: its 4 MinHash stages with LocalPipelineExecutor (peers_tools.dedup_datatrove);
- datasketch: `MinHash.bulk` sketches, `MinHashLSH` query, then insert of the records kept;
  candidates checked by estimated Jaccard.

Every tool sees `curate.dedup.exact.normalise(instruction + input + output)`, 5-character
shingles, 128 permutations, threshold 0.8. LSH layouts: datasketch uses the one curatune's rule
picks (`lsh_params`: 25 bands x 5 rows); rensa, which needs bands x rows = 128, the nearest that
rule allows (32 x 4); both then check candidates, as curatune does. datatrove checks none, so its
layout is its threshold: it keeps its own default, 14 buckets x 8 hashes (112 hashes), which at
20,000 records scored precision 0.987 / recall 0.993, against 0.73 / 1.00 for 25 x 5 and
0.994 / 0.918 for 9 x 13 (datasketch's own choice for 0.8); `--datatrove-layout BxR` changes it.

A peer is timed inside its child from opening the file to holding the set of removed ids (parsing
included; interpreter start-up and imports not); curatune by the wall time of its whole build, so
the comparison leans toward the peers. Target: curatune records/s >= 1.3 x the fastest peer's, at
precision >= 0.99 and recall >= 0.95 (peers_tools.score). Last line: key=value pairs.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from peers_tools import (
    Run,
    dedup_datatrove,
    generate,
    record_text,
    run_sampled,
    score,
    tail,
)

from curate.dedup.exact import normalise
from curate.dedup.minhash import lsh_params

THRESHOLD, NUM_PERM, SHINGLE = 0.8, 128, 5
PEERS = {"rensa": ["rensa"], "datatrove": ["datatrove", "orjson"], "datasketch": ["datasketch"]}
TARGET_RATIO, TARGET_PRECISION, TARGET_RECALL = 1.3, 0.99, 0.95


@dataclass
class Result:
    name: str
    seconds: float  # what records/s is computed from
    run: Run        # the child: wall time (start-up included), peak PSS, CPU time, load average
    removed: int
    precision: float
    recall: float


def layout(exact: bool) -> tuple[int, int]:
    """curatune's bands x rows for the threshold; with `exact`, only layouts using all permutations."""
    if not exact:
        params = lsh_params(THRESHOLD, NUM_PERM)
        return params.bands, params.rows
    low = THRESHOLD * 0.9
    for rows in range(NUM_PERM, 0, -1):
        bands = NUM_PERM // rows
        if bands * rows == NUM_PERM and 1 - (1 - low**rows) ** bands >= 0.995:
            return bands, rows
    return NUM_PERM, 1


def read_texts(files: list[Path]) -> list[str]:
    texts = []
    for file in files:
        with open(file, encoding="utf-8") as handle:
            texts.extend(normalise(record_text(json.loads(line))) for line in handle)
    return texts


def shingle_list(text: str) -> list[str]:
    return [text[i:i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))]


def dedup_rensa(files: list[Path], work: Path) -> list[int]:
    from rensa import RMinHash, RMinHashDeduplicator

    texts = read_texts(files)
    sketches = RMinHash.from_token_sets((shingle_list(t) for t in texts), num_perm=NUM_PERM, seed=42)
    bands, _ = layout(exact=True)
    dedup = RMinHashDeduplicator(threshold=THRESHOLD, num_perm=NUM_PERM, use_lsh=True, num_bands=bands)
    keep = dedup.add_pairs(zip(map(str, range(len(texts))), sketches))
    return [i for i, kept in enumerate(keep) if not kept]


def dedup_datasketch(files: list[Path], work: Path) -> list[int]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=layout(exact=False))
    kept: dict[int, MinHash] = {}
    removed = []
    texts = read_texts(files)
    for start in range(0, len(texts), 1000):  # MinHash.bulk, its batch API: a quarter faster than update_batch
        chunk = [[s.encode("utf-8") for s in shingle_list(t)] for t in texts[start:start + 1000]]
        for index, sketch in enumerate(MinHash.bulk(chunk, num_perm=NUM_PERM), start):
            if any(kept[key].jaccard(sketch) >= THRESHOLD for key in lsh.query(sketch)):
                removed.append(index)
            else:
                lsh.insert(index, sketch)
                kept[index] = sketch
    return removed


RUNNERS = {"rensa": dedup_rensa, "datasketch": dedup_datasketch}  # datatrove also takes its layout


def child(peer: str, files: list[Path], work: Path, result: Path, datatrove_layout: str) -> None:
    """In the peer's own process: time it from reading the file to the removed ids."""
    bands, rows = map(int, datatrove_layout.split("x"))
    start = time.perf_counter()
    removed = (dedup_datatrove(files, work, bands, rows) if peer == "datatrove" else RUNNERS[peer](files, work))
    seconds = time.perf_counter() - start
    result.write_text(json.dumps({"seconds": seconds, "removed": sorted(set(removed))}), encoding="utf-8")


def run_peer(peer: str, files: list[Path], folder: Path, cluster: list[int], datatrove_layout: str) -> Result | None:
    missing = [m for m in PEERS[peer] if importlib.util.find_spec(m) is None]
    if missing:
        print(f"{peer}: not installed ({', '.join(missing)} missing; pip install {' '.join(missing)}): skipped",
              flush=True)
        return None
    work = folder / f"work-{peer}"
    work.mkdir()
    result, log = work / "result.json", folder / f"{peer}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", peer, "--result", str(result),
               "--work", str(work), "--datatrove-layout", datatrove_layout, *map(str, files)]
    run = run_sampled(command, log, ROOT)
    if run.status or not result.exists():
        print(f"{peer}: failed (exit status {run.status}) after {run.wall:.1f}s; last lines of its log:\n{tail(log)}",
              flush=True)
        return None
    data = json.loads(result.read_text(encoding="utf-8"))
    precision, recall = score(set(data["removed"]), cluster)
    return Result(peer, data["seconds"], run, len(data["removed"]), precision, recall)


def write_recipe(folder: Path, files: list[Path]) -> Path:
    sources = "\n".join(f"  - {{path: {f.name}, kind: domain, languages: [zh, en]}}" for f in files)
    recipe = folder / "recipe.yaml"
    recipe.write_text(f"name: peers\nsources:\n{sources}\n"
                      "mix: {ratio: '1:4', allow_out_of_band: true}\n"  # one domain source: nothing to mix
                      "filters: {length: {min_chars: 1, max_chars: 100000}}\n"
                      f"dedup: {{exact: true, near: {{threshold: {THRESHOLD}, num_perm: {NUM_PERM}, "
                      f"shingle: {SHINGLE}}}}}\noutput: out\n", encoding="utf-8")
    return recipe


def run_curatune(files: list[Path], folder: Path, cluster: list[int]) -> Result | None:
    out, log = folder / "bundles", folder / "curatune.log"
    command = [sys.executable, "-m", "curate", "build", str(write_recipe(folder, files)), "--output", str(out)]
    run = run_sampled(command, log, ROOT)
    rejects = sorted(out.glob("**/rejects.jsonl"))
    if run.status or not rejects:
        print(f"curatune: build failed (exit status {run.status}); last lines of its log:\n{tail(log)}", flush=True)
        return None
    offsets, total = {}, 0
    for file in files:
        offsets[file.name] = total
        total += file.read_bytes().count(b"\n")
    removed, other = set(), 0
    with open(rejects[0], encoding="utf-8") as handle:
        for line in handle:
            reject = json.loads(line)
            if reject["stage"] in ("exact_dedup", "near_dedup"):
                name, row = reject["id"].rsplit(":", 1)
                removed.add(offsets[name] + int(row) - 1)
            else:
                other += 1
    if other:
        print(f"curatune: {other} records rejected by stages other than dedup (not scored as removals)", flush=True)
    print(tail(log, 8), flush=True)
    precision, recall = score(removed, cluster)
    return Result("curatune", run.wall, run, len(removed), precision, recall)


def describe(files: list[Path], datatrove_layout: str) -> None:
    """The settings each tool runs with, and which curatune: the commit and uncommitted files."""
    def git(*words: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *words], check=False, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = git("status", "--porcelain", "--", "curate", "schemas").splitlines()
    print(f"curatune at {head or '?'} ({len(dirty)} uncommitted files under curate/ and schemas/), "
          f"{os.cpu_count()} cores; all tools: threshold {THRESHOLD}, {NUM_PERM} permutations, "
          f"{SHINGLE}-character shingles of normalise(instruction + input + output)", flush=True)
    print(f"  rensa: RMinHash.from_token_sets + RMinHashDeduplicator, {layout(True)[0]} bands x {layout(True)[1]} rows, "
          f"candidates checked; datasketch: MinHash.bulk + MinHashLSH, {'x'.join(map(str, layout(False)))}, "
          f"candidates checked; datatrove: 4 stages, {datatrove_layout} (buckets x hashes), no check, tasks "
          f"{len(files)}/{datatrove_layout.split('x')[0]}/1/{len(files)}, at most 2 workers", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--shared", type=float, default=0.10, help="share of shared-answer records")
    parser.add_argument("--shards", type=int, default=1, help="write the records as this many files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    parser.add_argument("--datatrove-layout", default="14x8", help="datatrove's buckets x hashes per bucket")
    parser.add_argument("--child", choices=list(PEERS), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("files", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.files, args.work, args.result, args.datatrove_layout)
    n = args.records
    with tempfile.TemporaryDirectory(prefix="curate-peers-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        data = generate(folder, n, args.seed, args.shared, args.shards, THRESHOLD)
        size = sum(f.stat().st_size for f in data.files)
        print(f"generated {n} records in {len(data.files)} file(s), {size / 2**20:.0f} MiB, in "
              f"{time.perf_counter() - start:.1f}s: {data.kinds.count('exact')} exact copies, "
              f"{data.kinds.count('near')} near copies, {data.kinds.count('shared')} shared-answer records "
              f"({data.shared_dup_pairs}/{data.shared_pairs} of their pairs at true Jaccard >= {THRESHOLD}); "
              f"{data.injected} records to remove", flush=True)
        describe(data.files, args.datatrove_layout)
        results = []
        for name in [p for p in args.peers.split(",") if p] + ["curatune"]:
            result = (run_curatune(data.files, folder, data.cluster) if name == "curatune"
                      else run_peer(name, data.files, folder, data.cluster, args.datatrove_layout))
            if result:
                results.append(result)
                run = result.run
                print(f"{name}: {n / result.seconds:,.0f} records/s ({result.seconds:.1f}s timed, {run.wall:.1f}s "
                      f"child wall, {run.cpu:.1f} CPU s, load avg {run.load[0]:.1f}->{run.load[1]:.1f}), peak PSS "
                      f"{run.peak_mib:,.0f} MiB, removed {result.removed}, precision {result.precision:.4f}, "
                      f"recall {result.recall:.4f}", flush=True)
    report(n, results, args.peers.split(","))


def report(n: int, results: list[Result], peers: list[str]) -> None:
    by_name = {r.name: r for r in results}
    ours = by_name.get("curatune")
    others = [r for r in results if r.name != "curatune"]
    fastest = max(others, key=lambda r: n / r.seconds, default=None)
    ratio = (n / ours.seconds) / (n / fastest.seconds) if ours and fastest else float("nan")
    if ours and fastest:
        met = ratio >= TARGET_RATIO and ours.precision >= TARGET_PRECISION and ours.recall >= TARGET_RECALL
        print(f"curatune / fastest peer ({fastest.name}): {ratio:.2f}x; target >= {TARGET_RATIO}x at precision >= "
              f"{TARGET_PRECISION} and recall >= {TARGET_RECALL}: {'MET' if met else 'NOT MET'}", flush=True)
    fields = [f"records={n}"]
    for name in [*peers, "curatune"]:
        r = by_name.get(name)
        fields.append(f"{name}_rps={n / r.seconds:.0f}" if r else f"{name}_rps=nan")
        if r:
            fields += [f"{name}_peak_mib={r.run.peak_mib:.0f}", f"{name}_precision={r.precision:.4f}",
                       f"{name}_recall={r.recall:.4f}"]
    fields.append(f"fastest_peer={fastest.name if fastest else 'none'} ratio={ratio:.2f}")
    print(" ".join(fields))


if __name__ == "__main__":
    main()
