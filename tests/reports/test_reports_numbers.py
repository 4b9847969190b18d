"""Django-free report numbers: pre-label diffs and forecasts, on hand-checked data."""
from datetime import date, timedelta

import numpy as np
import pytest

from reports.forecast import completion_forecast, learning_curve_fit
from reports.prelabel_quality import classification_diff, detection_diff


def box(x1, y1, x2, y2, label, score=None):
    b = {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label}
    if score is not None:
        b["score"] = score
    return b


PREDICTED = [
    box(0, 0, 10, 10, 1, 0.9),
    box(20, 20, 30, 30, 1, 0.8),
    box(50, 50, 60, 60, 2, 0.7),
    box(80, 80, 90, 90, 1, 0.1),  # below the display threshold: never shown
]
FINAL = [
    box(0, 0, 10, 10, 1),  # kept as is
    box(20, 20, 30, 32, 2),  # grown by 2 px (IoU 100/120) and relabeled
    box(100, 100, 110, 110, 1),  # drawn new
]  # and the box at 50..60 was deleted


def test_detection_diff_counts_added_deleted_moved_and_flipped_boxes():
    diff = detection_diff(PREDICTED, FINAL, accepted=False)
    assert (diff.boxes_predicted, diff.boxes_final) == (3, 3)
    assert (diff.added, diff.deleted, diff.moved, diff.matched, diff.class_flips) == (1, 1, 1, 2, 1)
    assert diff.iou_shift_sum == pytest.approx(1 - 100 / 120)
    assert diff.accepted_unchanged is False


def test_detection_diff_sees_an_exact_copy_of_the_shown_boxes_as_unchanged():
    shown = [{k: v for k, v in b.items() if k != "score"} for b in PREDICTED[:3]]
    diff = detection_diff(PREDICTED, shown, accepted=False)
    assert diff.accepted_unchanged
    assert (diff.added, diff.deleted, diff.moved, diff.class_flips, diff.matched) == (0, 0, 0, 0, 3)


def test_detection_diff_counts_a_small_nudge_as_moved_not_unchanged():
    nudged = [box(0, 0, 10, 10.5, 1)]  # IoU 100/105 < 0.99
    diff = detection_diff([box(0, 0, 10, 10, 1, 0.9)], nudged, accepted=False)
    assert (diff.moved, diff.accepted_unchanged) == (1, False)
    assert diff.iou_shift_sum == pytest.approx(1 - 100 / 105)


def test_accept_kind_is_unchanged_with_no_edits():
    diff = detection_diff(PREDICTED, [], accepted=True)
    assert diff.accepted_unchanged and diff.boxes_predicted == 3 and diff.deleted == 0


def test_classification_diff_compares_the_label_set_with_the_top_prediction():
    assert classification_diff([3], [3], accepted=False).accepted_unchanged
    flipped = classification_diff([3], [4], accepted=False)
    assert (flipped.accepted_unchanged, flipped.class_flips) == (False, 1)
    assert classification_diff([3], [3, 4], accepted=False).class_flips == 1


TODAY = date(2026, 11, 24)


def test_steady_pace_finishes_on_the_day_the_remaining_images_are_covered():
    result = completion_forecast([100.0] * 10, 1000, today=TODAY)
    # 100 a day from today: the 10th day, today + 9, labels the last of 1000.
    assert result["status"] == "ok"
    assert result["expected_date"] == (TODAY + timedelta(days=9)).isoformat()
    assert result["low_date"] == result["high_date"] == result["expected_date"]
    assert "about 100 images a day" in result["sentence"] and "1,000 images" in result["sentence"]


def test_noisy_pace_gives_a_band_around_the_naive_date():
    daily = list(np.random.default_rng(3).poisson(120, 60).astype(float))
    result = completion_forecast(daily, 3400, today=TODAY)
    naive = TODAY + timedelta(days=int(np.ceil(3400 / np.mean(daily[-14:]))) - 1)
    expected = date.fromisoformat(result["expected_date"])
    assert abs((expected - naive).days) <= 3
    assert date.fromisoformat(result["low_date"]) <= expected <= date.fromisoformat(result["high_date"])
    assert "80% interval" in result["sentence"]
    assert len(result["daily_forecast"]) == 60


@pytest.mark.parametrize(
    ("daily", "remaining", "status"),
    [([5.0, 3.0], 100, "insufficient_data"), ([5.0] * 10, 0, "done"), ([5.0] * 10 + [0.0] * 14, 100, "stalled")],
)
def test_forecast_says_so_instead_of_inventing_a_date(daily, remaining, status):
    result = completion_forecast(daily, remaining, today=TODAY)
    assert result["status"] == status
    assert result["expected_date"] is None
    assert result["sentence"]


def test_learning_curve_fit_recovers_a_known_power_law_and_its_target_label_count():
    # metric = 0.9 - 2 n^-0.5 reaches 0.85 at n = (2 / 0.05)^2 = 1600.
    points = [(n, 0.9 - 2 * n**-0.5) for n in (100, 200, 400, 800)]
    result = learning_curve_fit(points, 0.85, current_labels=800, pace_per_day=50, today=TODAY)
    assert result["status"] == "ok"
    assert result["params"]["a"] == pytest.approx(0.9, abs=1e-3)
    assert result["labels_needed"] == pytest.approx(1600, rel=0.01)
    assert result["labels_low"] <= result["labels_needed"] <= result["labels_high"]
    # 800 more labels at 50 a day: 16 days.
    assert result["expected_date"] == (TODAY + timedelta(days=16)).isoformat()


@pytest.mark.parametrize(
    ("points", "target", "status"),
    [
        ([(100, 0.5), (200, 0.6)], 0.9, "insufficient_data"),
        ([(100, 0.5), (200, 0.95)], 0.9, "reached"),
        ([(100, 0.5)], None, "no_target"),
        ([(n, 0.7 - 2 * n**-0.5) for n in (100, 200, 400, 800)], 0.8, "unreachable"),
    ],
)
def test_learning_curve_fit_is_honest_about_what_it_cannot_say(points, target, status):
    result = learning_curve_fit(points, target, current_labels=900, pace_per_day=10, today=TODAY)
    assert result["status"] == status
    assert result["labels_needed"] is None
