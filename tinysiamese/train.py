"""The training loop: epochs of distorted pairs, one-shot validation, early stopping.

One epoch = ``loader.batches_per_epoch`` group batches, every pair among each batch's
images (``loader.kind = "groups"``, the small preset; see groups.py), or
``loader.pairs_per_epoch`` independent pairs in minibatches (``"pairs"``, the paper's).
After each epoch the model answers ``run.val_trials`` within-alphabet N-way validation
trials (the paper's early-stopping signal); the best model so far is kept as best.npz.
With ``optim.average`` set, the model validated and kept is a running average of the
weights (``optim.WeightAverage``), not the last ones. Every epoch also writes last.npz,
from which ``resume`` goes on exactly as if the run had never stopped. The files are the
run folder's (runfolder.py).
"""
from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from .characters import skipped_note, with_mirrors, with_rotations
from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import Config
from .model import SiameseNet
from .omniglot import load_paper_split
from .oneshot import evaluate, model_score
from .optim import MomentumSGD, WeightAverage, make_groups
from .runfolder import Progress, RunFolder, TrainingError
from .steps import images_per_pair, make_loader
from .trials import within_alphabet_trials


@dataclass
class TrainingData:
    """The character sets a run learns from: train, val (its N-way trials each epoch) and,
    optionally, test (best.npz's score at the end). ``notes``: lines to log (skipped images,
    how a folder was split); ``source``: what the data is, kept in the checkpoints so that a
    run resumes on the data it began with."""

    train: object
    val: object
    test: object = None
    n_way: int = 20
    notes: tuple = ()
    source: dict = field(default_factory=lambda: {"kind": "omniglot"})


def omniglot_data(root, size: int, with_test: bool = True, on_bad_image: str = "error"):
    """The paper's Omniglot splits at ``size`` px as TrainingData (see omniglot.PAPER_SPLITS)."""
    sets = [load_paper_split(root, which, size, on_bad_image=on_bad_image)
            for which in ("train", "val", "test")[:3 if with_test else 2]]
    notes = tuple(filter(None, map(skipped_note, sets)))
    return TrainingData(*sets, notes=notes)


@dataclass
class TrainResult:
    run_dir: object
    best_epoch: int
    best_val_accuracy: float
    test: dict | None
    stopped: str  # "epochs", "early-stop", "time-budget", "interrupted" or "diverged"


class _StopFlag:
    """When to stop inside an epoch: Ctrl-C sets a flag, and the loop finishes its step,
    saves and exits cleanly; ``max_steps`` (for tests of resuming) stops it alike."""

    def __init__(self, max_steps: int | None = None):
        self.raised = False
        self.steps_left = max_steps
        self._old = None

    def tick(self) -> None:
        if self.steps_left is not None:
            self.steps_left -= 1

    @property
    def now(self) -> bool:
        return self.raised or self.steps_left == 0

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


