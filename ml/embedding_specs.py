"""The embedding models by key: what produces a stored vector. Imports neither torch nor Django,
so the web process and the selectors can name keys without loading the network
(``ml.embeddings`` does the work)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddingSpec:
    """What produces a vector: architecture, pretrained weights and the square input size."""

    key: str
    arch: str
    weights: str
    image_size: int
    dim: int


def _spec(arch: str, weights: str, size: int, dim: int) -> EmbeddingSpec:
    return EmbeddingSpec(f"{arch}-{weights}-{size}", arch, weights, size, dim)


EMBEDDING_MODELS: dict[str, EmbeddingSpec] = {
    s.key: s
    for s in (
        _spec("efficientnet_lite0", "imagenet", 224, 1280),  # the size the weights were trained at
        _spec("efficientnet_lite0", "imagenet", 128, 1280),  # small images (tiles, scans, thumbnails), 3x faster
        _spec("efficientnet_lite0", "imagenet", 64, 1280),  # tiny images (digits, MNIST-like sets)
    )
}
DEFAULT_EMBEDDING_MODEL = "efficientnet_lite0-imagenet-224"
