import math

import numpy as np
import pytest

from ml.sampling import (
    SIMPLE_FEATURE_SIZE,
    binary_entropy,
    classification_uncertainty,
    detection_batch_uncertainty,
    detection_box_uncertainty,
    detection_image_uncertainty,
    entropy,
    hybrid_select,
    k_center_greedy,
    least_confidence,
    margin,
    queue_priorities,
    simple_image_features,
)

# --- classification -------------------------------------------------------------------


def test_least_confidence_is_one_minus_top_probability():
    # 1 - 0.7 = 0.3; 1 - 1.0 = 0
    assert least_confidence([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]]) == pytest.approx([0.3, 0.0])


def test_margin_is_one_minus_gap_between_top_two():
    # 1 - (0.5 - 0.3) = 0.8; tie at the top: 1 - (0.45 - 0.45) = 1
    assert margin([[0.2, 0.5, 0.3], [0.45, 0.1, 0.45]]) == pytest.approx([0.8, 1.0])


def test_entropy_is_one_for_uniform_distribution():
    assert entropy(np.full((2, 4), 0.25)) == pytest.approx([1.0, 1.0])


def test_entropy_is_zero_for_one_hot_and_has_no_nan_from_zeros():
    result = entropy([[0.0, 1.0, 0.0]])
    assert not np.isnan(result).any()
    assert result == pytest.approx([0.0])


def test_entropy_is_normalised_by_log_of_class_count():
    # [0.5, 0.5, 0]: H = ln 2, normalised by ln 3 -> 0.6309
    assert entropy([[0.5, 0.5, 0.0]]) == pytest.approx([math.log(2) / math.log(3)])


def test_single_class_is_never_uncertain():
    probs = [[1.0], [0.3]]
    for measure in ("least_confidence", "margin", "entropy"):
        assert classification_uncertainty(probs, measure) == pytest.approx([0.0, 0.0])


def test_rows_are_renormalised_and_zero_rows_count_as_uniform():
    # [2, 1, 1] -> [0.5, 0.25, 0.25]: least confidence 0.5; [0, 0] -> uniform: margin 1
    assert least_confidence([[2.0, 1.0, 1.0]]) == pytest.approx([0.5])
    assert margin([[0.0, 0.0]]) == pytest.approx([1.0])


def test_unknown_measure_is_rejected():
    with pytest.raises(ValueError):
        classification_uncertainty([[0.5, 0.5]], "variance")


# --- detection ------------------------------------------------------------------------


def test_binary_entropy_peaks_at_one_half_and_vanishes_at_certainty():
    assert binary_entropy([0.0, 0.5, 1.0]) == pytest.approx([0.0, 1.0, 0.0])


def test_box_uncertainty_combines_existence_and_class_as_noisy_or():
    # scores [0.8, 0.2]: c = 0.8, normalised [0.8, 0.2]
    # u_class (least confidence) = 0.2, H2(0.8) = 0.721928
    # u_box = 1 - (1 - 0.721928) * (1 - 0.8 * 0.2) = 1 - 0.278072 * 0.84 = 0.766420
    h = -(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2))
    expected = 1 - (1 - h) * (1 - 0.8 * 0.2)
    assert detection_box_uncertainty([[0.8, 0.2]], measure="least_confidence") == pytest.approx([expected])


def test_one_class_box_uncertainty_is_binary_entropy_of_confidence():
    scores = np.array([[0.1], [0.5], [0.9]])
    assert detection_box_uncertainty(scores) == pytest.approx(binary_entropy(scores[:, 0]))


def test_near_background_box_with_flat_scores_is_not_uncertain():
    # c = 0.001: H2 ~ 0.0114 and the flat class scores weigh in only by c
    assert detection_box_uncertainty([[0.001, 0.001, 0.001]])[0] < 0.02


def test_confident_clear_box_is_certain():
    assert detection_box_uncertainty([[1.0, 0.0, 0.0]]) == pytest.approx([0.0])


def test_image_without_boxes_gets_the_empty_value():
    assert detection_image_uncertainty([]) == 1.0
    assert detection_image_uncertainty(np.zeros((0, 3)), empty_value=0.7) == 0.7


def test_missed_object_term_rises_as_best_candidate_nears_threshold():
    # one-class box c = 0.05: H2(0.05) = 0.286397; missed term 0.05 / 0.1 = 0.5 wins the max
    assert detection_image_uncertainty([[0.05]], confident_threshold=0.1) == pytest.approx(0.5)
    # c = 0.08 -> 0.8
    assert detection_image_uncertainty([[0.08]], confident_threshold=0.1) == pytest.approx(0.8)
    # above the threshold there is no missed term: just H2(0.2) = 0.721928
    assert detection_image_uncertainty([[0.2]], confident_threshold=0.1) == pytest.approx(
        binary_entropy(0.2)
    )


