"""cluster.py and clustermetrics.py: the Hungarian method against brute force, NMI and ARI
against hand-worked values, spectral clustering on planted clusters and on real Omniglot."""
from __future__ import annotations

import itertools
import math
import shutil
import zipfile

import numpy as np
import pytest

from tinysiamese import cluster, clustermetrics, folders, similarity
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint
from tinysiamese.pretrained import pretrained_path


def brute_force_assignment(cost):
    """The least total cost over every injective map of the smaller side: a plain loop."""
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    return min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5), (2, 7)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_assignment_is_optimal(shape, seed):
    rng = np.random.default_rng(seed)
    cost = rng.integers(-5, 20, size=shape).astype(float)  # integers: many ties
    rows, cols = clustermetrics.linear_assignment(cost)
    assert len(rows) == min(shape) and len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
    got, best = cost[rows, cols].sum(), brute_force_assignment(cost)
    assert got == best, f"assignment cost {got}, optimum {best}"


def test_accuracy_nmi_ari_hand_worked():
    truth = [0, 0, 0, 1, 1, 1]
    pred = [5, 5, 7, 7, 7, 7]   # contingency [[2, 1], [0, 3]]
    assert clustermetrics.clustering_accuracy(truth, pred) == pytest.approx(5 / 6)
    # ARI: sum C(n_ij, 2) = 1 + 0 + 0 + 3 = 4; rows 3 + 3 = 6; cols C(2,2) + C(4,2) = 7;
    # E = 6 * 7 / 15 = 2.8; (4 - 2.8) / (6.5 - 2.8)
    assert clustermetrics.ari(truth, pred) == pytest.approx(1.2 / 3.7)
    # NMI: I = sum p_ij log(p_ij / (p_i p_j)); H(T) = log 2; H(P) of (1/3, 2/3)
    joint = np.array([[2, 1], [0, 3]]) / 6
    pt, pp = joint.sum(1), joint.sum(0)
    mutual = sum(joint[i, j] * math.log(joint[i, j] / (pt[i] * pp[j]))
                 for i in range(2) for j in range(2) if joint[i, j] > 0)
    h = lambda p: -sum(x * math.log(x) for x in p)  # noqa: E731
    assert clustermetrics.nmi(truth, pred) == pytest.approx(mutual / ((h(pt) + h(pp)) / 2))


def test_metrics_ignore_cluster_names_and_reach_one():
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    renamed = np.array([9, 9, 4, 4, 1, 1, 1])
    for metric in (clustermetrics.clustering_accuracy, clustermetrics.nmi, clustermetrics.ari):
        assert metric(truth, renamed) == pytest.approx(1.0), metric.__name__
    assert clustermetrics.ari(truth, np.zeros(7)) == pytest.approx(0.0), "one cluster: chance"


def planted(sizes, seed=0, noise=2.0):
    """Logits of planted clusters: +4 within, -4 across, plus symmetric noise."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    z = np.where(truth[:, None] == truth[None], 4.0, -4.0)
    e = rng.normal(0, noise, z.shape)
    return z + (e + e.T) / 2, truth


@pytest.mark.parametrize("sizes", [(20, 20, 20), (30, 12, 7, 25, 9)])
def test_spectral_recovers_planted_clusters_with_k_known_and_estimated(sizes):
    z, truth = planted(sizes)
    known = cluster.cluster(z, len(sizes))
    assert clustermetrics.clustering_accuracy(truth, known.labels) == 1.0
    guess = cluster.cluster(z, None)
    assert guess.k == len(sizes), f"estimated K {guess.k}, planted {len(sizes)}"
    assert clustermetrics.ari(truth, guess.labels) == pytest.approx(1.0)
    assert "estimated" in guess.how and "given" in known.how
    assert np.all(np.diff(np.bincount(known.labels)) <= 0), "cluster 0 is the largest"


def test_knn_affinity_keeps_the_nearest_and_is_symmetric():
    z = np.array([[9, 5, 1, 0], [5, 9, 2, 3], [1, 2, 9, 4], [0, 3, 4, 9]], dtype=float)
    a = cluster.knn_affinity(z, neighbours=1, temperature=1.0)
    # nearest other: 0 -> 1, 1 -> 0, 2 -> 3, 3 -> 2: edges {0-1, 2-3}
    assert (a > 0).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    assert a[0, 1] == pytest.approx(np.exp(5 - 5)) and a[2, 3] == pytest.approx(np.exp(4 - 5))


def test_kmeans_and_by_size():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (10, 2)), rng.normal(5, 0.1, (4, 2))])
    labels = cluster.kmeans(x, 2, rng)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]
    assert cluster.by_size(np.array([3, 3, 1, 1, 1, 7])).tolist() == [1, 1, 0, 0, 0, 2]


def test_mean_same_probability():
    z = np.array([[0.0, 2.0, -1.0], [2.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    got = cluster.mean_same_probability(z, np.array([0, 0, 1]))
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(got[:2], [p, p])
    assert np.isnan(got[2]), "alone in its cluster"


def test_cluster_refuses_bad_requests():
    with pytest.raises(ValueError, match="at least 2 images"):
        cluster.cluster(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="--k must lie between 1 and"):
        cluster.cluster(np.zeros((3, 3)), k=4)


def test_real_omniglot_folder_clusters_by_character(omniglot_dir, tmp_path):
    """Five characters of a test alphabet, all 20 drawings, copied out of the archive as a
    user would keep them: one folder each, the original PNG files."""
    with zipfile.ZipFile(omniglot_dir / "images_evaluation.zip") as zf:
        names = sorted(n for n in zf.namelist() if "/Tengwar/character0" in n and n.endswith(".png"))
        chars = sorted({n.split("/")[-2] for n in names})[:5]
        for n in names:
            if n.split("/")[-2] in chars:
                target = tmp_path / "mine" / n.split("/")[-2] / n.split("/")[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(n) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    model = model_from_checkpoint(load_checkpoint(pretrained_path()), get_backend("numpy"))
    listing, x = folders.read_folder(tmp_path / "mine", model.network.image_size, min_images=2)
    truth = np.array([f.parent.name for f in listing.files])
    h = similarity.encode(model, x)
    z = similarity.pair_logits(h, h, *similarity.join_params(model), symmetric=True)
    known = cluster.cluster(z, 5)
    accuracy = clustermetrics.clustering_accuracy(truth, known.labels)
    assert len(listing.files) == 100 and accuracy >= 0.9, f"accuracy {accuracy:.1%}"
    guess = cluster.cluster(z)
    assert 4 <= guess.k <= 6, f"estimated K {guess.k} for 5 characters"


@pytest.mark.parametrize("z, k", [
    ([[9.0, 3.0], [3.0, 9.0]], 1),                                     # the net says same
    ([[9.0, -3.0], [-3.0, 9.0]], 2),                                   # the net says different
    ([[9.0, 2.0, -1.0], [2.0, 9.0, -4.0], [-1.0, -4.0, 9.0]], 2),
])
def test_few_images_take_k_from_the_nets_answers(z, k):
    got = cluster.cluster(np.array(z))
    assert got.k == k and "P(same) > 1/2" in got.how, got.how
    assert len(np.unique(got.labels)) == k


def test_linked_groups():
    linked = np.zeros((5, 5), dtype=bool)
    for a, b in [(0, 3), (3, 4)]:
        linked[a, b] = linked[b, a] = True
    assert cluster.linked_groups(linked) == 3, "{0, 3, 4}, {1}, {2}"
