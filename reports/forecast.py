"""Forecasts for the queue report. Django-free.

- Completion date: an ARIMA(1,0,0) model with a constant, fitted to daily labeling
  throughput (days without work are zeros), is simulated forward many times; each path's
  first day on which the cumulative count covers the remaining images gives one completion
  date, and the paths' percentiles give the band. Simulated days below zero count as zero.
- Target metric: an inverse power law, metric = a - b * n^-c, is fitted to the model
  versions' (training labels, primary metric) points with scipy's curve_fit; the label
  count where it reaches the target comes with a band from parameter draws around the fit
  (its covariance). The date follows from the recent daily pace.

Every result carries a plain sentence; with too little data it says so instead of
inventing a number.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

INTERVAL = 0.8  # the band is the central 80% of outcomes
MIN_DAYS = 7  # days of history before the throughput forecast is attempted
HISTORY_DAYS = 90
HORIZON_DAYS = 3 * 365
SIMULATIONS = 400
MIN_CURVE_POINTS = 3
PACE_DAYS = 14


def _fmt_day(d: date) -> str:
    return f"{d.day} {d.strftime('%b %Y')}"


def _quantiles(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - INTERVAL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def recent_pace(daily: Sequence[float], days: int = PACE_DAYS) -> float:
    """Mean labels a day over the last `days` days (fewer when there is less history)."""
    window = np.asarray(daily[-days:], dtype=float)
    return float(window.mean()) if window.size else 0.0


def completion_forecast(daily: Sequence[float], remaining: int, *, today: date, seed: int = 0) -> dict:
    """When the remaining images will be labeled, from daily throughput ending yesterday.

    daily: labels per day, oldest first, one value per calendar day up to `today` - 1.
    Returns status (done | insufficient_data | stalled | ok), the expected date and the band
    (dates as ISO strings, None when unknown), pace and a sentence.
    """
    pace = recent_pace(daily)
    base = {"remaining": int(remaining), "pace_per_day": round(pace, 2), "expected_date": None,
            "low_date": None, "high_date": None, "interval": INTERVAL, "daily_forecast": []}
    if remaining <= 0:
        return {**base, "status": "done", "sentence": "Every image is labeled."}
    active_days = int(np.count_nonzero(np.asarray(daily, dtype=float)))
    if len(daily) < MIN_DAYS or active_days < 3:
        return {**base, "status": "insufficient_data", "sentence": (
            f"{remaining:,} images remain. A completion date needs at least {MIN_DAYS} days of "
            f"history with work on 3 or more of them; there are {len(daily)} days so far, "
            f"{active_days} with work.")}
    if pace <= 0:
        return {**base, "status": "stalled", "sentence": (
            f"{remaining:,} images remain and nothing was labeled in the last {PACE_DAYS} days, "
            "so there is no completion date to forecast.")}

    history = tuple(float(v) for v in daily[-HISTORY_DAYS:])
    daily_q, cumulative, cumulative_q = _simulated_paths(history, seed)
    reached = cumulative >= remaining
    finish = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, np.inf)
    # The next 60 days: labels a day and images left, each with its band (percentiles of
    # the paths, taken separately for the daily and the cumulative counts).
    left_q = np.clip(remaining - cumulative_q[::-1], 0, None)
    daily_forecast = [
        {"date": (today + timedelta(days=i)).isoformat(),
         "labels_low": round(float(daily_q[0, i]), 2), "labels": round(float(daily_q[1, i]), 2),
         "labels_high": round(float(daily_q[2, i]), 2),
         "remaining_low": round(float(left_q[0, i]), 1), "remaining": round(float(left_q[1, i]), 1),
         "remaining_high": round(float(left_q[2, i]), 1)}
        for i in range(daily_q.shape[1])
    ]
    base = {**base, "daily_forecast": daily_forecast}
    if np.isinf(np.median(finish)):
        return {**base, "status": "stalled", "sentence": (
            f"At the recent pace of about {pace:,.0f} images a day, the remaining {remaining:,} "
            f"images are unlikely to be labeled within {HORIZON_DAYS:,} days.")}
    mid = today + timedelta(days=int(np.median(finish)) - 1)
    low_days, high_days = _quantiles(finish)
    low = today + timedelta(days=int(np.floor(low_days)) - 1)
    high_text = "later than we forecast"
    high = None
    if np.isfinite(high_days):
        high = today + timedelta(days=int(np.ceil(high_days)) - 1)
        high_text = _fmt_day(high)
    return {
        **base,
        "status": "ok",
        "expected_date": mid.isoformat(),
        "low_date": low.isoformat(),
        "high_date": high.isoformat() if high else None,
        "sentence": (
            f"At the recent pace of about {pace:,.0f} images a day, the remaining {remaining:,} "
            f"images will be labeled around {_fmt_day(mid)} "
            f"({INTERVAL:.0%} interval: {_fmt_day(low)} – {high_text})."),
    }


@lru_cache(maxsize=256)
def _fit_ar1(history: tuple[float, ...]) -> tuple[float, float, float]:
    """(mean, AR coefficient, shock variance) of an ARIMA(1,0,0) with constant.

    Cached: the history ends yesterday, so it changes once a day, not with every label.
    """
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ARIMA(np.asarray(history), order=(1, 0, 0), trend="c").fit()
    # With trend "c" and no differencing the constant is the process mean.
    mean, phi, sigma2 = (float(v) for v in fitted.params)
    return mean, phi, max(sigma2, 0.0)


@lru_cache(maxsize=16)
def _simulated_paths(history: tuple[float, ...], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SIMULATIONS paths of daily throughput over HORIZON_DAYS from the ARIMA(1,0,0) fit.

    Returns the 10/50/90th percentiles of the first 60 days' daily counts (3 x 60), the
    cumulative counts of every path (days below zero count as zero) and their percentiles
    over the first 60 days. statsmodels fits the model; the paths are drawn here with a
    linear filter, as statsmodels' simulator takes about a second for this many. Cached
    with the fit: only the remaining count changes between requests of a day.
    """
    if np.ptp(history) == 0:
        # A perfectly steady pace has no variance to model.
        paths = np.full((SIMULATIONS, HORIZON_DAYS), history[-1])
    else:
        from scipy.signal import lfilter

        mean, phi, sigma2 = _fit_ar1(history)
        rng = np.random.default_rng(seed)
        drive = mean * (1 - phi) + rng.normal(0.0, np.sqrt(sigma2), size=(SIMULATIONS, HORIZON_DAYS))
        # y[t] = phi * y[t-1] + drive[t], starting from the last observed day.
        start = np.full((SIMULATIONS, 1), phi * history[-1])
        paths, _ = lfilter([1.0], [1.0, -phi], drive, axis=1, zi=start)
    tails = [(1 - INTERVAL) / 2 * 100, 50, (1 + INTERVAL) / 2 * 100]
    clipped = np.clip(paths, 0, None)
    cumulative = np.cumsum(clipped, axis=1)
    results = (np.percentile(clipped[:, :60], tails, axis=0), cumulative,
               np.percentile(cumulative[:, :60], tails, axis=0))
    for array in results:
        array.flags.writeable = False
    return results


