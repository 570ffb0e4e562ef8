"""The training loop: epochs of distorted pairs, one-shot validation, early stopping.

One epoch = ``batches_per_epoch`` group batches, every pair among each batch's images
(``"loader": "groups"``, the small preset; see groups.py), or ``pairs_per_epoch``
independent pairs in minibatches (``"loader": "pairs"``, the paper's). After each
epoch the model answers ``val_trials`` within-alphabet 20-way validation trials (the
paper's early-stopping signal; 320 unless the config says otherwise); the best model so
far is kept as ``best.npz``. With ``optim.average`` set (the small preset: 0.9995), the
model validated and kept is a running average of the weights (``optim.WeightAverage``),
not the last ones. Every epoch also writes ``last.npz`` (model, optimiser, average and
progress), from which ``--resume`` continues exactly as if the run had never stopped.
A run folder holds:

    config.json     the resolved configuration
    metrics.jsonl   one JSON line per epoch
    best.npz        the best model by validation accuracy
    last.npz        the latest state, for resuming
    summary.json    the best epoch, the test accuracy of best.npz (unless test_trials is 0)
                    and the machine: cores and BLAS thread limits
"""
from __future__ import annotations

import json
import math
import os
import platform
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint, save_checkpoint, CheckpointError
from .files import atomic_write, remove_stale_temp_files
from .distort import check_distortion
from .groups import GroupLoader
from .losses import bce_with_logits, one_shot_softmax
from .model import SiameseNet, encoder_shapes
from .characters import check_mirror, check_rotations, skipped_note, with_mirrors, with_rotations
from .oneshot import evaluate
from .omniglot import load_paper_split
from .trials import within_alphabet_trials
from .optim import MomentumSGD, WeightAverage, average_decay, make_groups
from .pairs import PairLoader


class TrainingError(Exception):
    """A run that cannot start or cannot go on (the message says why and what to do)."""


