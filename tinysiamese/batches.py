"""What both training loaders share: epochs planned from ``(seed, epoch)``, prepared ahead.

Determinism: everything epoch ``e`` produces depends only on ``(seed, e)`` - a loader plans
it up front from ``numpy.random.default_rng([seed, stream, e])`` - so the background
thread, the prefetch depth and resuming at an epoch or a batch change nothing.

:class:`EpochBatches` is that machinery (the thread, resuming) for
:class:`tinysiamese.pairs.PairLoader`, which trains on independent pairs, and
:class:`tinysiamese.groups.GroupLoader`, which trains on every pair within small groups of
characters. Random streams (the second word of the seed) in use: 1 and 3 (pairs; 2 was the
removed ``fixed_pairs``), 4 (groups).
"""
from __future__ import annotations

import queue
import threading
import time
import weakref


class _Failure:
    """An exception raised in the worker thread, carried to the consumer."""

    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


class EpochBatches:
    """What every training loader shares: epochs planned from ``(seed, epoch)`` alone, their
    batches prepared ahead in a background thread, and resuming at any batch.

    A loader calls ``super().__init__(backend, seed, prefetch)`` and defines ``__len__``
    (batches per epoch), ``_plan(epoch)`` (everything random about the epoch, decided up
    front) and ``_make_batch(plan, b)`` (batch b as host arrays). ``iter(loader)`` runs the
    next epoch; :meth:`iter_epoch` runs a given one.
    """

    epoch = 0             # the epoch iter(loader) runs next
    wait_seconds = 0.0    # total time the consumer waited for a batch
    _active = None        # weak reference to the running epoch's generator, for close()

    def __init__(self, backend, seed: int, prefetch: int):
        """backend: where batches go; seed: decides every epoch; prefetch: batches prepared
        ahead in a background thread (0: prepare them in the caller's thread)."""
        if seed < 0:
            raise ValueError(f"seed must be 0 or more, not {seed}")
        if prefetch < 0:
            raise ValueError(f"prefetch must be 0 or more, not {prefetch}")
        self.backend, self.seed, self.prefetch = backend, seed, prefetch

    # ----------------------------------------------------------------------------------
    # Iterating, with a background thread

    def __iter__(self):
        """Run the next epoch (``self.epoch``, then advanced by one)."""
        epoch = self.epoch
        self.epoch += 1
        return self.iter_epoch(epoch)

    def iter_epoch(self, epoch: int, start_batch: int = 0):
        """Generator of epoch ``epoch``'s batches, from batch ``start_batch`` on."""
        if epoch < 0 or not 0 <= start_batch <= len(self):
            raise ValueError(
                f"need epoch >= 0 and 0 <= start_batch <= {len(self)}, got {epoch}, {start_batch}"
            )
        self.close()  # one running epoch at a time
        batches = self._batches(self._plan(epoch), range(start_batch, len(self)))
        # Only a weak reference: a generator the caller drops is then closed at once (which
        # stops its thread), instead of waiting in a reference cycle for the garbage collector.
        self._active = weakref.ref(batches)
        return batches

    def _to_backend(self, batch):
        # Moving to the device happens here, in the consumer's thread: CuPy arrays belong to
        # the thread's current device and stream, which the worker thread does not share.
        return tuple(self.backend.asarray(a) for a in batch)

    def _batches(self, plan, batch_ids: range):
        if self.prefetch == 0:
            for b in batch_ids:
                yield self._to_backend(self._make_batch(plan, b))
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():  # a timeout, so a stopped consumer never strands us
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        def work():
            try:
                for b in batch_ids:
                    if not put(self._make_batch(plan, b)):
                        return
                put(_DONE)
            except BaseException as exc:  # hand any failure to the consumer
                put(_Failure(exc))

        # A daemon thread never holds up interpreter exit; `stop` ends it when the
        # iteration is closed, abandoned (garbage collected) or interrupted.
        worker = threading.Thread(target=work, name="tinysiamese-batches", daemon=True)
        worker.start()
        try:
            while True:
                start = time.perf_counter()
                while True:
                    try:
                        item = ready.get(timeout=0.1)
                        break
                    except queue.Empty:
                        if not worker.is_alive() and ready.empty():
                            raise RuntimeError("the loader's worker thread died") from None
                self.wait_seconds += time.perf_counter() - start
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield self._to_backend(item)
        finally:
            stop.set()
            worker.join(timeout=5.0)

    def close(self) -> None:
        """Stop the running epoch, if any, and its worker thread."""
        batches = self._active() if self._active is not None else None
        if batches is not None:
            batches.close()
        self._active = None

    # ----------------------------------------------------------------------------------
    # Resuming

    def state(self) -> dict:
        """JSON-ready state: with the same settings, ``set_state`` resumes at that epoch."""
        return {"seed": self.seed, "epoch": self.epoch}

    def set_state(self, state: dict) -> None:
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"loader state is for seed {state['seed']}, but this loader has seed {self.seed}"
            )
        self.epoch = int(state["epoch"])