class Learner:
    """What a run trains and keeps: the model, its optimiser, and (with ``optim.average``)
    ``judged``, a second model whose arrays hold the running average of the weights; the
    judged weights are the ones validated and kept as best.npz."""

    def __init__(self, cfg: Config, backend):
        seed, self.cfg, self.backend = cfg.run.seed, cfg, backend
        self.model = SiameseNet(cfg.network, backend=backend, rng=np.random.default_rng(seed))
        self.layer_names = [n for n, _ in self.model.named_layers()]
        self.opt = MomentumSGD(self.model.params(), self.model.grads(),
                               make_groups(self.layer_names, cfg.optim),
                               lr_decay=cfg.optim.lr_decay,
                               momentum_epochs=cfg.optim.momentum_epochs,
                               workers=backend.workers)
        self.judged, self.average = self.model, None
        if cfg.optim.average:
            self.judged = SiameseNet(cfg.network, backend=backend, rng=np.random.default_rng(seed))
            self.judged.load_params(_host(self.model.params(), backend))
            self.average = WeightAverage(self.model.params(), cfg.optim.average,
                                         averages=self.judged.params(), workers=backend.workers)

    def restore(self, ckpt, progress: Progress, where) -> None:
        """Put last.npz's weights, velocities and weight average back."""
        try:
            self.model.load_params(ckpt.params)
        except ValueError as exc:
            raise TrainingError(f"{where} does not fit its config: {exc}") from None
        velocities = self.opt.velocities
        wrong = sorted(k for k, v in velocities.items()
                       if k not in ckpt.velocities or ckpt.velocities[k].shape != v.shape)
        if wrong or len(ckpt.velocities) != len(velocities):
            raise TrainingError(f"{where}: its optimiser state does not fit its config (e.g. "
                                f"{wrong[:3]}); start a new run with --out")
        for k, v in ckpt.velocities.items():
            velocities[k][...] = self.backend.asarray(v)
        self.opt.epoch = progress.epoch
        if self.average is not None:
            try:
                self.judged.load_params(ckpt.averages)
            except ValueError as exc:
                raise TrainingError(f"{where}: its weight average does not fit its config "
                                    f"({exc}); start a new run with --out") from None
            self.average.steps = progress.average_steps

    def save(self, folder: RunFolder, name: str, progress: Progress) -> None:
        """best.npz: the judged weights; last.npz: the trained ones and all the state."""
        if self.average is not None:
            progress.average_steps = self.average.steps
        best = name == "best.npz"
        averages = None if best or self.average is None else _host(self.average.averages,
                                                                   self.backend)
        folder.save(name, _host((self.judged if best else self.model).params(), self.backend),
                    progress.meta(self.cfg), _host(self.opt.velocities, self.backend), averages)


def run_epoch(learner: Learner, loader, step, epoch: int, progress: Progress, stop: _StopFlag,
              show=None) -> tuple[float, float, int, bool]:
    """Train one epoch from ``progress``'s batch on -> (loss, accuracy, pairs, finished).

    The sums stay on the device; the one host sync per 20 batches checks for divergence and
    feeds the progress line ``show``. ``finished`` is False when stopped inside the epoch
    (Ctrl-C, ``max_steps``, a loss that is no longer finite), with ``progress`` left where
    it stopped so that last.npz can say where to go on.
    """
    xp, t0 = learner.backend.xp, time.perf_counter()
    loss_sum, right_sum = xp.asarray(progress.partial["loss_sum"]), xp.asarray(progress.partial["right_sum"])
    seen, n_batches = progress.partial["seen"], progress.batch
    for batch in loader.iter_epoch(epoch, progress.batch):
        loss, right, n_pairs = step(learner.model, batch)
        learner.opt.step()
        if learner.average is not None:
            learner.average.update()
        loss_sum += loss * n_pairs
        right_sum += right * n_pairs
        seen += n_pairs
        n_batches += 1
        stop.tick()
        if n_batches % 20 == 0 or stop.now:
            running = float(loss_sum) / seen
            if not math.isfinite(running):
                break
            if show:
                show(f"epoch {epoch + 1}: batch {n_batches}/{len(loader)}, "
                     f"{seen / (time.perf_counter() - t0):.0f} pairs/s, loss {running:.4f}")
        if stop.now:
            break
    loss, finished = float(loss_sum) / max(seen, 1), n_batches == len(loader)
    progress.batch, progress.partial = n_batches, {"loss_sum": float(loss_sum),
                                                   "right_sum": float(right_sum), "seen": seen}
    return loss, float(right_sum) / max(seen, 1), seen, finished and not stop.now


def validate(learner: Learner, trials) -> float:
    """The judged weights' accuracy on the validation trials."""
    return evaluate(model_score(learner.judged), trials).accuracy


