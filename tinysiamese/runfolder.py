"""The run folder: every file a training run writes, and how a run goes on from them.

    config.json     the resolved configuration (config.Config.to_dict)
    metrics.jsonl   one JSON line per finished epoch
    best.npz        the best model by validation accuracy
    last.npz        the latest state (model, optimiser, weight average, progress), to resume
    summary.json    the best epoch, the test accuracy of best.npz and the machine
    run.lock        held by the one trainer of the folder (its pid and host inside)

Every file but metrics.jsonl is written atomically (a temporary file renamed over it), so a
reader, or a crash at any moment, sees the old file or the new one, never half of one. A
failed write keeps what is there and says so in one line (:class:`TrainingError`).

A folder never holds two runs: a new run refuses a folder that holds one (unless told to
overwrite it), and one trainer at a time holds its lock (``fcntl.flock``, which the kernel
drops when the process ends, however it ends, so a dead trainer never blocks). After a
crash at any moment the files agree: an epoch's metrics line is written before its
last.npz, and resuming drops the lines of epochs that last.npz does not hold.
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import shlex
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import Config, ConfigError, config_from_dict
from .files import atomic_write, remove_stale_temp_files

THREAD_VARIABLES = ("TINYSIAMESE_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS")


class TrainingError(Exception):
    """A run that cannot start or cannot go on (the message says why and what to do)."""


class ResumeError(TrainingError):
    """A run that the options or the folder contradict (another preset on resume, a folder
    that holds a run or is in use): a usage error."""


def machine_summary() -> dict:
    """What the speed of a run depends on besides the code: cores, and the BLAS thread limits
    set in the environment (None where unset: the library then uses every core)."""
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            **{name: os.environ.get(name) for name in THREAD_VARIABLES}}


@dataclass
class Progress:
    """Where a run stands: the next (epoch, batch), the unfinished epoch's sums, the best so
    far. A fresh run starts at epoch 0, batch 0, with no best yet."""

    epoch: int = 0
    batch: int = 0
    partial: dict = field(default_factory=lambda: {"loss_sum": 0.0, "right_sum": 0.0, "seen": 0})
    best_acc: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    average_steps: int = 0
    data: dict | None = None  # what it trains on (train.TrainingData.source)

    def meta(self, cfg: Config) -> dict:
        """The JSON header of a checkpoint written at this point."""
        return {"config": cfg.to_dict(), "seed": cfg.run.seed, "epoch": self.epoch,
                "batch": self.batch, "partial": self.partial, "best_val_accuracy": self.best_acc,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "average_steps": self.average_steps, "data": self.data}


def same_data(a: dict, b: dict) -> bool:
    """Whether two TrainingData.source are the same data, wherever the folder now lies."""
    return {k: v for k, v in a.items() if k != "root"} == {k: v for k, v in b.items() if k != "root"}


def describe_data(source: dict) -> str:
    """"Omniglot", or "the images of ~/pics (12 classes)"."""
    if source.get("kind") == "folder":
        return f"the images of {source.get('root')} ({source.get('classes')} classes)"
    return "Omniglot"


class RunFolder:
    """The files of one training run; ``data_root`` only goes into the resume command."""

    RUN_FILES = ("config.json", "metrics.jsonl", "best.npz", "last.npz", "summary.json")

    def __init__(self, path, data_root=None):
        self.path, self.data_root = Path(path), data_root
        self.metrics = self.path / "metrics.jsonl"
        self._lock = None  # the open run.lock while this process holds it
        self._overwrite = False  # delete the old run's files at the first write

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def resume_command(self) -> str:
        """The command line that continues this run: the folder keeps its settings, not where
        its data lives, so the data folder is part of the command."""
        data = f" --data {shlex.quote(str(self.data_root))}" if self.data_root else ""
        return f"tinysiamese train --resume {shlex.quote(str(self.path))}{data}"

    def write_error(self, path: Path, exc: OSError) -> TrainingError:
        """A failed write (a full disk, a lost mount) -> one line: what is kept, what to do."""
        then = (f"resume with: {self.resume_command()}" if (self / "last.npz").is_file()
                else "start the run again")
        return TrainingError(f"cannot write {path} ({exc.strerror or exc}); the checkpoints "
                             f"already in {self.path} are kept intact. Free some space, then {then}")

    # ------------------------------------------------------------------ starting
    def open(self, *, resume: bool = False, overwrite: bool = False) -> None:
        """Make the folder, take its lock, and check that it may take this run: a new run
        needs a folder that holds none (``overwrite``: the old run's files go, but only when
        the new run writes its first file, so a run that fails to start deletes nothing).
        Idempotent: the command line opens the folder before it loads the data, then
        ``train`` opens it again. ResumeError (one line) if the folder is refused."""
        if self._lock is not None:
            return
        self.prepare()
        self._lock = self._take_lock()
        try:
            # only the lock's holder may: a refused second trainer must not delete the
            # temporary file that the first is writing
            remove_stale_temp_files(self.path)
            if not resume and self.holds_run() and not overwrite:
                raise ResumeError(f"{self.path} already holds a run ({self.describe()}); "
                                  f"continue it with `{self.resume_command()}`, or choose "
                                  "another --out (or give --overwrite to start afresh)")
            self._overwrite = overwrite and not resume
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Let go of the lock (the kernel also does when the process ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_lock(self):
        f = open(self / "run.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ResumeError(f"{self.path} is in use by another training run ({holder}); "
                              "wait for it to end, or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        return f

    def holds_run(self) -> bool:
        """Whether a run trained here: a config.json alone is a run that never got going."""
        return any((self / name).exists() for name in ("last.npz", "best.npz", "metrics.jsonl"))

    def describe(self) -> str:
        """"epoch 3 of 40, best val 0.812" from last.npz (or what the folder holds)."""
        try:
            meta = load_checkpoint(self / "last.npz").meta
            epochs = meta["config"].get("run", meta["config"]).get("epochs", "?")
            return (f"epoch {meta['epoch']} of {epochs}, best val "
                    f"{meta['best_val_accuracy']:.3f}")
        except (CheckpointError, KeyError, AttributeError, TypeError):
            kept = [name for name in self.RUN_FILES if (self / name).exists()]
            return ", ".join(kept)

    def prepare(self) -> None:
        """Fail now, not after an hour, if the folder cannot be written."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise TrainingError(f"cannot write to the run folder {self.path} "
                                f"({exc.strerror or exc}); choose another with --out") from None

    def resume(self, epochs: int | None = None,
               weights: bool = True) -> tuple[Config, Progress, Checkpoint]:
        """The saved run's config (with ``epochs`` if given), its progress and last.npz
        (``weights=False``: its meta record only, see ``load_checkpoint``)."""
        try:
            ckpt = load_checkpoint(self / "last.npz", weights)
        except CheckpointError as exc:  # the run's own file is damaged: a failure, not a usage error
            raise TrainingError(str(exc)) from None
        try:
            cfg = config_from_dict(ckpt.config, f"{self / 'last.npz'}")
        except ConfigError as exc:
            raise TrainingError(f"{exc}; it cannot be resumed: start a new run with --out") from None
        m = ckpt.meta
        cfg = cfg.replace("run", seed=m.get("seed", cfg.run.seed),  # earlier versions kept it here
                          epochs=cfg.run.epochs if epochs is None else epochs)

        try:
            progress = Progress(m["epoch"], m.get("batch", 0), m.get("partial", Progress().partial),
                                m["best_val_accuracy"], m["best_epoch"], m["bad_epochs"],
                                m.get("average_steps", 0), m.get("data"))
        except KeyError as exc:
            raise TrainingError(f"{self / 'last.npz'} holds no training progress ({exc} is "
                                "missing; a weights-only file?): it cannot be resumed; start a "
                                "new run with --out") from None
        counts = (progress.epoch, progress.batch, progress.best_epoch, progress.bad_epochs,
                  progress.average_steps)
        if not all(type(n) is int for n in counts) or not isinstance(progress.partial, dict) \
                or not isinstance(progress.best_acc, (int, float)):
            raise TrainingError(f"{self / 'last.npz'}: its progress record is damaged; it "
                                "cannot be resumed: start a new run with --out")
        return cfg, progress, ckpt

    def agree_with_last(self, epoch: int, log) -> None:
        """Make metrics.jsonl hold epochs 1..``epoch`` only, as last.npz does: a run killed
        between an epoch's metrics line and its last.npz trains that epoch again, and a
        line cut short by the kill is no epoch. summary.json described a run's end, and the
        run goes on: it goes too, until the run ends again."""
        (self / "summary.json").unlink(missing_ok=True)
        try:
            lines = self.metrics.read_text().splitlines()
        except FileNotFoundError:
            return
        kept = []
        for line in lines:
            try:
                if json.loads(line)["epoch"] <= epoch:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                pass
        if len(kept) < len(lines):
            log(f"metrics.jsonl: dropped {len(lines) - len(kept)} line(s) that last.npz does not "
                f"hold (written as the run stopped); epoch {epoch + 1} is trained again")
            self._write("metrics.jsonl", lambda f: f.write("".join(k + "\n" for k in kept).encode()))

    def check_same_data(self, point: Progress, source: dict) -> None:
        """A run goes on only on the data it began with (runs of earlier versions say none)."""
        if point.data is not None and not same_data(point.data, source):
            raise ResumeError(f"{self / 'last.npz'} was trained on {describe_data(point.data)}, "
                              f"not on {describe_data(source)}: resume it with the --data it "
                              "began with")
        point.data = source

    # ------------------------------------------------------------------ writing
    def _write(self, name: str, write) -> None:
        try:
            atomic_write(self / name, write)
        except OSError as exc:  # atomic: the previous file is still there, whole
            raise self.write_error(self / name, exc) from None

    def write_config(self, cfg: Config) -> None:
        """The run's first write: with --overwrite, the old run's files go just before it."""
        if self._overwrite:
            for name in self.RUN_FILES:
                (self / name).unlink(missing_ok=True)
            self._overwrite = False
        self._write("config.json", lambda f: f.write(json.dumps(cfg.to_dict(), indent=2).encode()))

    def save(self, name: str, params: dict, meta: dict, velocities: dict,
             averages: dict | None = None) -> None:
        """best.npz or last.npz, from host arrays (see checkpoint.save_checkpoint)."""
        try:
            save_checkpoint(self / name, params, meta, velocities, averages=averages)
        except OSError as exc:
            raise self.write_error(self / name, exc) from None

    def append_metrics(self, record: dict) -> None:
        try:
            with open(self.metrics, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise self.write_error(self.metrics, exc) from None

    def write_summary(self, summary: dict) -> None:
        summary = {**summary, "machine": machine_summary()}
        self._write("summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))

