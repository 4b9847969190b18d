"""The queue model: a linear head on frozen pretrained image embeddings.

Django-free, numpy and scikit-learn only. It decides what humans see next, so it has to be
good from the first few labels and cheap enough to refit after every handful of submits: a
multinomial logistic regression (classification) or one logistic regression per class on
"is this class present" (detection), on L2-normalised embeddings, refit from scratch each
time in well under a second for a thousand labels.

Heads serialise to a numpy ``.npz`` archive loaded with ``allow_pickle=False``: a stored head
is data, never code.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

HeadKind = Literal["multiclass", "multilabel"]
HEAD_FORMAT = "vision-linear-head/1"

# Inverse L2 strength on unit-norm embeddings scaled to unit variance per dimension (see
# _features). One fixed value: the queue model never tunes itself on held-out labels, and
# at 10-1000 labels a cross-validated choice is noisier than the gain it buys.
DEFAULT_C = 1.0
MAX_ITER = 300
MIN_LABELS = 2  # below this there is nothing to fit; callers fall back to the cold start


class NotEnoughLabels(ValueError):
    """Raised when the labels cannot support a head (fewer than MIN_LABELS, or one class)."""


@dataclass
class LinearHead:
    """A fitted head. ``classes`` are the caller's class ids, in output column order.

    multiclass: ``predict_proba`` rows are a distribution over ``classes`` (classes never
    seen in training get probability 0). multilabel: column c is P(class c present),
    independent per class; a class seen always (or never) present is a constant column.
    """

    kind: HeadKind
    classes: list[int]
    coef: np.ndarray  # (C, d) float32
    intercept: np.ndarray  # (C,) float32
    scale: float  # features are embeddings * scale
    num_labels: int

    def decision(self, embeddings: ArrayLike) -> np.ndarray:
        x = _features(embeddings, self.scale)
        return x @ self.coef.T + self.intercept

    def predict_proba(self, embeddings: ArrayLike) -> np.ndarray:
        """(n, d) embeddings -> (n, C) float64 probabilities, in ``classes`` order."""
        z = self.decision(embeddings).astype(np.float64)
        if self.kind == "multilabel":
            return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer, format=np.array(HEAD_FORMAT), kind=np.array(self.kind),
            classes=np.asarray(self.classes, dtype=np.int64), coef=self.coef.astype(np.float32),
            intercept=self.intercept.astype(np.float32), scale=np.float64(self.scale),
            num_labels=np.int64(self.num_labels),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearHead:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if str(archive["format"]) != HEAD_FORMAT:
                raise ValueError(f"not a {HEAD_FORMAT} archive")
            kind = str(archive["kind"])
            if kind not in ("multiclass", "multilabel"):
                raise ValueError(f"unknown head kind {kind!r}")
            return cls(
                kind=kind,  # type: ignore[arg-type]
                classes=[int(c) for c in archive["classes"]],
                coef=archive["coef"].astype(np.float32), intercept=archive["intercept"].astype(np.float32),
                scale=float(archive["scale"]), num_labels=int(archive["num_labels"]),
            )


def _features(embeddings: ArrayLike, scale: float) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected embeddings of shape (n, d), got {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12) * np.float32(scale)


def _logistic(c: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed)


def _fit_quietly(model, x: np.ndarray, y: np.ndarray) -> None:
    """Fit on one BLAS thread: these problems are small, and on a busy machine a thread pool
    per fit costs ten times the work itself. lbfgs may stop before convergence on separable
    few-label sets; its warning says nothing the caller can act on."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)


