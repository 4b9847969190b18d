"""Learning-efficiency simulation: replay labeling on a fully labeled data set with an oracle.

Django-free. It runs the live queue's own code: the queue model (ml/queue_model.py)
refit on every batch of labels, the cold start and the ranking (ml/selection.py),
at the batch size the project would use. Per seed and strategy, each round fits the head on
the labels so far, measures it on the fixed test split, ranks the pool and reveals the labels
of the next batch. The target is 95% of the metric the same model reaches on the whole pool;
labels-to-target is the first label count whose round reaches it (linearly interpolated
between rounds), and the saving compares a strategy's mean labels-to-target with random's.

Nothing is tuned on the test split: the head has no epochs to pick and one fixed
regularisation strength, and the test labels are read only to measure.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.metrics import json_finite
from ml.queue_model import NotEnoughLabels, fit_multiclass, fit_multilabel, head_metrics
from ml.sampling import STRATEGIES
from ml.selection import rank_pool

CSV_FIELDS = ["strategy", "seed", "round", "labels", "metric", "value"]
TARGET_SHARE = 0.95

# (labeled pool indices) -> test metric of a model trained on them; for a heavy model
# (a detector) measured instead of the head.
Evaluate = Callable[[np.ndarray], float]


@dataclass
class SimulationConfig:
    strategies: Sequence[str] = ("random", "margin", "hybrid")
    seeds: Sequence[int] = (0, 1, 2)
    batch_size: int = 10  # labels bought per round: the queue model refits after each batch
    max_labels: int = 1000
    random_share: float = 0.0  # the live queue's control arm; 0 measures each strategy pure
    target_share: float = TARGET_SHARE

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
        if self.batch_size < 1 or self.max_labels < self.batch_size:
            raise ValueError("batch_size must be positive and max_labels at least one batch")
        if not self.seeds:
            raise ValueError("give at least one seed")


@dataclass
class SimulationResult:
    rows: list[dict]
    full_pool: dict[int, float]  # seed -> metric of the model on the whole pool
    target: dict[int, float]  # seed -> target_share * full_pool
    labels_to_target: dict[str, dict[int, float]] = field(default_factory=dict)  # inf: never reached

    def summary(self) -> list[dict]:
        """Per strategy: mean and spread of labels-to-target over seeds and the saving
        against random (1 - strategy / random, in percent), with the per-seed values."""
        out = []
        random_mean = _mean(self.labels_to_target.get("random", {}).values())
        for strategy, by_seed in self.labels_to_target.items():
            values = list(by_seed.values())
            mean = _mean(values)
            saving = None
            if strategy != "random" and math.isfinite(random_mean) and math.isfinite(mean):
                saving = 100.0 * (1.0 - mean / random_mean)
            finite = [v for v in values if math.isfinite(v)]
            out.append({
                "strategy": strategy, "labels_to_target_mean": mean,
                "labels_to_target_std": float(np.std(finite)) if len(finite) == len(values) else math.inf,
                "per_seed": values, "saving_vs_random_percent": saving,
            })
        return out


    def as_json(self) -> dict:
        """Full-pool metric, target and summary per strategy; "never reached" is null."""
        return json_finite({"full_pool": self.full_pool, "target": self.target, "strategies": self.summary()})


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.inf


def _fit(task: str, x: np.ndarray, targets: np.ndarray, classes: Sequence[int], seed: int):
    if task == "classification":
        return fit_multiclass(x, targets, classes, seed=seed)
    return fit_multilabel(x, targets, classes, seed=seed)


def labels_to_target(points: Sequence[tuple[int, float]], target: float) -> float:
    """First label count at which the curve reaches ``target``, interpolated linearly
    between the two rounds around the crossing; inf when it never does."""
    previous = None
    for labels, value in points:
        if value >= target:
            if previous is None or previous[1] >= target:
                return float(labels)
            (l0, v0) = previous
            return float(l0 + (labels - l0) * (target - v0) / (value - v0))
        previous = (labels, value)
    return math.inf


def simulate(
    *,
    task: str,
    classes: Sequence[int],
    pool_embeddings: np.ndarray,
    pool_targets: np.ndarray,
    test_embeddings: np.ndarray,
    test_targets: np.ndarray,
    config: SimulationConfig,
    evaluate: Evaluate | None = None,
    log: Callable[[str], None] = print,
) -> SimulationResult:
    """Run every strategy for every seed; one row per (strategy, seed, round).

    task "classification": targets are class ids; "detection": targets are (n, C) class
    presence for the multi-label queue head, and ``evaluate`` should train and measure the
    detector on the chosen images (without it the head's own metric is reported).
    """
    if task not in ("classification", "detection"):
        raise ValueError(f"unknown task {task!r}")
    pool_x = np.asarray(pool_embeddings, dtype=np.float32)
    test_x = np.asarray(test_embeddings, dtype=np.float32)
    if len(pool_x) != len(pool_targets) or len(test_x) != len(test_targets):
        raise ValueError("one target per embedding row")
    max_labels = min(config.max_labels, len(pool_x))

    def measure(indices: np.ndarray, seed: int) -> tuple[str, float]:
        if evaluate is not None:
            return "evaluate", float(evaluate(indices))
        try:
            head = _fit(task, pool_x[indices], pool_targets[indices], classes, seed)
        except NotEnoughLabels:
            return "macro_f1", 0.0
        metrics = head_metrics(head, test_x, test_targets)
        return str(metrics["primary_metric"]), float(metrics["primary"])

    rows: list[dict] = []
    full_pool, target = {}, {}
    result = SimulationResult(rows, full_pool, target)
    for seed in config.seeds:
        _, full = measure(np.arange(len(pool_x)), seed)
        full_pool[seed], target[seed] = full, config.target_share * full
        log(f"seed {seed}: full pool ({len(pool_x)} labels) -> {full:.4f}; target {target[seed]:.4f}")
        for strategy in config.strategies:
            labeled = np.zeros(0, dtype=np.int64)
            points: list[tuple[int, float]] = []
            round_no = 0
            while True:
                if len(labeled):
                    metric, value = measure(labeled, seed)
                    rows.append({"strategy": strategy, "seed": seed, "round": round_no, "labels": len(labeled),
                                 "metric": metric, "value": value})
                    points.append((len(labeled), value))
                if len(labeled) >= max_labels:
                    break
                labeled = np.concatenate([labeled, _next_batch(task, strategy, labeled, pool_x, pool_targets,
                                                               classes, config, seed * 100_003 + round_no)])
                round_no += 1
            result.labels_to_target.setdefault(strategy, {})[seed] = labels_to_target(points, target[seed])
            reached = result.labels_to_target[strategy][seed]
            log(f"seed {seed} {strategy:>16}: final {points[-1][1]:.4f}, labels to target "
                f"{reached if math.isfinite(reached) else 'not reached'}")
    return result


def _next_batch(task, strategy, labeled, pool_x, pool_targets, classes, config, seed) -> np.ndarray:
    """The pool indices the live queue would serve next: fit the head on the labels so far
    (none yet: cold start), rank what is left, take the top batch."""
    remaining = np.setdiff1d(np.arange(len(pool_x)), labeled)
    head = None
    if len(labeled):
        try:
            head = _fit(task, pool_x[labeled], pool_targets[labeled], classes, seed)
        except NotEnoughLabels:
            head = None
    ranking = rank_pool(
        strategy=strategy, pool_embeddings=pool_x[remaining], labeled_embeddings=pool_x[labeled],
        head=head, batch_size=config.batch_size, random_share=config.random_share, seed=seed,
    )
    take = min(config.batch_size, len(remaining))
    return remaining[np.argsort(-ranking.priorities, kind="stable")[:take]]


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def mean_curves(rows: list[dict]) -> dict[str, list[tuple[int, float, float]]]:
    """Per strategy: (labels, mean, std over seeds) at each label count every seed reached."""
    by: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        by.setdefault(row["strategy"], {}).setdefault(row["labels"], []).append(row["value"])
    seeds = len({row["seed"] for row in rows})
    return {
        strategy: [(labels, float(np.mean(v)), float(np.std(v))) for labels, v in sorted(points.items())
                   if len(v) == seeds]
        for strategy, points in by.items()
    }


def plot_curves(rows: list[dict], path: str | Path, title: str = "", targets: Sequence[float] = ()) -> Path:
    """A PNG: mean metric vs labels per strategy with a band of one standard deviation over
    seeds, and the target line. Matplotlib's bundled font only."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for strategy, points in mean_curves(rows).items():
        if not points:
            continue
        labels, mean, std = (np.array(column) for column in zip(*points))
        ax.plot(labels, mean, label=strategy)
        ax.fill_between(labels, mean - std, mean + std, alpha=0.2)
    if targets:
        ax.axhline(float(np.mean(targets)), color="grey", linestyle="--", label="target (95% of full pool)")
    metric = rows[0]["metric"] if rows else "metric"
    ax.set_xlabel("labels")
    ax.set_ylabel(f"{metric} on the test split")
    ax.set_title(title or f"Learning curves ({metric})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
