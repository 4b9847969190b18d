"""What both learning-curve benchmarks print and record: per-seed results merged, the
labels-to-target table with the saving against random, the mean curve, the machine."""
from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence

from training.simulation import SimulationResult, mean_curves


def merge(results: Iterable[SimulationResult]) -> SimulationResult:
    """One result from runs of one seed each (each seed drew its own pool)."""
    merged = SimulationResult(rows=[], full_pool={}, target={})
    for result in results:
        merged.rows += result.rows
        merged.full_pool.update(result.full_pool)
        merged.target.update(result.target)
        for strategy, by_seed in result.labels_to_target.items():
            merged.labels_to_target.setdefault(strategy, {}).update(by_seed)
    return merged


def _labels(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) else "not reached"


def tables(result: SimulationResult, metric: str, checkpoints: Sequence[int] | None = None) -> str:
    """Markdown: labels to target per strategy (mean ± std, per seed, saving against
    random), then the metric at each label count (or at ``checkpoints``), mean ± std."""
    summary = ["| strategy | labels to target, mean ± std | per seed | saving vs random |", "|---|---:|---|---:|"]
    for row in result.summary():
        saving = row["saving_vs_random_percent"]
        summary.append(f"| {row['strategy']} | {_labels(row['labels_to_target_mean'])} ± "
                       f"{_labels(row['labels_to_target_std'])} | {', '.join(_labels(v) for v in row['per_seed'])} | "
                       f"{'' if saving is None else f'{saving:.1f}%'} |")
    curves = mean_curves(result.rows)
    counts = checkpoints or sorted({labels for points in curves.values() for labels, _, _ in points})
    curve = ["| labels | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
    for n in counts:
        cells = [next((f"{m:.3f} ± {s:.3f}" for labels, m, s in points if labels == n), "") for points in curves.values()]
        if any(cells):
            curve.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(summary) + f"\n\n{metric} on the test split, mean ± std over seeds:\n\n" + "\n".join(curve)


def machine() -> str:
    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout
    return f"{cpu.strip() or platform.machine()}, {os.cpu_count()} cores (shared with other work)"