def test_aggregations_combine_box_uncertainties_and_missed_term():
    boxes = [[0.5], [1.0]]  # box uncertainties 1.0 and 0.0, confident box present
    assert detection_image_uncertainty(boxes, aggregation="max") == pytest.approx(1.0)
    assert detection_image_uncertainty(boxes, aggregation="mean") == pytest.approx(0.5)
    assert detection_image_uncertainty(boxes, aggregation="sum") == pytest.approx(1.0)
    # no confident box (threshold 0.6): boxes [1.0, H2(0.3) = 0.881291] + missed 0.5 / 0.6
    weak = [[0.5], [0.3]]
    parts = [1.0, float(binary_entropy(0.3)), 0.5 / 0.6]
    assert detection_image_uncertainty(weak, aggregation="mean", confident_threshold=0.6) == pytest.approx(
        sum(parts) / 3
    )
    assert detection_image_uncertainty(weak, aggregation="sum", confident_threshold=0.6) == pytest.approx(
        sum(parts)
    )


def test_batch_uncertainty_matches_per_image_calls():
    images = [[], [[0.9, 0.1]], np.array([[0.3, 0.3], [0.6, 0.1]])]
    expected = [detection_image_uncertainty(boxes, aggregation="mean") for boxes in images]
    assert detection_batch_uncertainty(images, aggregation="mean") == pytest.approx(expected)


# --- diversity ------------------------------------------------------------------------


def test_k_center_picks_farthest_point_each_step():
    points = np.array([[0.0], [1.0], [2.0], [10.0]])
    # from {0}: farthest is 10 (index 3); then distances to {0, 10}: 1 -> 1, 2 -> 2
    assert k_center_greedy(points, 2, already_selected_indices=[0]) == [3, 2]


def test_k_center_returns_every_point_once_when_k_exceeds_n():
    points = np.random.default_rng(1).normal(size=(7, 3))
    chosen = k_center_greedy(points, 50, already_selected_indices=[2])
    assert sorted(chosen) == [0, 1, 3, 4, 5, 6]


def test_k_center_takes_duplicates_only_after_distinct_points():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0], [0.0, 0.0]])
    first_two = k_center_greedy(points, 2, seed=3)
    assert {tuple(points[i]) for i in first_two} == {(0.0, 0.0), (5.0, 5.0)}
    assert sorted(k_center_greedy(points, 5, seed=3)) == [0, 1, 2, 3, 4]


def test_k_center_handles_all_zero_embeddings():
    assert sorted(k_center_greedy(np.zeros((4, 8)), 4)) == [0, 1, 2, 3]


def test_k_center_is_deterministic_for_a_seed():
    points = np.random.default_rng(2).normal(size=(200, 16))
    assert k_center_greedy(points, 10, seed=5) == k_center_greedy(points, 10, seed=5)


def test_k_center_matches_brute_force_with_many_selected_centers(monkeypatch):
    # A tiny distance block forces the chunked path over the already-selected centers.
    monkeypatch.setattr("ml.sampling._DISTANCE_BLOCK_ELEMENTS", 50)
    rng = np.random.default_rng(4)
    points = rng.normal(size=(60, 5))
    selected = list(range(0, 60, 3))
    chosen = k_center_greedy(points, 5, already_selected_indices=selected)

    centers = list(selected)
    expected = []
    for _ in range(5):
        d = np.linalg.norm(points[:, None] - points[centers][None], axis=2).min(axis=1)
        d[centers] = -1
        expected.append(int(np.argmax(d)))
        centers.append(expected[-1])
    assert chosen == expected


def test_hybrid_selects_only_from_the_most_uncertain_pool():
    rng = np.random.default_rng(0)
    uncertainty = rng.random(100)
    embeddings = rng.normal(size=(100, 4))
    chosen = hybrid_select(uncertainty, embeddings, 5, pool_size=20)
    pool = set(np.argsort(-uncertainty)[:20].tolist())
    assert len(set(chosen)) == 5 and set(chosen) <= pool
    assert chosen[0] == int(np.argmax(uncertainty))


def test_hybrid_prefers_diverse_points_within_the_pool():
    # pool = indices 0..2 (most uncertain); 1 duplicates 0, so the second pick is 2
    embeddings = np.array([[0.0], [0.0], [3.0], [9.0]])
    uncertainty = np.array([0.9, 0.8, 0.7, 0.1])
    assert hybrid_select(uncertainty, embeddings, 2, pool_size=3) == [0, 2]


def test_hybrid_measures_diversity_from_already_selected_points():
    # index 3 is labeled at 0.0; pool {0, 1, 2}: 2 (at 5.0) is farthest from it
    embeddings = np.array([[0.1], [0.2], [5.0], [0.0]])
    uncertainty = np.array([0.9, 0.8, 0.7, 1.0])
    assert hybrid_select(uncertainty, embeddings, 1, pool_size=3, already_selected_indices=[3]) == [2]


