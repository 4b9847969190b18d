"""Pretrained image embeddings on CPU, on real photos from scikit-image's data folder."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from ml.embeddings import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS, Embedder, decode_upright

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = "efficientnet_lite0-imagenet-128"  # the tests' key: same network, a third of the work


@pytest.fixture(scope="module")
def embedder():
    return Embedder(SMALL, device="cpu", batch_size=4)


def _photos():
    return {"cat": data.chelsea(), "rocket": data.rocket(), "coffee": data.coffee(),
            "astronaut": data.astronaut(), "camera": data.camera()}


def test_default_key_names_arch_weights_and_size():
    spec = EMBEDDING_MODELS[DEFAULT_EMBEDDING_MODEL]
    assert (spec.arch, spec.weights, spec.image_size, spec.dim) == ("efficientnet_lite0", "imagenet", 224, 1280)
    assert all(key == s.key for key, s in EMBEDDING_MODELS.items())


def test_vectors_are_float32_rows_of_unit_length(embedder):
    vectors = embedder.embed_arrays(list(_photos().values()))
    assert embedder.key == SMALL and embedder.dim == 1280
    assert vectors.shape == (5, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_same_images_give_the_same_vectors(embedder):
    photos = list(_photos().values())
    first = embedder.embed_arrays(photos)
    np.testing.assert_array_equal(first, embedder.embed_arrays(photos))
    one_by_one = Embedder(SMALL, device="cpu", batch_size=1).embed_arrays(photos)
    np.testing.assert_allclose(one_by_one, first, atol=1e-5)  # batch size changes rounding only


def test_a_photo_is_closer_to_its_variants_than_to_other_photos(embedder):
    photos = _photos()
    cat = photos["cat"]
    variants = [
        cat[:, ::-1].copy(),  # mirrored
        cat[30:-30, 40:-40].copy(),  # cropped
        np.clip(cat.astype(np.int16) + 40, 0, 255).astype(np.uint8),  # brighter
    ]
    others = [photos[k] for k in ("rocket", "coffee", "astronaut", "camera")]
    vectors = embedder.embed_arrays([cat, *variants, *others])
    sims = vectors[1:] @ vectors[0]
    assert sims[:3].min() > sims[3:].max() + 0.2
    # a stereo pair of one scene: two real photos of the same thing
    left, right, coffee = embedder.embed_arrays(
        [data.stereo_motorcycle()[0], data.stereo_motorcycle()[1], photos["coffee"]]
    )
    assert left @ right > max(left @ coffee, right @ coffee) + 0.2


def test_grey_and_single_channel_arrays_are_read_as_rgb(embedder):
    grey = data.camera()
    as_rgb = np.repeat(grey[:, :, None], 3, axis=2)
    vectors = embedder.embed_arrays([grey, grey[:, :, None], as_rgb])
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[2])


def test_a_malformed_array_raises(embedder):
    with pytest.raises(ValueError, match="image 1"):
        embedder.embed_arrays([data.chelsea(), np.zeros((4, 4, 3), np.float32)])


def test_unreadable_files_get_zero_rows_and_the_others_are_unaffected(embedder, tmp_path):
    good = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a jpeg")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:500])
    paths = [str(tmp_path / "missing.jpg"), str(good), str(broken), str(truncated)]
    vectors, errors = embedder.embed_paths(paths)
    assert vectors.shape == (4, 1280)
    assert errors[1] is None
    assert "cannot read file" in errors[0]
    assert "cannot decode" in errors[2] and "cannot decode" in errors[3]
    assert not vectors[[0, 2, 3]].any()
    np.testing.assert_allclose(vectors[1], embedder.embed_arrays([data.chelsea()])[0], atol=1e-6)


def test_files_are_read_through_openers_and_closed(embedder):
    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, "PNG")
    opened = []

    def opener():
        stream = io.BytesIO(buffer.getvalue())
        opened.append(stream)
        return stream

    def missing():
        raise FileNotFoundError("no such object")

    vectors, errors = embedder.embed_files([opener, missing])
    assert errors[0] is None and "no such object" in errors[1]
    assert all(s.closed for s in opened)
    np.testing.assert_allclose(vectors[0], embedder.embed_arrays([data.coffee()])[0], atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    photo = data.chelsea()  # 300 x 451, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", exif=exif)
    upright = decode_upright(buffer.getvalue())
    assert upright.shape[:2] == (photo.shape[1], photo.shape[0])


def test_large_jpegs_are_decoded_at_a_reduced_scale_that_still_covers_the_input():
    buffer = io.BytesIO()
    Image.fromarray(np.tile(data.astronaut(), (2, 3, 1))).save(buffer, "JPEG")  # 1024 x 1536
    reduced = decode_upright(buffer.getvalue(), size=128)
    assert reduced.shape[0] >= 128 and reduced.shape[1] >= 128
    assert reduced.shape[0] < 1024


def test_stream_yields_batches_in_input_order(embedder):
    photos = list(_photos().values())
    batches = list(embedder.stream([lambda p=p: p[:128, :128].copy() for p in photos]))
    assert [b.start for b in batches] == [0, 4]
    assert [len(b.vectors) for b in batches] == [4, 1]
    stacked = np.concatenate([b.vectors for b in batches])
    np.testing.assert_allclose(stacked, embedder.embed_arrays([p[:128, :128] for p in photos]), atol=1e-6)


def test_empty_input_gives_an_empty_matrix(embedder):
    vectors, errors = embedder.embed_paths([])
    assert vectors.shape == (0, 1280) and errors == []


def test_unknown_model_key_is_refused():
    with pytest.raises(ValueError, match="unknown embedding model"):
        Embedder("resnet-9000")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_vectors_agree_with_cpu_ones(embedder):
    photos = list(_photos().values())
    gpu = Embedder(SMALL, device="cuda", batch_size=4).embed_arrays(photos)
    cpu = embedder.embed_arrays(photos)
    assert (gpu * cpu).sum(axis=1).min() > 0.995


def test_embeddings_module_imports_no_django():
    code = "import sys, ml.embeddings; print(any(m.split('.')[0] == 'django' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"
