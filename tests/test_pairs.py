import json
import threading
import time

import numpy as np
import pytest
from conftest import fake_subset, subset_ids

from tinysiamese.backend import get_backend
from tinysiamese.pairs import PairLoader

NUMPY = get_backend("numpy")


def _loader(subset=None, **kwargs):
    settings = dict(batch_size=16, pairs_per_epoch=160, distort=False, seed=0, prefetch=2)
    settings.update(kwargs)
    return PairLoader(subset or fake_subset(), NUMPY, **settings)


def _epoch(loader, epoch=0, **kwargs):
    return [tuple(np.asarray(a) for a in batch) for batch in loader.iter_epoch(epoch, **kwargs)]


def _worker_threads():
    return [t for t in threading.enumerate() if t.name == "tinysiamese-batches"]


def test_batches_shapes_labels_and_pairs():
    subset = fake_subset()
    loader = _loader(subset, hard_negative_fraction=0.5)
    batches = _epoch(loader)
    assert len(batches) == len(loader) == 160 // 16
    for x1, x2, y in batches:
        assert x1.shape == x2.shape == (16, 1, 12, 12) and x1.dtype == np.float32
        assert y.dtype == np.float32 and y.tolist() == [1.0] * 8 + [0.0] * 8
        c1, d1 = subset_ids(x1)
        c2, d2 = subset_ids(x2)
        same = y == 1
        assert (c1[same] == c2[same]).all(), "a same pair must show one character"
        assert (d1[same] != d2[same]).all(), "... drawn by two different drawers"
        assert (c1[~same] != c2[~same]).all(), "a different pair must show two characters"
        assert x1.min() == 0.0 and x1.max() == 1.0


def test_float64_backend_gives_float64_batches():
    x1, x2, y = next(iter(PairLoader(fake_subset(), get_backend("numpy", np.float64), batch_size=8,
                                     pairs_per_epoch=16, distort=False)))
    assert x1.dtype == x2.dtype == y.dtype == np.float64


@pytest.mark.parametrize("fraction, low, high",
                         [(0.0, 0.2, 0.45), (1.0, 1.0, 1.0), (0.5, 0.55, 0.8)])
def test_hard_negatives_share_an_alphabet(fraction, low, high):
    subset = fake_subset(alphabet_sizes=(4, 4, 4))
    loader = _loader(subset, pairs_per_epoch=4000, batch_size=100, hard_negative_fraction=fraction)
    plan = loader._plan(0)
    diff = plan.same == 0
    shared = (subset.alphabet_of[plan.char1[diff]] == subset.alphabet_of[plan.char2[diff]]).mean()
    # With 3 alphabets, a random second alphabet is the first one a third of the time.
    assert low <= shared <= high, f"{shared:.3f} of negatives within one alphabet"


def test_every_alphabet_gets_an_equal_share():
    subset = fake_subset(alphabet_sizes=(2, 20, 5))  # very unequal alphabets
    plan = _loader(subset, pairs_per_epoch=6000, batch_size=100)._plan(0)
    share = np.bincount(subset.alphabet_of[plan.char1], minlength=3) / len(plan.char1)
    np.testing.assert_allclose(share, 1 / 3, atol=0.03)


def test_same_seed_same_batches_whatever_the_thread():
    threaded = _epoch(_loader(seed=7, distort=True, prefetch=3), epoch=2)
    inline = _epoch(_loader(seed=7, distort=True, prefetch=0), epoch=2)
    assert len(threaded) == len(inline)
    for a, b in zip(threaded, inline):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    other_seed = _epoch(_loader(seed=8, distort=True), epoch=2)
    other_epoch = _epoch(_loader(seed=7, distort=True), epoch=3)
    assert not np.array_equal(threaded[0][0], other_seed[0][0])
    assert not np.array_equal(threaded[0][0], other_epoch[0][0])


def test_iter_runs_successive_epochs_and_state_resumes():
    loader = _loader(seed=3)
    first = [np.asarray(b[0]) for b in loader]
    second = [np.asarray(b[0]) for b in loader]
    assert loader.state() == {"seed": 3, "epoch": 2}
    resumed = _loader(seed=3)
    resumed.set_state(json.loads(json.dumps({"seed": 3, "epoch": 1})))
    np.testing.assert_array_equal(np.asarray(next(iter(resumed))[0]), second[0])
    assert not np.array_equal(first[0], second[0])
    tail = _epoch(_loader(seed=3), epoch=1, start_batch=4)
    np.testing.assert_array_equal(tail[0][0], second[4])
    with pytest.raises(ValueError, match="seed 3"):
        _loader(seed=4).set_state({"seed": 3, "epoch": 1})