# --- cold start and random arm --------------------------------------------------------


def test_random_priorities_are_a_seeded_permutation_of_evenly_spaced_values():
    p, is_random = queue_priorities(strategy="random", num_items=5, seed=1)
    assert sorted(p.tolist()) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert np.array_equal(p, queue_priorities(strategy="random", num_items=5, seed=1)[0])
    assert is_random.all()


def test_simple_features_have_fixed_size_for_any_image_shape():
    rng = np.random.default_rng(0)
    for image in (
        rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
        rng.integers(0, 256, (20, 30), dtype=np.uint8),
        rng.integers(0, 256, (20, 30, 4), dtype=np.uint8),
        rng.integers(0, 256, (2000, 1500, 3), dtype=np.uint8),
    ):
        features = simple_image_features(image)
        assert features.shape == (SIMPLE_FEATURE_SIZE,) and features.dtype == np.float32
        assert np.all(np.isfinite(features))


def test_simple_features_hand_computed_for_a_flat_red_image():
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    image[..., 0] = 255
    f = simple_image_features(image)
    # red histogram: all in the last bin; green and blue: all in the first; each / sqrt(3)
    hist = np.zeros(24)
    hist[7] = hist[8] = hist[16] = 1 / math.sqrt(3)
    assert f[:24] == pytest.approx(hist, abs=1e-6)
    # gray = 0.299 * 255 everywhere -> thumbnail 0.299, scaled by 1/8
    assert f[24:88] == pytest.approx(np.full(64, 0.299 / 8), abs=1e-6)
    assert f[88] == 0.0  # no edges


def test_simple_features_see_edges_and_tell_images_apart():
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    assert simple_image_features(stripes)[88] > 0.9
    assert np.linalg.norm(simple_image_features(stripes) - simple_image_features(flat)) > 0.1


# --- queue ----------------------------------------------------------------------------


def _queue_order(priorities: np.ndarray) -> list[int]:
    return np.argsort(-priorities, kind="stable").tolist()


def test_uncertainty_queue_serves_most_uncertain_first():
    u = np.array([0.1, 0.9, 0.5, 0.7])
    priorities, is_random = queue_priorities(strategy="entropy", uncertainty=u)
    assert _queue_order(priorities) == [1, 3, 2, 0]
    assert priorities.tolist() == pytest.approx([0.0, 1.0, 1 / 3, 2 / 3])
    assert not is_random.any()


def test_random_picks_take_evenly_spread_queue_positions():
    # n = 10, share 0.2 -> 2 random picks at positions floor(0.5 * 5) = 2 and floor(1.5 * 5) = 7
    u = np.linspace(1.0, 0.1, 10)  # item i ranks i-th without a random arm
    priorities, is_random = queue_priorities(strategy="margin", uncertainty=u, random_share=0.2, seed=7)
    order = _queue_order(priorities)
    assert is_random.sum() == 2
    assert [pos for pos, item in enumerate(order) if is_random[item]] == [2, 7]
    ranked = [item for item in order if not is_random[item]]
    assert ranked == sorted(ranked)  # the rest keeps the uncertainty order


def test_random_share_holds_in_every_queue_prefix():
    n, share = 1000, 0.1
    priorities, is_random = queue_priorities(
        strategy="least_confidence", uncertainty=np.random.default_rng(0).random(n), random_share=share
    )
    picks = is_random[_queue_order(priorities)]
    prefix_counts = np.cumsum(picks)
    assert np.all(np.abs(prefix_counts - share * np.arange(1, n + 1)) <= 1)


