"""Learning-efficiency simulation: replay labeling on a fully labeled data set with an oracle.

Django-free. Every strategy starts from the same random seed set; each round retrains a
fresh model on the labels so far, evaluates it on the fixed test split, then asks the
strategy for the next K images of the pool, whose labels the oracle reveals. The result is
one learning curve per strategy: metric vs number of labels.

Weights are selected on the test split, as production selects them on the validation split
(the same role); the optimism this adds is the same for every strategy.
"""
from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from training.ml.base import DatasetSpec, ImagePrediction, Item, TrainParams, load_backend
from training.ml.sampling import (
    MEASURES,
    STRATEGIES,
    classification_uncertainty,
    detection_batch_uncertainty,
    queue_priorities,
)

CSV_FIELDS = ["strategy", "round", "labels", "metric", "value", "train_seconds"]


@dataclass
class SimulationConfig:
    strategies: Sequence[str] = ("random", "entropy")
    seed_size: int = 20
    batch_size: int = 20  # K: labels bought per round
    rounds: int = 5  # selection rounds after the seed round
    params: TrainParams = field(default_factory=TrainParams)
    predict_batch: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
        if self.seed_size < 1 or self.batch_size < 1 or self.rounds < 0:
            raise ValueError("seed_size and batch_size must be positive, rounds not negative")


def _uncertainty(task: str, preds: list[ImagePrediction], measure: str) -> np.ndarray:
    if task == "classification":
        return classification_uncertainty(np.stack([p.probs for p in preds]), measure)
    return detection_batch_uncertainty([p.class_scores for p in preds], measure=measure)


def _select(
    strategy: str, task: str, backend, pool: list[Item], labeled: list[Item], k: int, config: SimulationConfig,
    round_no: int,
) -> list[int]:
    """Indices into ``pool`` of the next ``k`` images the strategy would send to labelers."""
    seed = config.seed * 1000 + round_no
    if strategy == "random":
        priorities, _ = queue_priorities(strategy="random", num_items=len(pool), seed=seed)
        return np.argsort(-priorities, kind="stable")[:k].tolist()
    preds = list(backend.predict([item.path for item in pool], config.predict_batch))
    bad = [p.path for p in preds if p.error]
    if bad:
        raise ValueError(f"cannot read pool images: {bad[:3]}")
    measure = strategy if strategy in MEASURES else "entropy"
    uncertainty = _uncertainty(task, preds, measure)
    embeddings = labeled_embeddings = None
    if strategy in ("diversity", "hybrid"):
        embeddings = np.stack([p.embedding for p in preds])
        labeled_preds = backend.predict([item.path for item in labeled], config.predict_batch)
        labeled_embeddings = np.stack([p.embedding for p in labeled_preds])
    priorities, _ = queue_priorities(
        strategy=strategy, uncertainty=uncertainty, embeddings=embeddings, labeled_embeddings=labeled_embeddings,
        seed=seed, selection_size=k,
    )
    return np.argsort(-priorities, kind="stable")[:k].tolist()


def simulate(
    *,
    kind: str,
    class_names: list[str],
    pool: list[Item],
    test: list[Item],
    config: SimulationConfig,
    workdir: str | Path,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run every strategy; return one row per (strategy, round) with the test metric."""
    task = "classification" if kind == "classifier" else "detection"
    if config.seed_size > len(pool):
        raise ValueError(f"seed set of {config.seed_size} is larger than the pool ({len(pool)} images)")
    seed_indices = set(np.random.default_rng(config.seed).choice(len(pool), config.seed_size, replace=False).tolist())
    rows: list[dict] = []
    for strategy in config.strategies:
        labeled = [pool[i] for i in sorted(seed_indices)]
        remaining = [item for i, item in enumerate(pool) if i not in seed_indices]
        for round_no in range(config.rounds + 1):
            backend = load_backend(kind, None, class_names, device=config.params.device)
            spec = DatasetSpec(task=task, class_names=class_names, train=labeled, val=test)
            started = time.perf_counter()
            result = backend.train(spec, replace(config.params), Path(workdir) / strategy / f"round-{round_no}")
            seconds = time.perf_counter() - started
            row = {
                "strategy": strategy, "round": round_no, "labels": len(labeled),
                "metric": result.metrics["primary_metric"], "value": float(result.metrics["primary"]),
                "train_seconds": round(seconds, 1),
            }
            rows.append(row)
            log(f"{strategy:>16} round {round_no}: {row['labels']:5d} labels -> {row['metric']} {row['value']:.4f}")
            if round_no == config.rounds or not remaining:
                break
            chosen = _select(strategy, task, backend, remaining, labeled, config.batch_size, config, round_no)
            chosen_set = set(chosen)
            labeled = labeled + [remaining[i] for i in chosen]  # the oracle reveals their labels
            remaining = [item for i, item in enumerate(remaining) if i not in chosen_set]
    return rows


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_curves(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """A PNG learning curve per strategy (metric vs labels). Matplotlib's bundled font only."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for strategy in dict.fromkeys(row["strategy"] for row in rows):
        points = [(row["labels"], row["value"]) for row in rows if row["strategy"] == strategy]
        ax.plot(*zip(*points), marker="o", label=strategy)
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