def train(cfg: Config, data: TrainingData, backend, folder: RunFolder, *, resume: bool = False,
          overwrite: bool = False, log=print, progress=None,
          max_steps: int | None = None) -> TrainResult:
    """Train a SiameseNet as ``cfg`` says on ``data``; write everything to ``folder``.

    resume: go on from ``folder``'s last.npz (its config, seed and progress win; only
    ``cfg.run.epochs`` is taken from ``cfg``); else the folder must hold no run, unless
    ``overwrite``. The folder's lock is held throughout. progress: a callable(str) for the
    in-epoch progress line. max_steps: stop (as if interrupted) after so many steps.
    """
    folder.open(resume=resume, overwrite=overwrite)
    try:
        return _train(cfg, data, backend, folder, resume, log, progress, max_steps)
    finally:
        folder.close()


def _train(cfg, data, backend, folder, resume, log, progress, max_steps) -> TrainResult:
    point, ckpt = Progress(data=data.source), None
    if resume:
        cfg, point, ckpt = folder.resume(cfg.run.epochs)
        folder.check_same_data(point, data.source)
        folder.agree_with_last(point.epoch, log)
        if point.epoch >= cfg.run.epochs:
            log(f"{folder.path} has already trained {point.epoch} of {cfg.run.epochs} epochs; "
                f"to go on, give --epochs with more than {point.epoch}")
    train_set = with_mirrors(with_rotations(data.train, cfg.loader.rotations), cfg.loader.mirror)
    for note in data.notes:
        log(note)
    val_trials = within_alphabet_trials(data.val, n_way=data.n_way, n_trials=cfg.run.val_trials,
                                        seed=cfg.run.seed + 1)
    learner = Learner(cfg, backend)
    if ckpt is not None:
        learner.restore(ckpt, point, folder / "last.npz")
    size = cfg.network.image_size
    log(f"model: preset {cfg.preset}, {learner.model.n_params():,} parameters, "
        f"input {size}x{size}, backend {backend.name}")
    loader, step = make_loader(cfg, train_set, backend)  # checks the groups against the data
    folder.write_config(cfg)  # the first write: a run that cannot start leaves nothing
    stopped, run_start = "epochs", time.perf_counter()
    # A diverging loss is caught and reported in one line; NumPy's overflow warnings would
    # only bury it.
    with _StopFlag(max_steps) as stop, np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(point.epoch, cfg.run.epochs):
                t0, loader.wait_seconds = time.perf_counter(), 0.0
                loss, accuracy, seen, finished = run_epoch(learner, loader, step, epoch, point,
                                                           stop, progress)
                if not math.isfinite(loss):
                    stopped = "diverged"
                    kept = (f"The last good checkpoint is kept: {folder / 'last.npz'}"
                            if (folder / "last.npz").is_file() else "No checkpoint was saved")
                    log(f"epoch {epoch + 1}: the loss became {loss} (diverged); stopping. {kept}. "
                        "Lower the learning rate (optim.lr in a --config file) and start again.")
                    break
                if not finished:
                    stopped = "interrupted"
                    point.epoch = epoch
                    learner.save(folder, "last.npz", point)
                    log(f"interrupted in epoch {epoch + 1} after batch {point.batch}; saved "
                        f"{folder / 'last.npz'}. Resume with: {folder.resume_command()}")
                    break
                seconds = time.perf_counter() - t0
                learner.opt.end_epoch()  # the record gives the next epoch's lr and momentum
                keep_epoch(learner, folder, point, val_trials, log,
                           epoch_record(learner, loader, epoch, loss, accuracy, seen, seconds))
                stopped = stopping_rule(cfg, point, time.perf_counter() - run_start,
                                        time.perf_counter() - t0, log)
                if stopped != "epochs":
                    break
        finally:
            loader.close()
    test = None
    if point.best_epoch > 0 and stopped != "interrupted":
        if data.test is not None and cfg.run.test_trials:
            test = score_test(folder / "best.npz", data.test, backend, cfg.run.test_trials, log,
                              point)
        folder.write_summary({"best_epoch": point.best_epoch,
                              "best_val_accuracy": point.best_acc, "test": test,
                              "stopped": stopped})
    return TrainResult(folder.path, point.best_epoch, point.best_acc, test, stopped)