class ResumeError(TrainingError):
    """A resume that the given options contradict (e.g. another preset): a usage error."""


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_accuracy: float
    test: dict | None
    stopped: str  # "epochs", "early-stop", "time-budget", "interrupted" or "diverged"


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rows (M, D) -> (first, which): rows[first] are the distinct rows in order of first
    appearance, and rows == rows[first][which]. Hashes each row's bytes: for image-sized
    rows this is ~50x faster than ``np.unique(rows, axis=0)``, which sorts them."""
    seen, first = {}, []
    which = np.empty(len(rows), dtype=np.intp)
    for i, row in enumerate(rows):
        which[i] = seen.setdefault(row.tobytes(), len(seen))
        if which[i] == len(first):
            first.append(i)
    return np.array(first, dtype=np.intp), which


def model_score(model: SiameseNet, batch_size: int = 512):
    """A ``score(x1, x2)`` function for :func:`oneshot.evaluate`: the model's logits.

    x1, x2: (M, 1, H, W) host float32 -> (M,) host float64.
    Each distinct image is encoded once, ``batch_size`` images per encoder call, and only
    the cheap join runs per pair: in one-shot trials a test image meets all N supports and
    N trials share one set of supports, so the 2M images of M pairs hold only about M/8
    distinct ones, and scoring trials costs a small fraction of encoding every pair.
    """
    backend = model.backend

    def score(x1, x2):
        m = x1.shape[0]
        flat = np.concatenate([x1, x2]).reshape(2 * m, -1)
        first, which = distinct_rows(flat)
        distinct = flat[first]
        which = backend.xp.asarray(which)  # integer indices, on the device
        h = backend.xp.concatenate([
            model.encode(backend.asarray(distinct[s:s + batch_size].reshape(-1, *x1.shape[1:])))
            for s in range(0, len(distinct), batch_size)])                 # (distinct, dense)
        z = model.join.forward(h[which[:m]], h[which[m:]])
        return backend.to_numpy(z).astype(np.float64)

    return score


def pair_step(model: SiameseNet, batch):
    """The paper's step on a batch of independent pairs (x1, x2, y) -> (loss, right, pairs).

    loss: the mean cross-entropy, right: the fraction of pairs on the right side of 0.5
    (both 0-d arrays, left on the device). Fills the model's grads.
    """
    x1, x2, y = batch
    z = model.forward_logits(x1, x2)
    loss, dz = bce_with_logits(z, y)
    model.backward_logits(dz)
    return loss, ((z > 0) == (y > 0.5)).mean(), y.shape[0]


def group_step(model: SiameseNet, batch, one_shot_weight: float = 0.0):
    """A step on every pair of a group batch (``groups.GroupLoader``) -> (loss, right, pairs).

    The loss is weighted: same pairs and different pairs count half each, and so does
    ``right`` (a balanced accuracy, comparable with :func:`pair_step`'s half-and-half
    batches). ``one_shot_weight`` > 0 adds that times the batch's one-shot softmax
    (``losses.one_shot_softmax``: each image picks its character's other drawings out of
    the other characters' images), and the gradients add alike.
    """
    x, first, second, same, weight = batch
    z = model.forward_pair_logits(x, first, second)
    loss, dz = bce_with_logits(z, same, weight)
    if one_shot_weight:
        extra, dz_extra = one_shot_softmax(z, first, second, same, x.shape[0])
        loss, dz = loss + one_shot_weight * extra, dz + one_shot_weight * dz_extra
    model.backward_pair_logits(dz)
    return loss, (weight * ((z > 0) == (same > 0.5))).sum(), same.shape[0]


def make_loader(cfg: dict, train_set, backend, seed: int):
    """The training batches a config asks for, and the step that trains on them.

    cfg["loader"]: "pairs" (the default: the paper's independent pairs, ``PairLoader``) or
    "groups" (every pair within group batches, ``GroupLoader``, set by cfg["group"] and
    cfg["batches_per_epoch"]). cfg["distort"] = {"p": 0.5, "strength": 1.0} (the paper's,
    the default): each distortion component's chance, and a factor on its range.
    """
    kind = check_loader(cfg)
    distort = {f"distort_{k}": v for k, v in cfg.get("distort", {}).items()}
    if kind == "pairs":
        return PairLoader(train_set, backend, batch_size=cfg["batch_size"],
                          pairs_per_epoch=cfg["pairs_per_epoch"],
                          distort=cfg.get("distortions", 0) == 0,
                          distortions=cfg.get("distortions", 0),
                          hard_negative_fraction=cfg.get("hard_negative_fraction", 0.0),
                          **distort, seed=seed), pair_step
    group = dict(cfg.get("group", {}))
    one_shot_weight = group.pop("one_shot_weight", 0.0)
    step = partial(group_step, one_shot_weight=one_shot_weight) if one_shot_weight else group_step
    return GroupLoader(train_set, backend, **group,
                       batches_per_epoch=cfg.get("batches_per_epoch", 720),
                       **distort, seed=seed), step


def check_loader(cfg: dict) -> str:
    """The config's loader kind, "pairs" or "groups"; ValueError if its settings are wrong
    (the checks that need no data, so that a typo fails before anything is loaded)."""
    kind = cfg.get("loader", "pairs")
    if kind not in ("pairs", "groups"):
        raise ValueError(f'loader must be "pairs" or "groups", not {kind!r}')
    group = cfg.get("group", {})
    if not isinstance(group, dict):
        raise ValueError(f"group must be a JSON object such as {{\"alphabets\": 4}}, not {group!r}")
    unknown = set(group) - {"alphabets", "characters", "drawers", "same_weight", "hard_weight",
                            "one_shot_weight"}
    if unknown:
        raise ValueError(f"group has unknown keys {sorted(unknown)}: it takes alphabets, "
                         "characters, drawers, same_weight, hard_weight and one_shot_weight")
    one_shot = group.get("one_shot_weight", 0.0)
    if (isinstance(one_shot, bool) or not isinstance(one_shot, (int, float))
            or not 0 <= one_shot < math.inf):
        raise ValueError(f"group one_shot_weight must be a number from 0 (off) up, such as 1.0, "
                         f"not {one_shot!r}")
    for key in ("same_weight", "hard_weight"):
        share = group.get(key)
        if key in group and (isinstance(share, bool) or not isinstance(share, (int, float))
                             or not 0 < share < 1):
            raise ValueError(f"group {key} must lie strictly between 0 and 1, not {share!r}")
    distort = cfg.get("distort", {})
    if not isinstance(distort, dict) or set(distort) - {"p", "strength"}:
        raise ValueError(f'distort must be a JSON object with keys p and strength, such as '
                         f'{{"p": 0.5, "strength": 1.0}} (the paper\'s), not {distort!r}')
    check_distortion(distort.get("p", 0.5), distort.get("strength", 1.0))
    if kind == "groups" and cfg.get("distortions", 0):
        raise ValueError("distortions = k (k distorted copies of each pair) is the pairs "
                         "loader's scheme; group batches distort every image afresh: leave "
                         "distortions at 0")
    return kind


def images_per_pair(loader) -> float:
    """Images encoded per pair trained on: 2 for independent pairs, far fewer in groups."""
    if isinstance(loader, GroupLoader):
        return loader.batch_size / loader.pairs_per_batch
    return 2.0


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the system.

    A training step allocates its large activations afresh (hundreds of MB for the paper's
    net); glibc hands blocks over 32 MB back to the kernel on free, and touching fresh pages
    again costs more than the arithmetic on some machines (scripts/bench.py --tune-malloc:
    koch at batch 128 went from 8 to 12.5 pairs/s). Linux/glibc only; elsewhere a no-op.
    Returns whether the setting took.
    """
    import ctypes
    import ctypes.util

    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # mallopt takes a C int: 2**31 - 1 bytes (2 GB) is the largest trim threshold.
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError, TypeError):
        return False


def check_writable(out_dir: Path) -> None:
    """Fail now, not after an hour, if the run folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(f"cannot write to the run folder {out_dir} ({exc.strerror or exc}); "
                            "choose another with --out") from None


def resume_command(out_dir, data_root) -> str:
    """The command line that continues a run: the run folder keeps its settings, not where
    its data lives, so the data folder is part of the command."""
    return (f"tinysiamese train --resume {shlex.quote(str(out_dir))} "
            f"--data {shlex.quote(str(data_root))}")


def _write_error(path: Path, out_dir: Path, exc: OSError, data_root) -> TrainingError:
    """A failed write (a full disk, a lost mount) -> one line: what is kept, what to do."""
    last = out_dir / "last.npz"
    then = (f"resume with: {resume_command(out_dir, data_root)}" if last.is_file()
            else "start the run again")
    return TrainingError(f"cannot write {path} ({exc.strerror or exc}); the checkpoints already "
                         f"in {out_dir} are kept intact. Free some space, then {then}")


class _StopFlag:
    """Ctrl-C sets a flag; the loop finishes its step, saves and exits cleanly."""

    def __init__(self):
        self.raised = False
        self._old = None

    def __enter__(self):
        def handler(signum, frame):
            if self.raised:  # a second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self.raised = True

        try:
            self._old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _host(d: dict, backend) -> dict:
    return {k: backend.to_numpy(v) for k, v in d.items()}


@dataclass
class ResumePoint:
    """Where a run goes on from: a fresh run starts at epoch 0, batch 0, with no best yet."""

    seed: int
    epoch: int = 0
    batch: int = 0
    partial: dict = field(default_factory=lambda: {"loss_sum": 0.0, "right_sum": 0.0, "seen": 0})
    best_acc: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0


def resume_point(ckpt, cfg: dict, out_dir: Path) -> tuple[dict, ResumePoint]:
    """The saved run's config (with a new "epochs" if given) and where it stopped."""
    saved = ckpt.config
    if saved.get("preset") != cfg.get("preset") and cfg.get("preset_given"):
        raise ResumeError(f"{out_dir}/last.npz was trained with preset "
                          f"{saved.get('preset')!r}, not {cfg.get('preset')!r}: drop "
                          "--preset when resuming, or start a new run with --out")
    # Without a new "epochs" the run goes on to the number it was started with.
    cfg = dict(saved, epochs=cfg.get("epochs", saved.get("epochs")))
    m = ckpt.meta
    try:
        point = ResumePoint(m["seed"], m["epoch"], m.get("batch", 0),
                            m.get("partial", ResumePoint(0).partial), m["best_val_accuracy"],
                            m["best_epoch"], m["bad_epochs"])
    except KeyError as exc:
        raise TrainingError(f"{out_dir}/last.npz holds no training progress ({exc} is "
                            "missing; a weights-only file?): it cannot be resumed; start a "
                            "new run with --out") from None
    return cfg, point


def restore(model: SiameseNet, opt: MomentumSGD, ckpt, epoch: int, out_dir: Path,
            average: WeightAverage | None = None, averaged: SiameseNet | None = None) -> None:
    """Put a checkpoint's weights and velocities back into ``model`` and ``opt``, and its
    weight average into ``averaged`` (the model whose arrays ``average`` keeps)."""
    try:
        model.load_params(ckpt.params)
    except ValueError as exc:
        raise TrainingError(f"{out_dir}/last.npz does not fit its config: {exc}") from None
    wrong = sorted(k for k, v in opt.velocities.items()
                   if k not in ckpt.velocities or ckpt.velocities[k].shape != v.shape)
    if wrong or len(ckpt.velocities) != len(opt.velocities):
        raise TrainingError(f"{out_dir}/last.npz: its optimiser state does not fit its "
                            f"config (e.g. {wrong[:3]}); start a new run with --out")
    for k, v in ckpt.velocities.items():
        opt.velocities[k][...] = model.backend.asarray(v)
    opt.epoch = epoch
    if average is not None:
        try:
            averaged.load_params(ckpt.averages)
        except ValueError as exc:
            raise TrainingError(f"{out_dir}/last.npz: its weight average does not fit its "
                                f"config ({exc}); start a new run with --out") from None
        average.steps = int(ckpt.meta.get("average_steps", 0))


def train(cfg: dict, *, data_root, backend, out_dir, seed: int = 0, resume: bool = False,
          log=print, progress=None, max_steps: int | None = None,
          on_bad_image: str = "error") -> TrainResult:
    """Train a SiameseNet as ``cfg`` says; write everything to ``out_dir``.

    cfg: a resolved preset config (``model.preset_config``) plus "epochs", "patience",
         "distortions", "val_trials", "test_trials" and "time_budget_minutes" (stop before
         an epoch that would end past it; the budget counts this session only).
    resume: continue from ``out_dir/last.npz`` (its config and seed win over the arguments).
    progress: a callable(str) for the in-epoch progress line (None: no progress line).
    max_steps: stop (as if interrupted) after this many steps; for tests of resuming.
    on_bad_image: "error" or "skip" unreadable Omniglot images (see ``omniglot.load_split``).
    """
    out_dir = Path(out_dir)
    check_writable(out_dir)
    remove_stale_temp_files(out_dir)  # left by a run killed while it saved
    ckpt, start = None, ResumePoint(seed)
    if resume:
        ckpt = load_checkpoint(out_dir / "last.npz")
        cfg, start = resume_point(ckpt, cfg, out_dir)
        if start.epoch >= cfg["epochs"]:
            log(f"{out_dir} has already trained {start.epoch} of {cfg['epochs']} epochs; "
                f"to go on, give --epochs with more than {start.epoch}")
    seed, start_epoch, start_batch, partial = start.seed, start.epoch, start.batch, start.partial
    best_acc, best_epoch, bad_epochs = start.best_acc, start.best_epoch, start.bad_epochs
    encoder_shapes(cfg)
    check_rotations(cfg.get("rotations", 1))  # before anything is written or loaded
    check_mirror(cfg.get("mirror", False))
    check_loader(cfg)
    beta = average_decay(cfg["optim"])
    try:
        atomic_write(out_dir / "config.json",
                     lambda f: f.write(json.dumps({**cfg, "seed": seed}, indent=2).encode()))
    except OSError as exc:
        raise _write_error(out_dir / "config.json", out_dir, exc, data_root) from None

    size = cfg["image_size"]
    log(f"loading Omniglot at {size}x{size} ...")
    train_set = load_paper_split(data_root, "train", size, on_bad_image=on_bad_image)
    train_set = with_mirrors(with_rotations(train_set, cfg.get("rotations", 1)),
                             cfg.get("mirror", False))
    val_set = load_paper_split(data_root, "val", size, on_bad_image=on_bad_image)
    for note in filter(None, map(skipped_note, (train_set, val_set))):
        log(note)
    val_trials = within_alphabet_trials(val_set, n_way=20, n_trials=cfg.get("val_trials", 320),
                                        seed=seed + 1)

    model = SiameseNet(cfg, backend=backend, rng=np.random.default_rng(seed))
    layer_names = [n for n, _ in model.named_layers()]
    opt = MomentumSGD(model.params(), model.grads(), make_groups(layer_names, cfg["optim"]),
                      lr_decay=cfg["optim"].get("lr_decay", 0.99),
                      momentum_epochs=int(cfg["optim"].get("momentum_epochs", 10)))
    # judged: the weights that are validated and kept as best.npz; with optim.average, a
    # second model whose arrays hold the running average of the trained ones.
    judged, average = model, None
    if beta:
        judged = SiameseNet(cfg, backend=backend, rng=np.random.default_rng(seed))
        judged.load_params(_host(model.params(), backend))
        average = WeightAverage(model.params(), beta, averages=judged.params())
    if ckpt is not None:
        restore(model, opt, ckpt, start_epoch, out_dir, average, judged)
    log(f"model: preset {cfg['preset']}, {model.n_params():,} parameters, "
        f"input {size}x{size}, backend {backend.name}")

    loader, step = make_loader(cfg, train_set, backend, seed)
    metrics_path = out_dir / "metrics.jsonl"
    stopped, steps_done = "epochs", 0

    def save(name, epoch, batch=0, partial=None):
        # (epoch, batch): where training goes on; partial: the unfinished epoch's sums.
        meta = {"config": cfg, "seed": seed, "epoch": epoch, "batch": batch,
                "partial": partial or {"loss_sum": 0.0, "right_sum": 0.0, "seen": 0},
                "best_val_accuracy": best_acc, "best_epoch": best_epoch,
                "bad_epochs": bad_epochs}
        best = name == "best.npz"  # the judged weights; last.npz: the trained ones and all state
        if average is not None:
            meta["average_steps"] = average.steps
        averages = None if best or average is None else _host(average.averages, backend)
        try:
            save_checkpoint(out_dir / name, _host((judged if best else model).params(), backend),
                            meta, _host(opt.velocities, backend), averages=averages)
        except OSError as exc:  # atomic: the previous file is still there, whole
            loader.close()
            raise _write_error(out_dir / name, out_dir, exc, data_root) from None

    run_start = time.perf_counter()
    # A diverging loss is caught and reported below in one line; NumPy's overflow warnings
    # would only bury it.
    with _StopFlag() as stop, np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(start_epoch, cfg["epochs"]):
            t0 = time.perf_counter()
            loader.wait_seconds = 0.0
            xp = backend.xp
            loss_sum, right_sum = xp.asarray(partial["loss_sum"]), xp.asarray(partial["right_sum"])
            seen, n_batches = partial["seen"], start_batch
            for batch in loader.iter_epoch(epoch, start_batch):
                loss, right, n_pairs = step(model, batch)
                opt.step()
                if average is not None:
                    average.update()
                loss_sum += loss * n_pairs
                right_sum += right * n_pairs
                seen += n_pairs
                n_batches += 1
                steps_done += 1
                if n_batches % 20 == 0 or stop.raised:
                    running = float(loss_sum) / seen  # the one host sync per log interval
                    if not math.isfinite(running):
                        break
                    if progress:
                        rate = seen / (time.perf_counter() - t0)
                        progress(f"epoch {epoch + 1}: batch {n_batches}/{len(loader)}, "
                                 f"{rate:.0f} pairs/s, loss {running:.4f}")
                if stop.raised or (max_steps is not None and steps_done >= max_steps):
                    break
            train_loss = float(loss_sum) / max(seen, 1)
            if not math.isfinite(train_loss):
                stopped = "diverged"
                kept = (f"The last good checkpoint is kept: {out_dir / 'last.npz'}"
                        if (out_dir / "last.npz").is_file() else "No checkpoint was saved")
                log(f"epoch {epoch + 1}: the loss became {train_loss} (diverged); stopping. "
                    f"{kept}. Lower the learning rate (optim.lr in a --config file) and "
                    "start again.")
                break
            if stop.raised or (max_steps is not None and steps_done >= max_steps):
                stopped = "interrupted"
                save("last.npz", epoch, n_batches, {"loss_sum": float(loss_sum),
                                                    "right_sum": float(right_sum), "seen": seen})
                log(f"interrupted in epoch {epoch + 1} after batch {n_batches}; saved "
                    f"{out_dir / 'last.npz'}. Resume with: {resume_command(out_dir, data_root)}")
                break
            start_batch, partial = 0, {"loss_sum": 0.0, "right_sum": 0.0, "seen": 0}
            seconds = time.perf_counter() - t0
            opt.end_epoch()
            val = evaluate(model_score(judged), val_trials)
            improved = val.accuracy > best_acc
            if improved:
                best_acc, best_epoch, bad_epochs = val.accuracy, epoch + 1, 0
                save("best.npz", epoch + 1)
            else:
                bad_epochs += 1
            save("last.npz", epoch + 1)
            lr, mu, _ = opt.hyper(layer_names[0])
            record = {"epoch": epoch + 1, "loss": train_loss, "train_accuracy": float(right_sum) / seen,
                      "val_accuracy": val.accuracy, "lr": {n: opt.hyper(n)[0] for n in layer_names},
                      "momentum": mu, "seconds": seconds, "pairs_per_s": seen / seconds,
                      "images_per_s": images_per_pair(loader) * seen / seconds,
                      "data_wait_fraction": loader.wait_seconds / seconds,
                      "eval_seconds": time.perf_counter() - t0 - seconds}
            try:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as exc:
                loader.close()
                raise _write_error(metrics_path, out_dir, exc, data_root) from None
            log(f"epoch {epoch + 1:3d}  loss {train_loss:.4f}  train acc {record['train_accuracy']:.3f}  "
                f"val 20-way {val.accuracy:.3f}{' *' if improved else '  '}  "
                f"{record['pairs_per_s']:.0f} pairs/s ({record['images_per_s']:.0f} images/s)  "
                f"lr {lr:.4g}  mom {mu:.2f}  "
                f"data wait {100 * record['data_wait_fraction']:.1f}%")
            if bad_epochs >= cfg.get("patience", 20):
                stopped = "early-stop"
                log(f"no improvement for {bad_epochs} epochs: stopping early")
                break
            budget = cfg.get("time_budget_minutes")
            elapsed = time.perf_counter() - run_start
            if budget and elapsed + (time.perf_counter() - t0) > 60 * budget:
                stopped = "time-budget"  # the next epoch would end past the budget
                log(f"time budget of {budget} minutes reached ({elapsed / 60:.1f} min): stopping")
                break
    loader.close()

    test = None
    if best_epoch > 0 and stopped != "interrupted":
        if cfg.get("test_trials", 400):
            test = evaluate_checkpoint(out_dir / "best.npz", data_root, backend,
                                       n_trials=cfg.get("test_trials", 400), seed=0,
                                       on_bad_image=on_bad_image).to_dict()
            log(f"best model (epoch {best_epoch}, val {best_acc:.3f}): 20-way one-shot accuracy "
                f"on {test['trials']} test trials {100 * test['accuracy']:.1f}% "
                f"(95% CI {100 * test['ci95'][0]:.1f}-{100 * test['ci95'][1]:.1f}%)")
        try:
            atomic_write(out_dir / "summary.json", lambda f: f.write(json.dumps(
                {"best_epoch": best_epoch, "best_val_accuracy": best_acc, "test": test,
                 "stopped": stopped, "machine": machine_summary()}, indent=2).encode()))
        except OSError as exc:
            raise _write_error(out_dir / "summary.json", out_dir, exc, data_root) from None
    return TrainResult(out_dir, best_epoch, best_acc, test, stopped)


THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def machine_summary() -> dict:
    """What the speed of a run depends on besides the code: cores, and the BLAS thread limits
    set in the environment (None where unset: the library then uses every core)."""
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            **{name: os.environ.get(name) for name in THREAD_VARIABLES}}


def evaluate_checkpoint(path, data_root, backend, split="test", n_way=20, n_trials=400, seed=0,
                        on_bad_image="error"):
    """One-shot accuracy of a saved model on the paper's ``split`` ("test" or "val")."""
    from .checkpoint import model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(path), backend)
    subset = load_paper_split(data_root, split, model.cfg["image_size"], on_bad_image=on_bad_image)
    trials = within_alphabet_trials(subset, n_way=n_way, n_trials=n_trials, seed=seed)
    return evaluate(model_score(model), trials)