def fit_multiclass(
    embeddings: ArrayLike, labels: Sequence[int], classes: Sequence[int], *, c: float = DEFAULT_C, seed: int = 0
) -> LinearHead:
    """A softmax head over ``classes`` from (n, d) embeddings and their class ids.

    Raises NotEnoughLabels with fewer than MIN_LABELS labels or fewer than two distinct
    classes among them (a one-class model has no uncertainty worth ranking by).
    """
    y = np.asarray(labels, dtype=np.int64)
    x = np.asarray(embeddings, dtype=np.float32)
    if len(y) != len(x):
        raise ValueError("one label per embedding row")
    unknown = sorted(set(y.tolist()) - set(int(c_) for c_ in classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes")
    if len(y) < MIN_LABELS or len(np.unique(y)) < 2:
        raise NotEnoughLabels(f"{len(y)} labels of {len(np.unique(y))} classes; need two classes")
    scale = float(np.sqrt(x.shape[1]))
    model = _logistic(c, seed)
    _fit_quietly(model, _features(x, scale), y)
    seen = [int(c_) for c_ in model.classes_]
    coef = model.coef_.astype(np.float32)
    intercept = model.intercept_.astype(np.float32)
    if len(seen) == 2:  # sklearn keeps one row for two classes: logit of the second
        coef = np.stack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
    full_coef = np.zeros((len(classes), x.shape[1]), dtype=np.float32)
    # Unseen classes get a very low bias: probability ~0, never the prediction.
    full_intercept = np.full(len(classes), -1e4, dtype=np.float32)
    column = {int(c_): i for i, c_ in enumerate(classes)}
    for row, class_id in enumerate(seen):
        full_coef[column[class_id]] = coef[row]
        full_intercept[column[class_id]] = intercept[row]
    return LinearHead("multiclass", [int(c_) for c_ in classes], full_coef, full_intercept, scale, len(y))


def fit_multilabel(
    embeddings: ArrayLike, present: ArrayLike, classes: Sequence[int], *, c: float = DEFAULT_C, seed: int = 0
) -> LinearHead:
    """One "is class c in the image" logistic regression per class from (n, d) embeddings and
    an (n, C) 0/1 matrix. A class that is always or never present gets a constant column at
    its smoothed frequency, (positives + 1/2) / (n + 1)."""
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(present, dtype=np.float64)
    if y.shape != (len(x), len(classes)):
        raise ValueError(f"presence must be (n, {len(classes)}), got {y.shape}")
    if len(x) < MIN_LABELS:
        raise NotEnoughLabels(f"{len(x)} labels; need {MIN_LABELS}")
    scale = float(np.sqrt(x.shape[1]))
    features = _features(x, scale)
    coef = np.zeros((len(classes), x.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(classes), dtype=np.float32)
    for column in range(len(classes)):
        target = y[:, column] > 0.5
        if target.all() or not target.any():
            rate = (target.sum() + 0.5) / (len(target) + 1.0)
            intercept[column] = np.log(rate / (1.0 - rate))
            continue
        model = _logistic(c, seed)
        _fit_quietly(model, features, target.astype(np.int64))
        coef[column] = model.coef_[0]
        intercept[column] = model.intercept_[0]
    return LinearHead("multilabel", [int(c_) for c_ in classes], coef, intercept, scale, len(x))


def multilabel_uncertainty(probs: ArrayLike) -> np.ndarray:
    """Per image, the largest per-class margin uncertainty 1 - |2p - 1| over classes, in [0, 1]:
    1 when the head is undecided whether some class is present, 0 when sure of every class."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"expected (n, C) probabilities, got {p.shape}")
    if p.shape[1] == 0:
        return np.zeros(len(p))
    return (1.0 - np.abs(2.0 * p - 1.0)).max(axis=1)


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[int]) -> float:
    """Macro-F1 over the classes present in y_true or y_pred (sklearn's convention)."""
    from sklearn.metrics import f1_score

    if not len(y_true):
        return float("nan")
    return float(f1_score(y_true, y_pred, labels=sorted(set(y_true) | set(y_pred)), average="macro",
                          zero_division=0))


def majority_class_f1(train_labels: Sequence[int], val_labels: Sequence[int]) -> float:
    """Macro-F1 on ``val_labels`` of always answering the most frequent training class: the
    baseline every classifier must beat before it pre-labels."""
    train = np.asarray(train_labels, dtype=np.int64)
    if not len(train):
        return 0.0
    values, counts = np.unique(train, return_counts=True)
    majority = int(values[np.argmax(counts)])
    return macro_f1(list(val_labels), [majority] * len(val_labels), [])


def head_metrics(head: LinearHead, embeddings: ArrayLike, truth: ArrayLike) -> dict:
    """Validation metrics in the backends' shape (``primary`` and ``primary_metric``).

    multiclass: ``truth`` is (n,) class ids; macro-F1 is primary, accuracy beside it.
    multilabel: ``truth`` is (n, C) presence; macro-F1 of the present/absent calls at 0.5
    over the classes, and the share of images whose whole class set is right.
    """
    probs = head.predict_proba(embeddings)
    if head.kind == "multiclass":
        y = np.asarray(truth, dtype=np.int64)
        predicted = np.asarray(head.classes, dtype=np.int64)[probs.argmax(axis=1)] if len(y) else y
        f1 = macro_f1(y.tolist(), predicted.tolist(), head.classes)
        accuracy = float((predicted == y).mean()) if len(y) else float("nan")
        return {"primary": f1, "primary_metric": "macro_f1", "macro_f1": f1, "accuracy": accuracy,
                "num_images": int(len(y))}
    from sklearn.metrics import f1_score

    y = np.asarray(truth, dtype=np.int64)
    calls = (probs >= 0.5).astype(np.int64)
    f1 = float(f1_score(y, calls, average="macro", zero_division=0)) if len(y) else float("nan")
    exact = float((calls == y).all(axis=1).mean()) if len(y) else float("nan")
    return {"primary": f1, "primary_metric": "presence_macro_f1", "presence_macro_f1": f1,
            "exact_set_accuracy": exact, "num_images": int(len(y))}