def inverse_power_law(n, a, b, c):
    return a - b * np.power(n, -c)


@lru_cache(maxsize=64)
def _fit_power_law(points: tuple[tuple[int, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (a, b, c) and their covariance; cached, versions change rarely."""
    from scipy.optimize import curve_fit

    n = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    upper = max(1.0, float(y.max()) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, cov = curve_fit(
            inverse_power_law, n, y, p0=(min(upper, y.max() + 0.05), 1.0, 0.5),
            bounds=([0.0, 0.0, 0.01], [upper, np.inf, 3.0]), maxfev=5000,
        )
    params.flags.writeable = False
    cov.flags.writeable = False
    return params, cov


def learning_curve_fit(
    points: Sequence[tuple[int, float]],
    target: float | None,
    *,
    current_labels: int,
    pace_per_day: float,
    today: date,
    seed: int = 0,
) -> dict:
    """Fit metric = a - b n^-c and say when `target` will be reached.

    points: (training labels, primary metric) per model version. current_labels: training
    labels available now; pace_per_day: new training labels a day. Returns status
    (no_target | insufficient_data | reached | unreachable | ok), the fitted parameters and
    curve, the label count and date with their band, and a sentence.
    """
    pts = sorted((int(n), float(m)) for n, m in points if n and n > 0 and m is not None)
    base = {"params": None, "curve": [], "target": target, "labels_needed": None,
            "labels_low": None, "labels_high": None, "expected_date": None,
            "low_date": None, "high_date": None, "interval": INTERVAL}
    best = max((m for _, m in pts), default=None)
    if target is None:
        return {**base, "status": "no_target", "sentence": "The project has no target metric set."}
    if best is not None and best >= target:
        return {**base, "status": "reached",
                "sentence": f"A model version already reaches the target of {target:.3g} ({best:.3g})."}
    distinct = len({n for n, _ in pts})
    if distinct < MIN_CURVE_POINTS:
        return {**base, "status": "insufficient_data", "sentence": (
            f"Fitting a learning curve needs model versions trained on at least "
            f"{MIN_CURVE_POINTS} different label counts; there are {distinct}.")}

    try:
        params, cov = _fit_power_law(tuple(pts))
    except (RuntimeError, ValueError) as exc:
        return {**base, "status": "insufficient_data",
                "sentence": f"The learning curve could not be fitted to these versions ({exc})."}
    n = np.array([p[0] for p in pts], dtype=float)
    a, b, c = (float(v) for v in params)
    grid = np.unique(np.geomspace(n.min(), max(n.max(), current_labels) * 4, 40).round())
    curve = [{"labels": int(g), "metric": round(float(inverse_power_law(g, a, b, c)), 5)} for g in grid]
    base = {**base, "params": {"a": a, "b": b, "c": c}, "curve": curve}

    def labels_for(pa, pb, pc):
        gap = pa - target
        return (pb / gap) ** (1 / pc) if gap > 0 and pb > 0 else np.inf

    needed = labels_for(a, b, c)
    if not np.isfinite(needed):
        return {**base, "status": "unreachable", "sentence": (
            f"The fitted curve levels off at about {a:.3g}, below the target of {target:.3g}: "
            "more labels alone are unlikely to get there.")}
    rng = np.random.default_rng(seed)
    cov = np.nan_to_num(np.asarray(cov, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    draws = rng.multivariate_normal(params, cov, size=2000, check_valid="ignore")
    gap, pb, pc = draws[:, 0] - target, draws[:, 1], draws[:, 2]
    ok = (gap > 0) & (pb > 0) & (pc > 0)
    sampled = np.full(len(draws), np.inf)
    with np.errstate(over="ignore"):
        sampled[ok] = (pb[ok] / gap[ok]) ** (1 / pc[ok])
    low_n, high_n = _quantiles(sampled)
    if not np.isfinite(low_n):
        return {**base, "status": "unreachable", "sentence": (
            f"The best fit reaches the target of {target:.3g} at about {needed:,.0f} training labels, "
            "but most curves that fit the versions about as well never reach it: too uncertain to say.")}
    needed = max(needed, current_labels)
    low_n = max(low_n, current_labels)

    def date_for(labels: float) -> date | None:
        if not np.isfinite(labels) or pace_per_day <= 0:
            return None
        return today + timedelta(days=int(np.ceil((round(labels) - current_labels) / pace_per_day)))

    mid_date, low_date, high_date = date_for(needed), date_for(low_n), date_for(high_n)
    high_text = f"{high_n:,.0f}" if np.isfinite(high_n) else "never, on some plausible curves"
    sentence = (
        f"The fitted learning curve reaches the target of {target:.3g} at about {needed:,.0f} "
        f"training labels ({INTERVAL:.0%} interval: {low_n:,.0f} – {high_text}); "
        f"there are {current_labels:,} now.")
    if mid_date:
        sentence += (f" At about {pace_per_day:,.0f} new training labels a day that is around "
                     f"{_fmt_day(mid_date)}.")
    else:
        sentence += " With no recent labeling there is no date for it."
    return {
        **base,
        "status": "ok",
        "labels_needed": int(round(needed)),
        "labels_low": int(round(low_n)),
        "labels_high": int(round(high_n)) if np.isfinite(high_n) else None,
        "expected_date": mid_date.isoformat() if mid_date else None,
        "low_date": low_date.isoformat() if low_date else None,
        "high_date": high_date.isoformat() if high_date else None,
        "sentence": sentence,
    }
