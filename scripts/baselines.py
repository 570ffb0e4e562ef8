"""Measure the two learning-free baselines and write the table to docs/baselines.md.

    python scripts/baselines.py --data ../shared/data

Omniglot: 400 within-alphabet 20-way trials from the paper's test set (10 alphabets,
drawers 17-20), seed 0. MNIST: 400 10-way trials from the t10k set, seed 0. Each at the
paper's 105x105 and at the small 35x35 (a box-filtered third).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinysiamese import baselines, mnist, omniglot, oneshot
from tinysiamese.trials import Trials, within_alphabet_trials

SCORES = (("1-NN (pixels)", baselines.nn_score), ("modified Hausdorff", baselines.hausdorff_score))
PAPER_ROWS = (
    ("Omniglot 20-way within-alphabet", "1-NN (pixels)", "21.7%",
     "Koch et al. 2015, Omniglot one-shot table (from Lake et al.)"),
    ("MNIST 10-way", "1-NN (pixels)", "26.5%", "Koch et al. 2015, MNIST one-shot table"),
    ("Lake's 20 runs", "modified Hausdorff", "61.2%",
     "Lake's demo_classification.py (38.8% error)"),
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs visible, "
            f"{platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}")


def measure(task: str, size: int, trials: Trials) -> list[dict]:
    rows = []
    for name, score in SCORES:
        start = time.perf_counter()
        result = oneshot.evaluate(score, trials)
        seconds = time.perf_counter() - start
        rows.append({"task": task, "size": size, "baseline": name, "result": result,
                     "seconds": seconds})
        low, high = result.ci95
        print(f"{task:34s} {size:3d}px  {name:20s} {100 * result.accuracy:5.1f}% "
              f"[{100 * low:.1f}, {100 * high:.1f}]  {seconds:5.1f} s", file=sys.stderr)
    return rows


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="folder holding omniglot/ and mnist/ [default: ../shared/data]")
    parser.add_argument("--sizes", type=int, nargs="+", default=[105, 35],
                        help="image sides to measure at")
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None, help="Omniglot array cache")
    parser.add_argument("--out", type=Path, default=Path("docs/baselines.md"))
    args = parser.parse_args()

    root = omniglot.find_data_root(args.data / "omniglot")
    digits, labels = mnist.load_mnist(args.data / "mnist")
    rows = []
    for size in args.sizes:
        test = omniglot.load_paper_split(root, "test", size, cache_dir=args.cache_dir)
        trials = within_alphabet_trials(test, n_way=20, n_trials=args.trials,
                                                seed=args.seed)
        rows += measure("Omniglot 20-way within-alphabet", size, trials)
        del trials  # 400 x 20 supports at 105 px is 350 MB
        trials = mnist.mnist_trials(digits, labels, n_trials=args.trials, seed=args.seed, size=size)
        rows += measure("MNIST 10-way", size, trials)
        del trials

    command = "python " + " ".join(shlex.quote(a) for a in ["scripts/baselines.py", *sys.argv[1:]])
    lines = [
        "# Baselines without learning",
        "",
        "One-shot accuracy of two scorers that learn nothing, measured by the same evaluator",
        "(`tinysiamese.oneshot.evaluate`) that measures the siamese net. 95% intervals are",
        "Wilson score intervals over the trials.",
        "",
        f"- Omniglot: {args.trials} within-alphabet 20-way trials from the paper's test set "
        f"(10 alphabets, drawers 17-20), seed {args.seed}.",
        f"- MNIST: {args.trials} 10-way trials from the t10k set, seed {args.seed}; digits resized "
        "bilinearly (up) or by area (down).",
        "- 1-NN: minus the Euclidean distance between raw pixel vectors (strokes = 1).",
        "- Modified Hausdorff: Lake's baseline, between the sets of ink pixels (> 0.5), each",
        "  centred on its centroid as in his demo code.",
        "",
        "| task | image | baseline | accuracy | 95% CI | seconds |",
        "| --- | --- | --- | ---: | --- | ---: |",
    ]
    for r in rows:
        low, high = r["result"].ci95
        lines.append(f"| {r['task']} | {r['size']}x{r['size']} | {r['baseline']} | "
                     f"{100 * r['result'].accuracy:.1f}% | {100 * low:.1f}-{100 * high:.1f}% | "
                     f"{r['seconds']:.1f} |")
    lines += [
        "",
        "Reference numbers from the literature (other trial draws, so compare with the intervals):",
        "",
        "| task | baseline | accuracy | source |",
        "| --- | --- | ---: | --- |",
        *(f"| {task} | {name} | {acc} | {source} |" for task, name, acc, source in PAPER_ROWS),
        "",
        "Notes. Omniglot 1-NN lands a little below the paper's 21.7% (which comes from Lake et",
        "al.'s own trials, not these). MNIST 1-NN is far above the paper's 26.5%: a separate",
        "check with plain 28x28 pixels and 2,000 trials gives 41%, so the gap is the protocol",
        "(which the paper does not spell out), not the resizing. Lake's runs (`all_runs.zip`)",
        "are not in the shared data, so the Hausdorff row for them is not re-measured here;",
        "`tinysiamese eval --baseline hausdorff --runs all_runs.zip` measures it.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.date.today().isoformat()}",
        "",
    ]
    text = "\n".join(lines)
    write_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