def keep_epoch(learner: Learner, folder: RunFolder, point: Progress, val_trials, log,
               record: dict) -> None:
    """The end of a finished epoch: validate the judged weights, keep them as best.npz if
    they beat the best so far, then write the epoch's metrics line and last.npz (in this
    order: see RunFolder.agree_with_last)."""
    t0 = time.perf_counter()
    val = validate(learner, val_trials)
    point.epoch, point.batch, point.partial = record["epoch"], 0, Progress().partial
    improved = val > point.best_acc
    if improved:
        point.best_acc, point.best_epoch, point.bad_epochs = val, record["epoch"], 0
        learner.save(folder, "best.npz", point)
    else:
        point.bad_epochs += 1
    record.update(val_accuracy=val, eval_seconds=time.perf_counter() - t0)
    folder.append_metrics(record)
    learner.save(folder, "last.npz", point)
    log(epoch_line(record, improved, val_trials.n_way))


def epoch_record(learner, loader, epoch, loss, accuracy, seen, seconds) -> dict:
    """The training half of an epoch's metrics.jsonl line (keep_epoch adds validation's)."""
    opt, names = learner.opt, learner.layer_names
    return {"epoch": epoch + 1, "loss": loss, "train_accuracy": accuracy,
            "lr": {n: opt.hyper(n)[0] for n in names}, "momentum": opt.hyper(names[0])[1],
            "seconds": seconds, "pairs_per_s": seen / seconds,
            "images_per_s": images_per_pair(loader) * seen / seconds,
            "data_wait_fraction": loader.wait_seconds / seconds}


def epoch_line(r: dict, improved: bool, n_way: int = 20) -> str:
    lr = next(iter(r["lr"].values()))
    return (f"epoch {r['epoch']:3d}  loss {r['loss']:.4f}  train acc {r['train_accuracy']:.3f}  "
            f"val {n_way}-way {r['val_accuracy']:.3f}{' *' if improved else '  '}  "
            f"{r['pairs_per_s']:.0f} pairs/s ({r['images_per_s']:.0f} images/s)  "
            f"lr {lr:.4g}  mom {r['momentum']:.2f}  "
            f"data wait {100 * r['data_wait_fraction']:.1f}%")


def stopping_rule(cfg: Config, point: Progress, elapsed: float, last_epoch: float, log) -> str:
    """"early-stop", "time-budget" (the next epoch would end past it) or "epochs" (go on)."""
    if point.bad_epochs >= cfg.run.patience:
        log(f"no improvement for {point.bad_epochs} epochs: stopping early")
        return "early-stop"
    budget = cfg.run.time_budget_minutes
    if budget and elapsed + last_epoch > 60 * budget:
        log(f"time budget of {budget:g} minutes reached ({elapsed / 60:.1f} min): stopping")
        return "time-budget"
    return "epochs"


def score_test(path, test_set, backend, n_trials: int, log, point: Progress) -> dict:
    """best.npz's 20-way one-shot accuracy on the test set (seed 0), logged and returned."""
    model = model_from_checkpoint(load_checkpoint(path), backend)
    trials = within_alphabet_trials(test_set, n_way=20, n_trials=n_trials, seed=0)
    test = evaluate(model_score(model), trials).to_dict()
    log(f"best model (epoch {point.best_epoch}, val {point.best_acc:.3f}): 20-way one-shot "
        f"accuracy on {test['trials']} test trials {100 * test['accuracy']:.1f}% "
        f"(95% CI {100 * test['ci95'][0]:.1f}-{100 * test['ci95'][1]:.1f}%)")
    return test
