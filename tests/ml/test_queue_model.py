"""The queue model's head and the ranking both the live queue and the simulation use."""
import math

import numpy as np
import pytest

from ml import sampling
from ml.queue_model import (
    LinearHead,
    NotEnoughLabels,
    fit_multiclass,
    fit_multilabel,
    head_metrics,
    multilabel_uncertainty,
)
from ml.selection import cold_start_order, rank_pool
from training.simulation import SimulationConfig, labels_to_target, simulate


def clusters(n_per, centers, spread=0.05, seed=0):
    """Unit-norm points around each centre; returns (x, y)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + spread * rng.standard_normal((n_per, len(c))) for c in centers])
    y = np.repeat(np.arange(len(centers)), n_per)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


CENTERS = np.eye(3, 16)


def test_multiclass_head_learns_separable_classes_and_gives_distributions():
    x, y = clusters(20, CENTERS)
    head = fit_multiclass(x, y + 10, classes=[10, 11, 12, 13])
    probs = head.predict_proba(x)
    assert probs.shape == (60, 4) and np.allclose(probs.sum(axis=1), 1)
    assert (np.asarray(head.classes)[probs.argmax(axis=1)] == y + 10).all()
    assert probs[:, 3].max() < 1e-6  # never labeled: never predicted
    assert head_metrics(head, x, y + 10)["macro_f1"] == 1.0


def test_two_class_head_keeps_both_columns():
    x, y = clusters(10, CENTERS[:2])
    probs = fit_multiclass(x, y, classes=[0, 1]).predict_proba(x)
    assert (probs.argmax(axis=1) == y).all()


def test_a_head_needs_two_classes():
    x, y = clusters(5, CENTERS[:1])
    with pytest.raises(NotEnoughLabels):
        fit_multiclass(x, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not among the classes"):
        fit_multiclass(x, y + 5, classes=[0, 1])


def test_head_round_trips_as_plain_arrays_never_a_pickle():
    x, y = clusters(10, CENTERS)
    head = fit_multiclass(x, y, classes=[0, 1, 2])
    again = LinearHead.from_bytes(head.to_bytes())
    assert np.allclose(again.predict_proba(x), head.predict_proba(x), atol=1e-6)
    assert again.classes == [0, 1, 2] and again.kind == "multiclass"
    with pytest.raises(ValueError):
        LinearHead.from_bytes(b"not an archive")


def test_multilabel_head_learns_presence_and_constant_columns():
    x, y = clusters(20, CENTERS[:2])
    present = np.stack([y == 0, y == 1, np.zeros_like(y, dtype=bool)], axis=1).astype(int)
    head = fit_multilabel(x, present, classes=[1, 2, 3])
    probs = head.predict_proba(x)
    assert ((probs[:, :2] > 0.5) == present[:, :2].astype(bool)).all()
    assert np.allclose(probs[:, 2], 0.5 / 41, atol=1e-4)  # never present: its smoothed rate
    assert head_metrics(head, x, present)["primary_metric"] == "presence_macro_f1"
    assert multilabel_uncertainty([[0.5, 0.99], [0.01, 1.0]]).round(2).tolist() == [1.0, 0.02]


def test_cold_start_picks_one_typical_image_per_cluster_not_outliers():
    x, _ = clusters(30, CENTERS, spread=0.02)
    outliers = np.eye(16)[8:11].astype(np.float32)
    pool = np.concatenate([x, outliers])
    first = cold_start_order(pool, 3, seed=0)[:3]
    assert sorted(i // 30 for i in first) == [0, 1, 2]  # one per cluster, no outlier (index >= 90)
    # With one cluster labeled already, the next picks cover the other two.
    labeled = x[:1]
    picks = cold_start_order(pool, 2, labeled_embeddings=labeled, seed=0)[:2]
    assert sorted(i // 30 for i in picks) == [1, 2]


def test_rank_pool_serves_the_images_the_head_is_least_sure_of():
    x, y = clusters(20, CENTERS[:2])
    head = fit_multiclass(x, y, classes=[0, 1])
    between = (CENTERS[0] + CENTERS[1]).astype(np.float32)[None, :] / np.sqrt(2)
    pool = np.concatenate([x, between])
    ranking = rank_pool(strategy="margin", pool_embeddings=pool, labeled_embeddings=x, head=head, batch_size=5)
    assert int(np.argmax(ranking.priorities)) == len(pool) - 1 and not ranking.cold_start
    cold = rank_pool(strategy="margin", pool_embeddings=pool, labeled_embeddings=None, head=None, batch_size=5)
    assert cold.cold_start and cold.uncertainty is None


def test_class_balance_guard_caps_one_class_in_a_batch():
    order = np.arange(10)
    classes = np.array([0] * 8 + [1, 2])
    guarded = sampling.class_balance_guard(order, classes, 6)
    # cap = ceil(2 * 6 / 3) = 4 of class 0 in the first 6; the held back ones follow in order
    assert guarded.tolist() == [0, 1, 2, 3, 8, 9, 4, 5, 6, 7]


def test_random_share_is_kept_in_the_ranking():
    x, y = clusters(50, CENTERS)
    head = fit_multiclass(x[::5], y[::5], classes=[0, 1, 2])
    ranking = rank_pool(strategy="hybrid", pool_embeddings=x, labeled_embeddings=x[::5], head=head,
                        batch_size=10, random_share=0.2, seed=1)
    assert ranking.is_random.sum() == 30


def test_labels_to_target_interpolates_and_says_never():
    assert labels_to_target([(10, 0.5), (20, 0.7), (30, 0.9)], 0.8) == pytest.approx(25.0)
    assert labels_to_target([(10, 0.9)], 0.8) == 10.0
    assert math.isinf(labels_to_target([(10, 0.1), (20, 0.2)], 0.8))


def test_simulation_runs_each_strategy_per_seed_and_reports_the_saving():
    x, y = clusters(60, CENTERS, spread=0.3)
    tx, ty = clusters(20, CENTERS, spread=0.3, seed=1)
    config = SimulationConfig(strategies=("random", "margin"), seeds=(0, 1), batch_size=5, max_labels=30)
    result = simulate(task="classification", classes=[0, 1, 2], pool_embeddings=x, pool_targets=y,
                      test_embeddings=tx, test_targets=ty, config=config, log=lambda _: None)
    assert {(r["strategy"], r["seed"]) for r in result.rows} == {(s, k) for s in ("random", "margin") for k in (0, 1)}
    assert [r["labels"] for r in result.rows if r["strategy"] == "margin" and r["seed"] == 0] == [5, 10, 15, 20, 25, 30]
    summary = {row["strategy"]: row for row in result.summary()}
    assert summary["random"]["saving_vs_random_percent"] is None
    assert len(summary["margin"]["per_seed"]) == 2
    assert result.as_json()["strategies"][0]["strategy"] == "random"
