"""One-shot proposals: a class for every image from a few examples per class, on embeddings.

Django-free, numpy and scikit-learn only. Two methods over L2-normalised embeddings:

- ``prototype``: each class is the mean of its normalised examples (re-normalised); an image's
  scores are its cosines to the prototypes, turned into probabilities by a softmax at a fixed
  temperature. Row by row, so the pool can be scored in chunks.
- ``propagation``: scikit-learn's LabelSpreading on a k-nearest-neighbour graph of examples
  and pool together; labels flow along the graph, so a class whose images lie on a curved
  manifold is followed further than a single mean reaches. Transductive: the whole pool at
  once. A pool image the graph does not connect to any example gets the prototype's scores.

The proposal model serialises to ``.npz`` loaded with ``allow_pickle=False`` (data, not code).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Method = Literal["prototype", "propagation"]
METHODS: tuple[Method, ...] = ("prototype", "propagation")
FORMAT = "vision-oneshot/1"
# Softmax temperature on cosines. Cosines of pretrained features sit in a narrow band (0.3-0.9
# here), so at 1.0 every proposal would look near-uniform; 0.05 spreads a 0.1 cosine gap into a
# factor of e^2. It changes confidences, never which class wins.
TEMPERATURE = 0.05
NEIGHBOURS = 10
# LabelSpreading's alpha: the share of each step's label that comes from the neighbours. With
# one to five examples a class, labels must travel many hops; at scikit-learn's default (0.2)
# they fade within a few and far images tie.
ALPHA = 0.9
MAX_EXAMPLES_PER_CLASS = 5


class NotEnoughExamples(ValueError):
    """Fewer than two classes have an example: there is nothing to choose between."""


def normalised(vectors: ArrayLike) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class ProposalModel:
    """Examples by class. ``classes`` are the caller's class ids in output column order;
    ``labels[i]`` is the column of example ``i``."""

    method: Method
    classes: list[int]
    examples: np.ndarray  # (m, d) float32, normalised
    labels: np.ndarray  # (m,) int64, column index into classes

    @property
    def prototypes(self) -> np.ndarray:
        """(C, d) normalised class means."""
        sums = np.zeros((len(self.classes), self.examples.shape[1]), np.float32)
        np.add.at(sums, self.labels, self.examples)
        return normalised(sums)

    def prototype_proba(self, vectors: ArrayLike) -> np.ndarray:
        """(n, d) -> (n, C) float64 softmax over cosines to the prototypes."""
        sims = normalised(vectors) @ self.prototypes.T
        return _softmax(sims.astype(np.float64) / TEMPERATURE)

    def predict_proba(self, pool: ArrayLike) -> np.ndarray:
        """(n, d) pool -> (n, C) float64 class probabilities. For ``propagation`` the rows
        depend on the whole pool passed together."""
        pool = normalised(pool)
        if self.method == "prototype" or not len(pool):
            return self.prototype_proba(pool)
        return self._propagate(pool)

    def _propagate(self, pool: np.ndarray) -> np.ndarray:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.semi_supervised import LabelSpreading

        x = np.concatenate([self.examples, pool])
        y = np.concatenate([self.labels, np.full(len(pool), -1, np.int64)])
        spreading = LabelSpreading(kernel="knn", n_neighbors=min(NEIGHBOURS, len(x) - 1), alpha=ALPHA, max_iter=100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # unconnected rows divide 0 by 0; replaced below
            warnings.simplefilter("ignore", ConvergenceWarning)  # the distribution after max_iter is still usable
            spreading.fit(x, y)
        spread = np.asarray(spreading.label_distributions_[len(self.examples):], dtype=np.float64)
        # LabelSpreading numbers the columns by the labels it saw, sorted
        probs = np.zeros((len(pool), len(self.classes)), np.float64)
        probs[:, spreading.classes_.astype(np.int64)] = np.nan_to_num(spread)
        mass = probs.sum(axis=1)
        unreached = ~(mass > 0)
        if unreached.any():
            probs[unreached] = self.prototype_proba(pool[unreached])
        probs[~unreached] /= mass[~unreached, None]
        return probs

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(FORMAT), method=np.array(self.method),
                 classes=np.asarray(self.classes, np.int64), examples=self.examples.astype(np.float32),
                 labels=self.labels.astype(np.int64))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ProposalModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if str(archive["format"]) != FORMAT:
                raise ValueError(f"not a one-shot proposal model: {archive['format']}")
            method = str(archive["method"])
            if method not in METHODS:
                raise ValueError(f"unknown proposal method {method!r}")
            return cls(method=method,
                       classes=[int(c) for c in archive["classes"]], examples=archive["examples"].copy(),
                       labels=archive["labels"].copy())


def proposal_model_fit(*, method: Method, vectors: ArrayLike, example_classes: list[int],
                       classes: list[int]) -> ProposalModel:
    """The model from example vectors and their class ids. ``classes`` are the output columns:
    the classes that have at least one example, in the caller's order."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    column = {class_id: i for i, class_id in enumerate(classes)}
    seen = {c for c in example_classes if c in column}
    if len(seen) < 2:
        raise NotEnoughExamples(f"examples of {len(seen)} class(es); proposals need examples of at least two")
    keep = [i for i, c in enumerate(example_classes) if c in column]
    used = [c for c in classes if c in seen]
    used_column = {class_id: i for i, class_id in enumerate(used)}
    return ProposalModel(
        method=method, classes=used, examples=normalised(np.asarray(vectors)[keep]),
        labels=np.asarray([used_column[example_classes[i]] for i in keep], np.int64),
    )
