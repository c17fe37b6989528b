"""Scale benchmark for `curate build`: N realistic zh/en records with injected duplicates.

    python bench/curate_scale.py 1000000

Generates records from the sentences of the project's own general data (about 600 characters
each; 5% exact copies that differ only in case, spacing and punctuation, 5% near copies with a
true 5-character-shingle Jaccard of 0.80-1.0), builds them with language filtering and both
dedup stages in a child process (timed, then again while sampling the process tree's memory),
and scores dedup precision and recall against the injected truth. It also times, on a 20,000-record sample, a
naive pipeline (datasketch MinHash.update per shingle, MinHashLSH, langdetect per record).
Last line: key=value pairs.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate.dedup.exact import normalise  # noqa: E402
from curate.dedup.minhash import near_duplicates_datasketch  # noqa: E402
from curate.filters.language import detect_language  # noqa: E402

TARGET_CHARS = 600


def sentence_pool(lang: str) -> tuple[list[str], list[str]]:
    """Questions and answer sentences from the project's own general data in one language."""
    questions, sentences = [], []
    for line in (ROOT / "recipes" / "general" / f"general_{lang}.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        questions.append(row["instruction"])
        split = re.split(r"(?<=[。！？.!?])\s*", row["output"])
        sentences += [s for s in split if len(s) > 8]
    return questions, sentences


def shingles(text: str, k: int = 5) -> set[str]:
    text = normalise(text)
    return {text[i:i + k] for i in range(max(1, len(text) - k + 1))}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


class Generator:
    def __init__(self, lang: str, seed: int):
        self.lang = lang
        self.rng = random.Random(seed)
        self.questions, self.sentences = sentence_pool(lang)
        self.joiner = "" if lang == "zh" else " "

    def record(self) -> dict:
        rng = self.rng
        parts, size = [], 0
        while size < TARGET_CHARS - 60:
            sentence = rng.choice(self.sentences)
            parts.append(sentence)
            size += len(sentence) + 1
        tag = f"{rng.randrange(10**6):06d}"  # keeps two records that drew the same sentences apart
        return {"instruction": f"{rng.choice(self.questions)} ({tag})", "input": "",
                "output": self.joiner.join(parts)}

    def exact_copy(self, row: dict) -> dict:
        """Same text after normalisation: case, spacing and punctuation changed."""
        out = dict(row)
        out["instruction"] = "  " + row["instruction"].upper().replace("?", " ?!").replace("？", "?")
        out["output"] = row["output"].replace("，", ",").replace("。", ".").replace(". ", "...  ")
        return out

    def near_copy(self, row: dict) -> tuple[dict, float]:
        """Sentences dropped, swapped or inserted until the true Jaccard lands in [0.80, 1.0)."""
        rng = self.rng
        original = row["instruction"] + row["output"]
        for _ in range(50):
            parts = [p for p in re.split(r"(?<=[。！？.!?])\s*", row["output"]) if p]
            for _ in range(rng.randint(1, 2)):
                action = rng.random()
                at = rng.randrange(len(parts))
                if action < 0.4 and len(parts) > 3:
                    parts.pop(at)
                elif action < 0.7:
                    parts.insert(at, rng.choice(self.sentences))
                elif parts[at]:
                    words = parts[at]
                    cut = rng.randrange(len(words))
                    parts[at] = words[:cut] + words[cut + 3:]
            out = dict(row, output=self.joiner.join(p for p in parts if p))
            similarity = jaccard(original, out["instruction"] + out["output"])
            if 0.80 <= similarity < 1.0:
                return out, similarity
        return self.exact_copy(row), 1.0


def generate(folder: Path, n: int, seed: int) -> dict[str, list[int]]:
    """Writes four source files and returns, per file, each line's cluster id (twins share one).
    Rows are held as JSON text until written (a 10M-record run would not fit as dicts)."""
    rng = random.Random(seed)
    plan = {"domain_zh": n // 8, "domain_en": n // 8, "general_zh": 3 * n // 8}
    plan["general_en"] = n - sum(plan.values())
    truth: dict[str, list[int]] = {}
    kinds: dict[str, list[str]] = {}
    cluster = 0
    for name, count in plan.items():
        gen = Generator(name.split("_")[1], rng.randrange(1 << 30))
        originals = int(count * 0.9)
        rows, clusters, kind = [], [], []
        for _ in range(originals):
            rows.append(json.dumps(gen.record(), ensure_ascii=False))
            clusters.append(cluster)
            kind.append("original")
            cluster += 1
        for i in range(count - originals):
            source = rng.randrange(originals)
            original = json.loads(rows[source])
            if i % 2 == 0:
                rows.append(json.dumps(gen.exact_copy(original), ensure_ascii=False))
                kind.append("exact")
            else:
                rows.append(json.dumps(gen.near_copy(original)[0], ensure_ascii=False))
                kind.append("near")
            clusters.append(clusters[source])
        order = list(range(len(rows)))
        rng.shuffle(order)
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for index in order:
                handle.write(rows[index] + "\n")
        truth[name] = [clusters[i] for i in order]
        kinds[name] = [kind[i] for i in order]
    return truth, kinds


def write_recipe(folder: Path) -> Path:
    sources = "\n".join(f"  - {{path: {name}.jsonl, kind: {name.split('_')[0]}, languages: [{name.split('_')[1]}]}}"
                        for name in ("domain_zh", "domain_en", "general_zh", "general_en"))
    recipe = folder / "recipe.yaml"
    recipe.write_text(f"name: scale\nsources:\n{sources}\nmix: {{ratio: '1:3'}}\n"
                      "filters: {length: {min_chars: 1, max_chars: 100000}}\n"
                      "dedup: {near: {threshold: 0.8, num_perm: 128, shingle: 5}}\noutput: out\n", encoding="utf-8")
    return recipe


def run_build(recipe: Path, workers: int | None = None, sample_memory: bool = True) -> tuple[float, float, Path]:
    """Wall seconds and peak memory (MiB, summed PSS: bench/tree_memory.py) of the whole process
    tree of `curate build`. Reading PSS costs CPU the build then lacks (about 3 CPU seconds in a
    50-second build on two cores), so a timed run is made without it (peak memory then 0)."""
    from tree_memory import TreePeak

    start = time.perf_counter()
    extra = ["--workers", str(workers)] if workers else []
    proc = subprocess.Popen([sys.executable, "-m", "curate", "build", str(recipe), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreePeak(proc.pid)
    while sample_memory and proc.poll() is None:
        memory.sample()
        time.sleep(0.1)
    proc.wait()
    elapsed = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"build failed: {err.strip().splitlines()[-1]}")
    for line in err.strip().splitlines():
        print(f"  | {line}", flush=True)
    return elapsed, memory.peak / 2**20, Path(out.strip().splitlines()[-1])


def score_dedup(version: Path, truth: dict[str, list[int]], kinds: dict[str, list[str]]) -> dict[str, float]:
    """Precision: removed records whose named twin is truly their twin. Recall per kind: injected
    copies not left standing beside another member of their cluster."""
    def where(record_id: str) -> tuple[str, int]:
        file, row = record_id.rsplit(":", 1)
        return file.removesuffix(".jsonl"), int(row) - 1

    removed = correct = 0
    with open(version / "rejects.jsonl", encoding="utf-8") as handle:
        for line in handle:
            reject = json.loads(line)
            if reject["stage"] in ("exact_dedup", "near_dedup"):
                removed += 1
                (name, row), (twin, twin_row) = where(reject["id"]), where(reject["duplicate_of"])
                correct += truth[name][row] == truth[twin][twin_row]
    survivors: dict[int, list[str]] = {}
    for split in ("train", "val"):
        with open(version / f"{split}.jsonl", encoding="utf-8") as handle:
            for line in handle:
                name, row = where(json.loads(line)["meta"]["id"])
                survivors.setdefault(truth[name][row], []).append(kinds[name][row])
    injected = {kind: sum(k == kind for ks in kinds.values() for k in ks) for kind in ("exact", "near")}
    missed = {"exact": 0, "near": 0}
    for standing in survivors.values():
        if len(standing) > 1:  # all but one are misses; the original is the one allowed to stay
            extra = sorted(standing, key=lambda k: k != "original")[1:]
            for kind in extra:
                missed[kind if kind != "original" else "near"] += 1
    return {"precision": correct / max(removed, 1),
            "recall_exact": 1 - missed["exact"] / max(injected["exact"], 1),
            "recall_near": 1 - missed["near"] / max(injected["near"], 1)}


def language_accuracy(samples: int = 2000, seed: int = 5) -> float:
    """Detection on zh and en snippets of 10-60 characters (cut at a word boundary in English)
    from the project's own questions and answers; a zh snippet must hold Chinese characters."""
    rng = random.Random(seed)
    right = total = 0
    for lang in ("zh", "en"):
        questions, sentences = sentence_pool(lang)
        pool = questions + sentences
        for _ in range(samples // 2):
            text, limit = rng.choice(pool), rng.randint(10, 60)
            if lang == "en" and len(text) > limit:
                cut = text.rfind(" ", 0, limit)
                text = text[:cut] if cut >= 10 else text[:limit]
            text = text[:limit]
            if len(text) < 10 or (lang == "zh" and not re.search(r"[\u4e00-\u9fff]", text)):
                continue
            total += 1
            right += detect_language(text) == lang
    return right / total


def naive_rate(folder: Path, sample: int) -> float:
    """Records/s of the naive reference pipeline on the first `sample` records of the data."""
    from langdetect import DetectorFactory, detect

    DetectorFactory.seed = 0
    texts = []
    for name in ("general_zh", "general_en"):
        with open(folder / f"{name}.jsonl", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                texts.append(row["instruction"] + "\n" + row["output"])
                if len(texts) >= sample * (1 if name == "general_en" else 0.5):
                    break
    start = time.perf_counter()
    for text in texts:
        try:
            detect(text)
        except Exception:
            pass
    near_duplicates_datasketch([normalise(t) for t in texts], threshold=0.8)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--naive-sample", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", default="", help="comma-separated worker counts to build with in turn, "
                        "e.g. 1,2 (default: one build, one worker per core); each new build is a new version")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",") if w.strip()] or [None]
    with tempfile.TemporaryDirectory(prefix="curate-scale-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        truth, kinds = generate(folder, args.n, args.seed)
        chars = sum(len(line) for name in truth for line in open(folder / f"{name}.jsonl", encoding="utf-8"))
        print(f"generated {args.n} records ({chars / args.n:.0f} JSON characters each) in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
        recipe = write_recipe(folder)
        rates = {}
        for workers in counts:
            seconds, _, version = run_build(recipe, workers, sample_memory=False)
            sampled, peak, _ = run_build(recipe, workers)
            rate = rates[workers] = args.n / seconds
            print(f"build ({workers or 'default'} workers): {seconds:.1f}s, {rate:,.0f} records/s; "
                  f"peak memory (PSS, all processes) {peak:,.0f} MiB in a second build, {sampled:.1f}s "
                  f"while sampled", flush=True)
        if len(rates) > 1:
            low, high = min(rates, key=lambda w: w or 0), max(rates, key=lambda w: w or 0)
            print(f"{high} workers / {low}: {rates[high] / rates[low]:.2f}x", flush=True)
        scores = score_dedup(version, truth, kinds)
        print(f"dedup: precision {scores['precision']:.4f}, recall exact {scores['recall_exact']:.4f}, "
              f"near {scores['recall_near']:.4f}", flush=True)
        accuracy = language_accuracy()
        print(f"language accuracy on 10-60 character zh/en snippets: {accuracy:.4f}", flush=True)
        sample = min(args.naive_sample, args.n)
        naive = naive_rate(folder, sample)
        print(f"naive reference on {sample} records: {naive:,.0f} records/s", flush=True)
    print(f"records={args.n} records_per_s={rate:.0f} peak_rss_mib={peak:.0f} "
          f"dedup_precision={scores['precision']:.4f} dedup_recall={scores['recall_near']:.4f} "
          f"exact_recall={scores['recall_exact']:.4f} lang_accuracy={accuracy:.4f} "
          f"naive_speedup={rate / naive:.1f}")


if __name__ == "__main__":
    main()
