"""Helpers for bench/curate_peers.py: the generated data, its truth, scoring and memory sampling.

Data: zh and en records (half each) from `curate_scale.Generator`, in one JSONL file (or
`shards` files, consecutive slices of the same records). Shares of the records:

- shared answers (default 10%): groups of 2-4 records whose answers are the same long answer
  (drawn like any other record's) under distinct questions (a different question and tag each);
- exact copies (5%): a random base record with case, spacing and punctuation changed;
- near copies (5%): a random base record edited until its true Jaccard lands in [0.80, 1.0);
- originals: the rest. Base records are the originals and the shared-answer records.

Truth: two records are duplicates when the true Jaccard of the 5-character shingles of their whole
normalised text (instruction + input + output, `curate_scale.jaccard`) is >= the threshold. It is
computed exactly for every pair inside a family (a record, or a shared-answer group, together with
all the copies made of them); records of different families are taken to be distinct (their
sentences are independent random draws). Clusters are the connected components of the duplicate
pairs. A shared-answer pair is thus a duplicate only when the answer dominates the text: with the
project's questions, most zh pairs (short questions) reach 0.8 and most en pairs (long ones) do not.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate_scale import Generator, jaccard  # it also puts the project root on sys.path

from curate.dedup.exact import normalise


@dataclass
class Dataset:
    files: list[Path]
    kinds: list[str]      # per record, in file order: original, shared, exact, near
    cluster: list[int]    # per record: the truth cluster it belongs to
    shared_pairs: int     # pairs of records sharing an answer
    shared_dup_pairs: int  # ... whose true Jaccard reaches the threshold

    @property
    def injected(self) -> int:
        """Records that must go: every member of a cluster but one."""
        return len(self.cluster) - len(set(self.cluster))


def generate(folder: Path, n: int, seed: int, shared: float = 0.10, shards: int = 1,
             threshold: float = 0.8) -> Dataset:
    rng = random.Random(seed)
    gens = {lang: Generator(lang, rng.randrange(1 << 30)) for lang in ("zh", "en")}
    n_exact, n_near = round(n * 0.05), round(n * 0.05)
    n_shared = round(n * shared)
    rows: list[dict] = []
    langs: list[str] = []
    kinds: list[str] = []
    family: list[int] = []
    group = 0
    while len(rows) < n_shared:
        lang = rng.choice(("zh", "en"))
        answer = gens[lang].record()["output"]
        group += 1
        for _ in range(min(rng.randint(2, 4), max(2, n_shared - len(rows)))):
            row = gens[lang].record()
            rows.append(dict(row, output=answer))
            langs.append(lang)
            kinds.append("shared")
            family.append(group)
    for _ in range(n - n_exact - n_near - len(rows)):
        lang = rng.choice(("zh", "en"))
        rows.append(gens[lang].record())
        langs.append(lang)
        kinds.append("original")
        family.append(len(rows) + n)  # above every group number
    bases = len(rows)
    for i in range(n_exact + n_near):
        source = rng.randrange(bases)
        gen = gens[langs[source]]
        rows.append(gen.exact_copy(rows[source]) if i < n_exact else gen.near_copy(rows[source])[0])
        langs.append(langs[source])
        kinds.append("exact" if i < n_exact else "near")
        family.append(family[source])
    order = list(range(len(rows)))
    rng.shuffle(order)
    rows, kinds, family = [rows[i] for i in order], [kinds[i] for i in order], [family[i] for i in order]
    cluster, shared_pairs, shared_dups = _truth(rows, kinds, family, threshold)
    files = []
    for shard in range(shards):
        path = folder / ("data.jsonl" if shards == 1 else f"data-{shard}.jsonl")
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows[shard * n // shards:(shard + 1) * n // shards]:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        files.append(path)
    return Dataset(files, kinds, cluster, shared_pairs, shared_dups)


def record_text(row: dict) -> str:
    """The whole record, as every tool dedups it (after `normalise`, which drops the newlines)."""
    return f"{row['instruction']}\n{row.get('input', '')}\n{row['output']}"


def _truth(rows: list[dict], kinds: list[str], family: list[int], threshold: float) -> tuple[list[int], int, int]:
    parent = list(range(len(rows)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    members: dict[int, list[int]] = {}
    for index, fam in enumerate(family):
        members.setdefault(fam, []).append(index)
    shared_pairs = shared_dups = 0
    for group in members.values():
        for a, i in enumerate(group):
            for j in group[a + 1:]:
                similar = jaccard(record_text(rows[i]), record_text(rows[j])) >= threshold
                if kinds[i] == kinds[j] == "shared":
                    shared_pairs += 1
                    shared_dups += similar
                if similar:
                    parent[find(j)] = find(i)
    return [find(i) for i in range(len(rows))], shared_pairs, shared_dups


def score(removed: set[int], cluster: list[int]) -> tuple[float, float]:
    """Precision and recall of a set of removed record indices against the truth clusters.

    In a cluster of s records from which a tool removed r, min(r, s - 1) removals are right (all
    of a cluster's records but one may go, whichever one stays); a removed record of a one-record
    cluster is wrong. Precision = right / removed; recall = right / sum of (s - 1).
    """
    size: dict[int, int] = {}
    gone: dict[int, int] = {}
    for index, c in enumerate(cluster):
        size[c] = size.get(c, 0) + 1
    for index in removed:
        gone[cluster[index]] = gone.get(cluster[index], 0) + 1
    right = sum(min(r, size[c] - 1) for c, r in gone.items())
    due = sum(s - 1 for s in size.values())
    return right / max(len(removed), 1), right / max(due, 1)


@dataclass
class Run:
    wall: float       # seconds
    peak_mib: float   # sampled peak of the process tree's summed PSS
    cpu: float        # user + system CPU seconds of the child and the descendants reaped in its tree
                      # (not datatrove's forkserver workers: a lower bound when it runs 2 workers)
    status: int
    load: tuple[float, float]  # 1-minute load average of the machine before and after


def run_sampled(command: list[str], log: Path, cwd: Path) -> Run:
    """Runs `command` (output to `log`), sampling its process tree's memory every 0.1 s (summed
    PSS, bench/tree_memory.py, as bench/curate_scale.py does)."""
    import resource

    from tree_memory import TreePeak

    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        memory = TreePeak(proc.pid)
        while proc.poll() is None:
            memory.sample()
            time.sleep(0.1)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(wall, memory.peak / 2**20, cpu, proc.returncode, (load, os.getloadavg()[0]))


def tail(log: Path, lines: int = 5) -> str:
    return "\n".join(f"    | {line}" for line in log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# --- datatrove: its 4-stage MinHash pipeline, seeing the same normalised text as the others ---

try:  # module level, so that datatrove's worker processes can unpickle them by name
    from datatrove.utils.word_tokenizers import WordTokenizer
except ImportError:  # datatrove is not installed: the bench says so and skips it
    WordTokenizer = object


class CharTokenizer(WordTokenizer):
    """Every character a "word", so that datatrove's 5-word n-grams are 5-character shingles."""

    def word_tokenize(self, text: str) -> list[str]:
        return list(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def xxhash64_utf8(text: str) -> int:
    """datatrove's default shingle hash, xxh64, of the UTF-8 bytes: what xxhash < 4 did with the str
    datatrove 0.10 passes it; xxhash 4 refuses a str ("Strings must be encoded before hashing")."""
    import xxhash

    return xxhash.xxh64_intdigest(text.encode("utf-8"))


def datatrove_adapter(reader: object, data: dict, path: str, id_in_file: int | str) -> dict:
    return {"text": normalise(record_text(data)), "id": f"{path}:{id_in_file}", "metadata": {}}


def dedup_datatrove(files: list[Path], work: Path, bands: int, rows: int, workers: int = 2) -> list[int]:
    """Removed record indices (in file order) after signatures -> buckets -> cluster -> filter.

    datatrove splits work by file, so the reading stages (1 and 4) run one task per input file.
    Text normalisation is `curate.dedup.exact.normalise` (in the reader's adapter); datatrove's own
    (which would also turn every number into 0) is off. No candidate check: datatrove has none.
    """
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig

    config = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, hash_config=HashConfig(precision=64),
                           norm_config=TextNormConfig(lowercase=False, norm_whitespace=False, remove_punctuation=False,
                                                      norm_unicode_diacritics=False, norm_numbers=False))
    folder = files[0].parent
    tasks = len(files)

    def reader() -> JsonlReader:
        return JsonlReader(str(folder), glob_pattern="data*.jsonl", adapter=datatrove_adapter, compression=None)

    def run(pipeline: list, name: str, tasks: int) -> None:
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(tasks, workers), logging_dir=str(work / f"logs-{name}"),
                              skip_completed=False).run()

    signatures = MinhashDedupSignature(str(work / "signatures"), config=config, language=CharTokenizer())
    try:
        signatures._hash_func("probe")
    except TypeError:  # xxhash >= 4 with datatrove 0.10: same hash, of the encoded text
        signatures._hash_func = xxhash64_utf8
    run([reader(), signatures], "signatures", tasks)
    run([MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=config)], "buckets", bands)
    run([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)], "cluster", 1)
    run([reader(), MinhashDedupFilter(str(work / "remove"), exclusion_writer=JsonlWriter(str(work / "removed"),
                                                                                         compression=None)),
         JsonlWriter(str(work / "kept"), compression=None)], "filter", tasks)
    offsets, total = {}, 0
    for file in files:
        offsets[file.name] = total
        total += file.read_bytes().count(b"\n")
    removed = []
    for part in sorted((work / "removed").glob("*.jsonl")):
        with open(part, encoding="utf-8") as handle:
            for line in handle:
                name, row = json.loads(line)["id"].rsplit(":", 1)
                removed.append(offsets[name.rsplit("/", 1)[-1]] + int(row))
    return removed