def test_paper_distortions_emit_k_copies():
    loader = _loader(distortions=2, pairs_per_epoch=96, batch_size=12)
    assert len(loader) == 3 * 96 // 12
    plan = loader._plan(0)
    rows = list(zip(plan.char1, plan.drawer1, plan.char2, plan.drawer2))
    counts = {}
    for r, warped in zip(rows, plan.warped):
        counts.setdefault(r, []).append(bool(warped))
    # Each drawn pair comes once as is and twice distorted (a pair drawn twice counts double).
    assert all(len(v) % 3 == 0 and v.count(False) * 2 == v.count(True) for v in counts.values())
    x1, _, _ = next(loader.iter_epoch(0))
    assert len(np.unique(np.asarray(x1))) > 2, "distorted images should have grey levels"


def test_option_errors():
    with pytest.raises(ValueError, match="not both"):
        _loader(distort=True, distortions=8)
    with pytest.raises(ValueError, match="even"):
        _loader(batch_size=15)
    with pytest.raises(ValueError, match="no full batch"):
        _loader(pairs_per_epoch=10)
    with pytest.raises(ValueError, match="hard_negative_fraction"):
        _loader(hard_negative_fraction=1.5)
    with pytest.raises(ValueError, match="two characters"):
        _loader(fake_subset(alphabet_sizes=(1, 3)))
    with pytest.raises(ValueError, match="start_batch"):
        _loader().iter_epoch(0, start_batch=99)


@pytest.mark.parametrize("pairs, batch, k, n_batches", [(170, 16, 0, 10), (3, 2, 1, 3), (35, 4, 2, 26)])
def test_remainder_is_dropped(pairs, batch, k, n_batches):
    loader = _loader(batch_size=batch, pairs_per_epoch=pairs, distortions=k)
    assert len(loader) == n_batches
    batches = _epoch(loader)
    assert len(batches) == n_batches and all(len(y) == batch for _, _, y in batches)


def _wait_for_no_workers(timeout=3.0):
    deadline = time.monotonic() + timeout
    while _worker_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return _worker_threads()


@pytest.fixture(autouse=True)
def _no_leftover_workers():
    assert not _wait_for_no_workers(), "a previous test left a worker thread running"
    yield


def test_abandoned_iteration_stops_the_thread():
    loader = _loader(pairs_per_epoch=1600, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 1:
            break
    loader.close()
    assert not _wait_for_no_workers(), "worker thread still running after close()"
    gen = loader.iter_epoch(0)
    next(gen)
    del gen  # dropped without close(): garbage collection closes it
    assert not _wait_for_no_workers()


def test_interrupt_in_consumer_stops_the_thread():
    loader = _loader(pairs_per_epoch=1600, prefetch=2)
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(loader.iter_epoch(0)):
            if i == 2:
                raise KeyboardInterrupt
    assert not _wait_for_no_workers()


def test_worker_failure_reaches_the_consumer(monkeypatch):
    loader = _loader()

    def broken(plan, b):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(loader, "_make_batch", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        next(loader.iter_epoch(0))
    assert not _wait_for_no_workers()


def test_wait_seconds_counts_time_waiting(monkeypatch):
    loader = _loader()
    real = loader._make_batch

    def slow(plan, b):
        time.sleep(0.02)
        return real(plan, b)

    monkeypatch.setattr(loader, "_make_batch", slow)
    assert loader.wait_seconds == 0.0
    n = len(_epoch(loader))
    # The consumer does nothing between batches, so it waits for nearly every one.
    assert loader.wait_seconds >= 0.015 * n, f"waited {loader.wait_seconds:.3f} s for {n} batches"


def test_real_train_set_batch(real_background):
    from tinysiamese.characters import paper_split

    loader = PairLoader(paper_split(real_background, "train"), NUMPY, batch_size=32,
                        pairs_per_epoch=64, hard_negative_fraction=0.5)
    batches = list(loader)
    assert len(batches) == 2
    x1, x2, y = batches[0]
    assert x1.shape == (32, 1, 105, 105) and y.sum() == 16
    ink = x1.mean()
    assert 0.01 < ink < 0.2, f"mean ink {ink:.3f}: strokes should be 1 on a 0 background"
