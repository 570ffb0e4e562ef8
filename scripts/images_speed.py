#!/usr/bin/env python
"""How long classify and cluster take on real folders, and how much memory they need.

    python scripts/images_speed.py --data ../shared/data/omniglot

Lays out Omniglot evaluation images as a user would (PNG files copied out of the archive):
``--supports`` characters' first drawings as a support folder, ``--queries`` other drawings
as queries, and the first ``--cluster-images`` images as a folder of character folders; then
runs ``tinysiamese classify`` and ``tinysiamese cluster`` (K estimated) on them as separate
processes, timing each (wall clock, the whole command: reading, encoding, scoring, writing)
and reading its peak memory (the child's maximum resident set size). Prints a markdown table
with the machine's core count and load average, since other work on the machine slows it.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def lay_out(archive: Path, root: Path, supports: int, queries: int, n_cluster: int) -> dict:
    """Write support/ (the first drawing of ``supports`` characters), query/ (their other
    drawings, then other characters' until ``queries``) and cluster/ (the first ``n_cluster``
    images, one folder per character) below ``root`` -> their paths."""
    with zipfile.ZipFile(archive) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        chosen = set(sorted({tuple(n.split("/")[-3:-1]) for n in names})[:supports])
        first = [n for n in names if tuple(n.split("/")[-3:-1]) in chosen]
        rest = [n for n in names if tuple(n.split("/")[-3:-1]) not in chosen]
        picked = [n for n in first if not n.endswith("_01.png")] + rest
        out = [(root / "support" / ("-".join(n.split("/")[-3:-1]) + ".png"), n)
               for n in first if n.endswith("_01.png")]
        out += [(root / "query" / n.split("/")[-1], n) for n in picked[:queries]]
        out += [(root / "cluster" / Path(*n.split("/")[-3:]), n) for n in names[:n_cluster]]
        for path, n in out:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(n))
    return {"support": root / "support", "query": root / "query", "cluster": root / "cluster"}


def timed(args: list[str]) -> tuple[float, float]:
    """Run ``python -m tinysiamese ARGS`` -> (wall seconds, peak memory in GB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tinysiamese", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tinysiamese {' '.join(args)} failed: {proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 2**20  # kB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="Omniglot folder (the zips)")
    ap.add_argument("--supports", type=int, default=20)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--cluster-images", type=int, default=5000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = lay_out(args.data / "images_evaluation.zip", Path(tmp), args.supports,
                        args.queries, args.cluster_images)
        load = os.getloadavg()[0]
        rows = []
        for views in (1, 8):
            s, gb = timed(["classify", paths["support"], paths["query"], "--views", str(views),
                           "--json"])
            rows.append((f"classify: {args.queries:,} queries against {args.supports} supports, "
                         f"{views} view(s)", s, gb))
        s, gb = timed(["cluster", paths["cluster"], "--out", str(Path(tmp) / "out")])
        rows.append((f"cluster: {args.cluster_images:,} images, K estimated, 1 view", s, gb))
    print(f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} at the start; "
          f"NumPy backend, the shipped model\n")
    print("| command | wall clock | peak memory |\n| --- | ---: | ---: |")
    for what, s, gb in rows:
        print(f"| {what} | {s:.1f} s | {gb:.2f} GB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