def test_queue_is_deterministic_for_a_seed_and_changes_with_it():
    u = np.random.default_rng(0).random(50)
    a = queue_priorities(strategy="entropy", uncertainty=u, random_share=0.3, seed=1)
    b = queue_priorities(strategy="entropy", uncertainty=u, random_share=0.3, seed=1)
    c = queue_priorities(strategy="entropy", uncertainty=u, random_share=0.3, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_random_strategy_marks_every_item_random():
    priorities, is_random = queue_priorities(strategy="random", num_items=6, seed=3)
    assert is_random.all()
    assert sorted(priorities.tolist()) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_diversity_queue_follows_k_center_order_then_distance():
    points = np.array([[0.0], [1.0], [2.0], [10.0], [4.0]])
    labeled = np.array([[0.0]])
    # from labeled 0.0: pick 10 (3), then 4.0 (4) with selection_size 2; the rest by distance
    # to {0, 10, 4}: 2.0 -> 2, 1.0 -> 1, 0.0 -> 0
    priorities, _ = queue_priorities(
        strategy="diversity", embeddings=points, labeled_embeddings=labeled, selection_size=2
    )
    assert _queue_order(priorities) == [3, 4, 2, 1, 0]


def test_diversity_queue_keeps_unlabeled_copies_of_labeled_images():
    # 0 and 1 duplicate the labeled point: distance 0, served last but still queued
    points = np.array([[1.3], [1.3], [5.7]])
    priorities, _ = queue_priorities(
        strategy="diversity", embeddings=points, labeled_embeddings=np.array([[1.3]]), selection_size=1
    )
    assert _queue_order(priorities) == [2, 0, 1]


def test_hybrid_queue_follows_selection_then_uncertainty():
    embeddings = np.array([[0.0], [0.0], [3.0], [9.0]])
    u = np.array([0.9, 0.8, 0.7, 0.1])
    priorities, _ = queue_priorities(
        strategy="hybrid", uncertainty=u, embeddings=embeddings, selection_size=2, pool_factor=1.5
    )
    # selection over pool {0, 1, 2}: [0, 2]; the rest by uncertainty: 1, 3
    assert _queue_order(priorities) == [0, 2, 1, 3]


def test_queue_rejects_missing_inputs_and_bad_share():
    with pytest.raises(ValueError):
        queue_priorities(strategy="hybrid", uncertainty=np.ones(3))
    with pytest.raises(ValueError):
        queue_priorities(strategy="entropy", uncertainty=np.ones(3), random_share=1.5)


def test_empty_queue_is_empty():
    priorities, is_random = queue_priorities(strategy="entropy", uncertainty=np.zeros(0), random_share=0.5)
    assert priorities.shape == (0,) and is_random.shape == (0,)


@pytest.mark.parametrize("aggregation", ["max", "mean", "sum"])
@pytest.mark.parametrize("measure", ["least_confidence", "margin", "entropy"])
def test_batch_detection_scores_follow_the_formula_per_image(measure, aggregation):
    """The vectorised batch against the docstring's formula written out per image, on empty
    images, weak-only images (missed-object term), confident ones and mixed class counts."""
    rng = np.random.default_rng(7)
    images = [rng.uniform(0, rng.choice([0.4, 1.0]), size=(int(rng.integers(0, 5)), int(rng.choice([2, 3]))))
              for _ in range(200)]

    def reference(boxes):
        if len(boxes) == 0:
            return 1.0
        values = list(detection_box_uncertainty(boxes, measure=measure))
        if boxes.max() < 0.5:
            values.append(boxes.max() / 0.5)
        return {"max": max, "mean": lambda v: sum(v) / len(v), "sum": sum}[aggregation](values)

    np.testing.assert_allclose(detection_batch_uncertainty(images, measure=measure, aggregation=aggregation),
                               [reference(b) for b in images], rtol=1e-12, atol=1e-12)


# --- segmentation -----------------------------------------------------------------------


def test_an_instance_is_certain_only_when_its_class_and_its_mask_are():
    from ml.sampling import detection_box_uncertainty, segmentation_instance_uncertainty

    scores = np.array([[0.99, 0.01], [0.99, 0.01], [0.55, 0.5]])
    class_term = detection_box_uncertainty(scores, measure="margin")
    combined = segmentation_instance_uncertainty(scores, [0.0, 0.8, 0.0], measure="margin")
    assert combined[0] == pytest.approx(class_term[0])  # a sure mask adds nothing
    assert combined[1] == pytest.approx(1 - (1 - class_term[1]) * 0.2)  # an unsure mask raises it
    assert combined[1] > 0.8 > class_term[1]
    assert combined[2] == pytest.approx(class_term[2]) and combined[2] > combined[0]


def test_segmentation_image_uncertainty_aggregates_instances_as_detection_does():
    from ml.sampling import (
        detection_batch_uncertainty,
        segmentation_image_uncertainty,
        segmentation_instance_uncertainty,
    )

    scores, masks = np.array([[0.9, 0.05], [0.7, 0.2]]), np.array([0.1, 0.6])
    per_instance = segmentation_instance_uncertainty(scores, masks, measure="margin")
    assert segmentation_image_uncertainty(scores, masks, measure="margin", aggregation="max") == pytest.approx(
        per_instance.max())
    assert segmentation_image_uncertainty(scores, masks, measure="margin", aggregation="mean") == pytest.approx(
        per_instance.mean())
    assert segmentation_image_uncertainty(np.zeros((0, 2)), [], measure="margin") == 1.0  # nothing found
    batch = detection_batch_uncertainty([scores, scores[:1]], measure="margin", mask_uncertainty=[masks, masks[:1]])
    assert batch[1] == pytest.approx(per_instance[0])
    with pytest.raises(ValueError, match="one value per instance"):
        detection_batch_uncertainty([scores], mask_uncertainty=[masks[:1]])
