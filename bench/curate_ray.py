"""`curate build --engine ray` beside the local engine, on the same data, in one run.

    python bench/curate_ray.py 1000000 [--cpus 2]

Generates N records with bench/curate_scale.py's generator (zh/en, ~600 characters, 5% exact and
5% near copies), then builds the recipe twice, each in a child process: with the local engine
(`--workers CPUS`) and with `--engine ray` on a local Ray of CPUS CPUs that the build starts.
While each runs, the child's process tree is sampled with psutil: the driver (the `curate build`
process itself), its workers (the local pool's forked processes; Ray's worker processes, `ray::*`)
and, for Ray, its own services (gcs_server, raylet, agents). Memory is peak RSS of the driver and
peak summed PSS of the workers and of the services (PSS: pages shared between processes, such as
the forked pool's or Ray's object store, are counted once), and the driver's CPU time (what
bounds a cluster: the driver consumes every chunk's results). Prints records/s, the peaks, each
stage's time from the build's log, and whether the two bundles are byte-identical.
Last line: key=value pairs.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate_scale import generate, write_recipe  # noqa: E402

SERVICES = ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "dashboard", "log_monitor",
            "monitor.py", "ray_client_server", "runtime_env")


class TreeSampler:
    """Peaks of a process tree's memory, sampled every `every` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.5):
        import psutil

        self.root = psutil.Process(pid)
        self.every = every
        self.peak = {"driver_rss": 0, "workers_pss": 0, "services_pss": 0, "total_pss": 0}
        self.most_workers = 0
        self.driver_cpu = 0.0  # CPU seconds of the driver process (user + system), last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                driver = self.root.memory_full_info()
                times = self.root.cpu_times()
                self.driver_cpu = times.user + times.system
                children = self.root.children(recursive=True)
            except psutil.Error:
                break
            workers = services = 0
            count = 0
            for child in children:
                try:
                    title = " ".join(child.cmdline()) or child.name()
                    pss = child.memory_full_info().pss
                except psutil.Error:
                    continue
                if any(name in title for name in SERVICES):
                    services += pss
                else:
                    workers += pss
                    count += 1
            for key, value in (("driver_rss", driver.rss), ("workers_pss", workers), ("services_pss", services),
                               ("total_pss", driver.pss + workers + services)):
                self.peak[key] = max(self.peak[key], value)
            self.most_workers = max(self.most_workers, count)
            self._stop.wait(self.every)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {key: value / 2**20 for key, value in self.peak.items()}


def run_build(recipe: Path, output: Path, *extra: str) -> dict:
    """One `curate build` in a child process: seconds, memory peaks (MiB), stage times, the driver's
    CPU seconds over the prepare stage (from the log line that starts it to the one that ends it)
    and after it, and the version folder."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "curate", "build", str(recipe), "--output", str(output), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    driver = psutil.Process(proc.pid)
    marks: list[tuple[str, float]] = []  # (log line, driver CPU seconds when it was read)
    for line in proc.stderr:
        try:
            times = driver.cpu_times()
            marks.append((line.rstrip("\n"), times.user + times.system))
        except psutil.Error:
            marks.append((line.rstrip("\n"), sampler.driver_cpu))
    out = proc.stdout.read()
    proc.wait()
    seconds = time.perf_counter() - start
    peaks = sampler.stop()
    log = "\n".join(line for line, _ in marks)
    if proc.returncode:
        raise SystemExit(f"build {' '.join(extra)} failed:\n{log[-3000:]}")
    stages = dict(re.findall(r"^(\w[\w ]*?): \d+ records in ([\d.]+)s$", log, flags=re.M))
    begin = next((cpu for line, cpu in marks if "rows to read in" in line), 0.0)
    end = next((cpu for line, cpu in marks if line.startswith("prepare: ") and " records in " in line), 0.0)
    stage_cpu, previous = {}, begin
    for line, cpu in marks:
        finished = re.match(r"^(\w[\w ]*?): \d+ records in [\d.]+s$", line)
        if finished:
            stage_cpu[finished.group(1)] = cpu - previous
            previous = cpu
    return {"seconds": seconds, "peaks": peaks, "workers_seen": sampler.most_workers, "stages": stages,
            "stage_cpu": stage_cpu,
            "driver_cpu": sampler.driver_cpu, "prepare_cpu": end - begin, "after_cpu": sampler.driver_cpu - end,
            "version": Path(out.strip().splitlines()[-1])}


def digest(version: Path) -> dict[str, str]:
    return {name: hashlib.sha256((version / name).read_bytes()).hexdigest()
            for name in ("train.jsonl", "val.jsonl", "rejects.jsonl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--cpus", type=int, default=2, help="local pool workers and local Ray CPUs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-ray-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        generate(folder, args.n, args.seed)
        recipe = write_recipe(folder)
        print(f"generated {args.n} records in {time.perf_counter() - start:.1f}s", flush=True)
        runs = {"local": run_build(recipe, folder / "local", "--workers", str(args.cpus)),
                "ray": run_build(recipe, folder / "ray", "--engine", "ray", "--workers", str(args.cpus))}
        for name, run in runs.items():
            p = run["peaks"]
            stages = ", ".join(f"{stage} {seconds}s" for stage, seconds in run["stages"].items())
            print(f"{name:>5}: {run['seconds']:6.1f}s, {args.n / run['seconds']:8,.0f} records/s; peak driver RSS "
                  f"{p['driver_rss']:,.0f} MiB, workers PSS {p['workers_pss']:,.0f} MiB "
                  f"(up to {run['workers_seen']} processes), Ray services PSS {p['services_pss']:,.0f} MiB, "
                  f"whole tree PSS {p['total_pss']:,.0f} MiB; driver CPU {run['driver_cpu']:.0f}s "
                  f"({run['driver_cpu'] / args.n * 1e6:.0f} us/record)", flush=True)
            print(f"       stages: {stages}", flush=True)
            print(f"       driver CPU: {run['prepare_cpu']:.0f}s in prepare "
                  f"({run['prepare_cpu'] / args.n * 1e6:.1f} us/record), {run['after_cpu']:.0f}s after it; by stage "
                  + ", ".join(f"{stage} {cpu:.1f}s" for stage, cpu in run["stage_cpu"].items()), flush=True)
        identical = digest(runs["local"]["version"]) == digest(runs["ray"]["version"])
        print(f"bundles byte-identical (train, val, rejects): {identical}", flush=True)
    local, ray = runs["local"], runs["ray"]
    print(f"records={args.n} cpus={args.cpus} local_records_per_s={args.n / local['seconds']:.0f} "
          f"ray_records_per_s={args.n / ray['seconds']:.0f} "
          f"local_driver_rss_mib={local['peaks']['driver_rss']:.0f} local_workers_pss_mib={local['peaks']['workers_pss']:.0f} "
          f"ray_driver_rss_mib={ray['peaks']['driver_rss']:.0f} ray_workers_pss_mib={ray['peaks']['workers_pss']:.0f} "
          f"ray_services_pss_mib={ray['peaks']['services_pss']:.0f} "
          f"ray_driver_cpu_us_per_record={ray['driver_cpu'] / args.n * 1e6:.0f} "
          f"ray_driver_prepare_cpu_us_per_record={ray['prepare_cpu'] / args.n * 1e6:.1f} identical={identical}")
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
