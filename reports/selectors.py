"""Report queries. Each `report_<name>(project=...)` returns a JSON-ready dict whose
"tables" hold the rows behind its charts (the CSV download serves one of them) plus, where
it applies, a plain "sentence" saying what the numbers mean.

They read the precomputed aggregates (aggregates.py) and the few ModelVersion rows, never
the annotation table, so they stay fast at millions of images.
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from core.models import Image, LabelClass, ModelVersion, Project, TaskType
from labeling.taxonomy import class_ancestors, class_at_level
from ml.metrics import cohen_kappa, confusion_collapsed, confusion_metrics

from . import forecast
from .models import ReportAgreementPair, ReportDailyCounts, ReportFlagReason
from .prelabel_quality import PRELABEL_SCORE_THRESHOLD

QUALITY_FIELDS = ("prelabeled", "accepted_unchanged", "boxes_predicted", "boxes_final", "boxes_added",
                  "boxes_deleted", "boxes_moved", "boxes_matched", "iou_shift_sum", "class_flips",
                  "vertex_shift_sum", "vertices_compared")
WORK_FIELDS = ("submissions", "labeled", "rejected", "skipped", "flagged", "time_spent_ms")


def _ratio(num, den, digits: int = 4):
    return round(num / den, digits) if den else None


def _usernames(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    return {i: names.get(i, f"user {i}") for i in ids}


def _class_names(project: Project) -> dict[int, str]:
    return dict(LabelClass.objects.filter(project=project).values_list("pk", "name"))


def _sums(queryset, group_by: tuple[str, ...], fields: tuple[str, ...]) -> list[dict]:
    return list(
        queryset.values(*group_by).annotate(**{f: Sum(f) for f in fields}).order_by(*group_by)
    )


def _versions(project: Project):
    return ModelVersion.objects.filter(project=project).order_by("number").only(
        "number", "backend", "status", "is_deployed", "created_at", "dataset_size", "validation_size",
        "primary_metric", "metrics", "class_ids")


# --- accuracy ----------------------------------------------------------------------------


def _per_class_rows(version: ModelVersion, class_names: dict[int, str]) -> list[dict]:
    """Per-class rows from the version's metrics, whichever shape the evaluator stored:
    a "per_class" list with class_index, or a "per_class_ap" list/dict of AP values."""
    metrics = version.metrics or {}
    class_ids = version.class_ids or []

    def name_of(index):
        class_id = class_ids[index] if isinstance(index, int) and index < len(class_ids) else index
        return class_id, class_names.get(class_id, str(class_id))

    rows = []
    for entry in metrics.get("per_class") or []:
        class_id, name = name_of(entry.get("class_index"))
        rows.append({"version": version.number, "class_id": class_id, "class_name": name,
                     **{k: v for k, v in entry.items() if k != "class_index"}})
    if not rows:
        ap = metrics.get("per_class_ap") or []
        items = ap.items() if isinstance(ap, dict) else enumerate(ap)
        for key, value in items:
            key = int(key) if str(key).isdigit() else key
            class_id, name = name_of(key)
            rows.append({"version": version.number, "class_id": class_id, "class_name": name, "ap50_95": value})
    return rows


def _at_level(version: ModelVersion, at_level: dict[int, int], class_names: dict[int, str]) -> tuple[dict, list]:
    """The version's confusion matrix with each class read as its ancestor at the level,
    the metrics recomputed from it, and its per-class rows at that level."""
    groups: list[int] = []
    index = []
    for class_id in version.class_ids or []:
        group = at_level.get(class_id, class_id)  # a deleted class stands for itself
        if group not in groups:
            groups.append(group)
        index.append(groups.index(group))
    matrix = confusion_collapsed(version.metrics["confusion_matrix"], index, len(groups))
    scores = confusion_metrics(matrix)
    rows = [{"version": version.number, "class_id": groups[row["class_index"]],
             "class_name": class_names.get(groups[row["class_index"]], str(groups[row["class_index"]])),
             **{k: v for k, v in row.items() if k != "class_index"}} for row in scores["per_class"]]
    confusion = {"version": version.number, "classes": [class_names.get(i, str(i)) for i in groups],
                 "matrix": matrix, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
    return confusion, rows


def report_accuracy(*, project: Project, level: int | None = None) -> dict:
    """Versions, per-class rows and confusion matrices. With `level` (0: the top of the
    class tree), each class of a confusion matrix counts as its ancestor at that depth:
    the matrices are summed into those groups and accuracy, macro-F1 and the per-class
    rows are recomputed from them (`level_accuracy`, `level_macro_f1` on the version
    rows); versions without a matrix (detectors, queue heads) keep their own rows.
    `levels`: how many levels the class tree has (1 when flat)."""
    class_names = _class_names(project)
    at_level = class_at_level(project, level) if level is not None else None
    versions, per_class, confusion = [], [], []
    for v in _versions(project):
        metrics = v.metrics or {}
        row = {
            "version": v.number, "status": v.status, "is_deployed": v.is_deployed,
            "created_at": v.created_at.isoformat(), "train_labels": v.dataset_size,
            "validation_images": v.validation_size, "primary_metric": v.primary_metric,
            **{k: metrics.get(k) for k in ("map50_95", "map50", "mask_map50_95", "mask_map50", "precision",
                                           "recall", "accuracy", "macro_f1")
               if k in metrics},
        }
        versions.append(row)
        if at_level is not None and metrics.get("confusion_matrix"):
            matrix, rows = _at_level(v, at_level, class_names)
            row.update(level_accuracy=matrix["accuracy"], level_macro_f1=matrix["macro_f1"])
            confusion.append(matrix)
            per_class.extend(rows)
            continue
        per_class.extend(_per_class_rows(v, class_names))
        if metrics.get("confusion_matrix"):
            ids = v.class_ids or []
            confusion.append({"version": v.number, "classes": [class_names.get(i, str(i)) for i in ids],
                              "matrix": metrics["confusion_matrix"]})
    primary = {TaskType.DETECTION: "map50_95", TaskType.SEGMENTATION: "mask_map50_95"}.get(
        project.task_type, "accuracy")
    if versions:
        # The evaluator names its primary metric; fall back to the task type's usual one.
        primary = (v.metrics or {}).get("primary_metric") or primary
    depths = [len(chain) for chain in class_ancestors(project).values()]
    return {"primary_metric": primary, "level": level, "levels": max(depths, default=0), "confusion_matrices": confusion,
            "tables": {"versions": versions, "per_class": per_class}}


# --- learning curve ---------------------------------------------------------------------


def _today() -> date:
    return timezone.now().date()


def _arm_curves(versions: list[ModelVersion], target: float | None) -> tuple[list[dict], list[dict]]:
    """The queue model's arm comparison at each fit (metrics.arms: heads on the random arm's
    training labels and on as many of the strategy arm's, on the validation labels), and per
    arm the first label count whose head reached ``target`` (default: 95% of the best queue-
    model metric so far)."""
    curve = [{"version": v.number, "labels": v.metrics["arms"]["labels"], "random": v.metrics["arms"]["random"],
              "strategy": v.metrics["arms"]["strategy"]}
             for v in versions if v.backend == "linear" and (v.metrics or {}).get("arms", {}).get("random") is not None]
    best = max((v.primary_metric for v in versions if v.backend == "linear" and v.primary_metric is not None),
               default=None)
    goal = target if target is not None else (0.95 * best if best is not None else None)
    reached = []
    for arm in ("strategy", "random"):
        first = next((row["labels"] for row in curve if goal is not None and row[arm] >= goal), None)
        reached.append({"arm": arm, "target": goal, "labels_to_target": first})
    return curve, reached


def report_learning_curve(*, project: Project) -> dict:
    versions = list(_versions(project))
    points = [{"version": v.number, "backend": v.backend, "train_labels": v.dataset_size,
               "primary_metric": v.primary_metric, "created_at": v.created_at.isoformat()}
              for v in versions if v.primary_metric is not None]
    labeled, pace = _labels_and_pace(project)
    train_share = 1 - project.validation_share
    # The fitted curve and its forecast follow the trained models; the queue model's versions
    # (a linear head refit every few labels) are a family of their own, compared by arm below.
    trained = [p for p in points if p["backend"] != "linear"] or points
    arm_curve, arm_targets = _arm_curves(versions, project.target_metric)
    fit = forecast.learning_curve_fit(
        [(p["train_labels"], p["primary_metric"]) for p in trained], project.target_metric,
        current_labels=int(labeled * train_share), pace_per_day=pace * train_share, today=_today())
    arms = []
    rows = _sums(ReportDailyCounts.objects.filter(project=project, prelabeled__gt=0).exclude(arm="none"),
                 ("model_version_id", "arm"), ("prelabeled", "accepted_unchanged"))
    numbers = {v.pk: v.number for v in versions}
    for row in rows:
        arms.append({"version": numbers.get(row["model_version_id"]), "arm": row["arm"],
                     "prelabeled": row["prelabeled"],
                     "acceptance_rate": _ratio(row["accepted_unchanged"], row["prelabeled"])})
    return {
        "target_metric": project.target_metric,
        "random_share": project.random_share,
        "fit": fit,
        "sentence": fit["sentence"],
        "tables": {"versions": points, "fit_curve": fit["curve"], "arms": arms, "arm_curve": arm_curve,
                   "arm_labels_to_target": arm_targets},
    }


# --- pre-label quality ------------------------------------------------------------------


def _quality_row(sums: dict) -> dict:
    n = sums["prelabeled"]
    return {
        "prelabeled": n,
        "accepted_unchanged": sums["accepted_unchanged"],
        "acceptance_rate": _ratio(sums["accepted_unchanged"], n),
        "boxes_predicted": sums["boxes_predicted"],
        "boxes_final": sums["boxes_final"],
        "boxes_added": sums["boxes_added"],
        "boxes_deleted": sums["boxes_deleted"],
        "boxes_moved": sums["boxes_moved"],
        "class_flips": sums["class_flips"],
        "mean_iou_shift": _ratio(sums["iou_shift_sum"], sums["boxes_matched"]),
        "mean_vertex_shift_px": _ratio(sums["vertex_shift_sum"], sums["vertices_compared"]),
        "edits_per_image": _ratio(sums["boxes_added"] + sums["boxes_deleted"] + sums["boxes_moved"]
                                  + sums["class_flips"], n, 3),
    }


def report_prelabel_quality(*, project: Project) -> dict:
    base = ReportDailyCounts.objects.filter(project=project, prelabeled__gt=0)
    numbers = dict(ModelVersion.objects.filter(project=project).values_list("pk", "number"))
    by_version = [{"version": numbers.get(r["model_version_id"]), **_quality_row(r)}
                  for r in _sums(base, ("model_version_id",), QUALITY_FIELDS)]
    annotator_rows = _sums(base, ("annotator_id",), QUALITY_FIELDS)
    names = _usernames(r["annotator_id"] for r in annotator_rows)
    by_annotator = [{"annotator": names.get(r["annotator_id"]), **_quality_row(r)} for r in annotator_rows]
    by_version.sort(key=lambda r: r["version"] or 0)
    return {"score_threshold": PRELABEL_SCORE_THRESHOLD, "tables": {"by_version": by_version, "by_annotator": by_annotator}}


# --- team -------------------------------------------------------------------------------


def _work_row(sums: dict) -> dict:
    hours = sums["time_spent_ms"] / 3_600_000
    return {
        "submissions": sums["submissions"], "labeled": sums["labeled"], "rejected": sums["rejected"],
        "skipped": sums["skipped"],
        "flagged": sums["flagged"], "hours": round(hours, 3),
        "images_per_hour": _ratio(sums["submissions"], hours, 1),
        "seconds_per_image": _ratio(sums["time_spent_ms"] / 1000, sums["submissions"], 1),
    }


TEAM_DAILY_WINDOW_DAYS = 30


def _add_up(rows: list[dict], key) -> list[tuple]:
    totals: dict = {}
    for row in rows:
        total = totals.setdefault(key(row), dict.fromkeys(WORK_FIELDS, 0))
        for field in WORK_FIELDS:
            total[field] += row[field]
    return sorted(totals.items(), key=lambda item: item[0])


def report_team(*, project: Project) -> dict:
    """Per annotator (all time), per day (the team), and per annotator and day over the last
    TEAM_DAILY_WINDOW_DAYS days (a row per person-day grows quickly). One query: the
    person-day sums, added up here."""
    person_days = _sums(ReportDailyCounts.objects.filter(project=project, submissions__gt=0),
                        ("day", "annotator_id"), WORK_FIELDS)
    names = _usernames(r["annotator_id"] for r in person_days)
    since = _today() - timedelta(days=TEAM_DAILY_WINDOW_DAYS - 1)
    return {
        "daily_window_days": TEAM_DAILY_WINDOW_DAYS,
        "tables": {
            "by_annotator": [{"annotator": names.get(annotator), **_work_row(sums)}
                             for annotator, sums in _add_up(person_days, lambda r: r["annotator_id"])],
            "by_day": [{"day": day.isoformat(), **_work_row(sums)}
                       for day, sums in _add_up(person_days, lambda r: r["day"])],
            "by_annotator_day": [
                {"day": r["day"].isoformat(), "annotator": names.get(r["annotator_id"]), **_work_row(r)}
                for r in person_days if r["day"] >= since
            ],
        },
    }


# --- agreement --------------------------------------------------------------------------


def kappa_from_cells(cells: list[tuple[int, int, int]]) -> float | None:
    """Cohen's kappa from (label_a, label_b, count) cells of a pair's confusion table."""
    cells = [c for c in cells if c[2] > 0]
    if not cells:
        return None
    a = np.repeat([c[0] for c in cells], [c[2] for c in cells])
    b = np.repeat([c[1] for c in cells], [c[2] for c in cells])
    labels = {v: i for i, v in enumerate(sorted(set(a) | set(b)))}
    return cohen_kappa([labels[x] for x in a], [labels[x] for x in b], len(labels))


def report_agreement(*, project: Project) -> dict:
    cells = list(ReportAgreementPair.objects.filter(project=project).values_list(
        "annotator_a", "annotator_b", "label_a", "label_b", "comparisons", "score_sum"))
    names = _usernames([c[0] for c in cells] + [c[1] for c in cells])
    # Objects (boxes, polygons) agree by F1 of one-to-one matches; classes by kappa.
    object_f1 = {TaskType.DETECTION: ("box_f1", "box F1"), TaskType.SEGMENTATION: ("mask_f1", "mask F1")}.get(
        project.task_type)
    pairs: dict[tuple[int, int], dict] = {}
    for a, b, la, lb, n, score in cells:
        pair = pairs.setdefault((a, b), {"comparisons": 0, "score": 0.0, "cells": []})
        pair["comparisons"] += n
        pair["score"] += score
        pair["cells"].append((la, lb, n))
    rows = []
    for (a, b), pair in sorted(pairs.items()):
        row = {"annotator_a": names.get(a), "annotator_b": names.get(b), "shared_images": pair["comparisons"],
               object_f1[0] if object_f1 else "percent_agreement": _ratio(pair["score"], pair["comparisons"])}
        if not object_f1:
            kappa = kappa_from_cells(pair["cells"])
            row["cohen_kappa"] = None if kappa is None else round(kappa, 4)
        rows.append(row)
    total = sum(p["comparisons"] for p in pairs.values())
    overall: dict = {"shared_images": total, "annotations_per_image": project.annotations_per_image}
    if object_f1:
        overall[object_f1[0]] = _ratio(sum(p["score"] for p in pairs.values()), total)
        measure = f"{object_f1[1]} at IoU 0.5 (same class)"
        value = overall[object_f1[0]]
    else:
        kappas = [r["cohen_kappa"] for r in rows if r["cohen_kappa"] is not None]
        # Light's kappa: the mean of the pairwise Cohen's kappas.
        overall["mean_cohen_kappa"] = round(float(np.mean(kappas)), 4) if kappas else None
        measure = "mean Cohen's kappa"
        value = overall["mean_cohen_kappa"]
    if total == 0:
        sentence = ("No image has labels from two annotators yet"
                    + (" (the project asks for one label an image)." if project.annotations_per_image == 1 else "."))
    else:
        sentence = f"Over {total:,} image pairs labeled by two annotators, the {measure} is {value:.2f}."
    return {"overall": overall, "sentence": sentence, "tables": {"pairs": rows}}


# --- flags ------------------------------------------------------------------------------


def report_flags(*, project: Project) -> dict:
    reasons = list(ReportFlagReason.objects.filter(project=project).order_by("-count", "reason")
                   .values("reason", "count"))
    base = ReportDailyCounts.objects.filter(project=project, flagged__gt=0)
    by_annotator = _sums(base, ("annotator_id",), ("flagged",))
    names = _usernames(r["annotator_id"] for r in by_annotator)
    return {"tables": {
        "reasons": reasons,
        "by_annotator": [{"annotator": names.get(r["annotator_id"]), "flagged": r["flagged"]} for r in by_annotator],
        "by_day": [{"day": r["day"].isoformat(), "flagged": r["flagged"]}
                   for r in _sums(base, ("day",), ("flagged",))],
    }}


# --- queue ------------------------------------------------------------------------------


def _daily_labels(project: Project) -> list[dict]:
    return _sums(ReportDailyCounts.objects.filter(project=project), ("day",), ("images_labeled", "images_imported"))


def _history(days: list[dict], today: date) -> list[float]:
    """Human first labels per calendar day, from the first such day through yesterday."""
    human = {d["day"]: d["images_labeled"] for d in days if d["images_labeled"]}
    if not human:
        return []
    start = min(human)
    return [float(human.get(start + timedelta(days=i), 0)) for i in range((today - start).days)]


def _labels_and_pace(project: Project) -> tuple[int, float]:
    days = _daily_labels(project)
    labeled = sum(d["images_labeled"] + d["images_imported"] for d in days)
    return labeled, forecast.recent_pace(_history(days, _today()))


IMAGE_COUNT_TTL_SECONDS = 60


def _image_count(project: Project) -> int:
    # Counting a million images takes ~100 ms; a total up to a minute old serves a
    # burn-down as well, so each process counts at most once a minute.
    return cache.get_or_set(f"reports:image-count:{project.pk}",
                            lambda: Image.objects.filter(project=project).count(), IMAGE_COUNT_TTL_SECONDS)


def report_queue(*, project: Project) -> dict:
    today = _today()
    days = _daily_labels(project)
    total = _image_count(project)
    burn_down, cumulative = [], 0
    for d in days:
        cumulative += d["images_labeled"] + d["images_imported"]
        burn_down.append({"day": d["day"].isoformat(), "labeled": d["images_labeled"],
                          "imported": d["images_imported"], "cumulative_labeled": cumulative,
                          "remaining": max(total - cumulative, 0)})
    remaining = max(total - cumulative, 0)
    history = _history(days, today)
    completion = forecast.completion_forecast(history, remaining, today=today, seed=project.pk)
    train_share = 1 - project.validation_share
    points = [(v.dataset_size, v.primary_metric) for v in _versions(project) if v.primary_metric is not None]
    target = forecast.learning_curve_fit(
        points, project.target_metric, current_labels=int(cumulative * train_share),
        pace_per_day=completion["pace_per_day"] * train_share, today=today)
    return {
        "images": total,
        "labeled": cumulative,
        "remaining": remaining,
        "completion": completion,
        "target": {k: v for k, v in target.items() if k != "curve"},
        "sentence": f"{completion['sentence']} {target['sentence']}",
        "tables": {"burn_down": burn_down, "forecast": completion["daily_forecast"]},
    }


REPORTS = {
    "accuracy": report_accuracy,
    "learning-curve": report_learning_curve,
    "prelabel-quality": report_prelabel_quality,
    "team": report_team,
    "agreement": report_agreement,
    "flags": report_flags,
    "queue": report_queue,
}
