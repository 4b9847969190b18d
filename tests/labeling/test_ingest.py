"""One file into a project: every bad file is refused with a message naming the problem."""

import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image as PILImage

from core.models import Image
from labeling.ingest import image_ingest
from labeling.models import Task
from labeling.services import project_create


def image_bytes(
    width=40, height=30, fmt="JPEG", color=(10, 120, 200), noise=False, exif_orientation=None
) -> bytes:
    image = (
        PILImage.effect_noise((width, height), 60).convert("RGB")
        if noise
        else PILImage.new("RGB", (width, height), color)
    )
    out = io.BytesIO()
    options = {}
    if exif_orientation:
        exif = PILImage.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    image.save(out, fmt, **options)
    return out.getvalue()


def make_user(username: str):
    """A user without a password: hashing one costs seconds on a small machine."""
    return get_user_model().objects.get_or_create(username=username)[0]


def make_project(task_type="detection", classes=("tree", "car"), **fields):
    owner = make_user("owner")
    return project_create(
        name="p",
        task_type=task_type,
        created_by=owner,
        label_classes=[{"name": c} for c in classes],
        **fields,
    )


def ingest(project, name, data):
    return image_ingest(project=project, name=name, stream=io.BytesIO(data), size=len(data))


@pytest.fixture
def project(db):
    return make_project()


def test_good_image_lands_with_size_and_queue_rows(project):
    result = ingest(project, "a.jpg", image_bytes(40, 30))
    assert result.status == "created"
    image = Image.objects.get(pk=result.image_id)
    assert (image.width, image.height, image.original_name) == (40, 30, "a.jpg")
    assert image.file.storage.exists(image.file.name)
    assert Task.objects.filter(image=image).count() == 1


def test_same_content_is_a_duplicate_of_the_first(project):
    first = ingest(project, "a.jpg", image_bytes())
    second = ingest(project, "copy.jpg", image_bytes())
    assert (second.status, second.image_id) == ("duplicate", first.image_id)
    assert Image.objects.count() == 1


def test_exif_orientation_is_applied_and_size_recorded_upright(project):
    result = ingest(project, "turned.jpg", image_bytes(40, 30, exif_orientation=6))
    image = Image.objects.get(pk=result.image_id)
    assert (image.width, image.height) == (30, 40)
    with image.file.open("rb") as f:
        assert PILImage.open(f).size == (30, 40)


def test_gif_is_stored_as_png_so_training_tools_read_it_as_an_image(project):
    image = Image.objects.get(pk=ingest(project, "anim.gif", image_bytes(fmt="GIF")).image_id)
    assert image.file.name.endswith(".png") and image.original_name == "anim.gif"
    with image.file.open("rb") as f:
        assert PILImage.open(f).format == "PNG"


def test_heic_photo_from_a_phone_is_accepted_and_stored_as_jpeg(project):
    import pillow_heif  # test-only: an encoder to make the sample; the app reads HEIC with pi-heif

    out = io.BytesIO()
    pillow_heif.from_pillow(PILImage.new("RGB", (64, 48), (200, 10, 10))).save(out, quality=95)
    assert out.getvalue()[4:12] == b"ftypheic"
    result = ingest(project, "IMG_0001.HEIC", out.getvalue())
    assert result.status == "created", result
    image = Image.objects.get(pk=result.image_id)
    assert (image.width, image.height, image.original_name) == (64, 48, "IMG_0001.HEIC")
    assert image.file.name.endswith(".jpg")
    with image.file.open("rb") as f:
        stored = PILImage.open(f)
        assert stored.format == "JPEG"
        red, green, blue = stored.convert("RGB").getpixel((32, 24))
        assert red > 150 and green < 60 and blue < 60


def test_path_inside_an_archive_keeps_the_base_name(project):
    result = ingest(project, "photos.zip/trees/a.png", image_bytes(fmt="PNG"))
    assert Image.objects.get(pk=result.image_id).original_name == "a.png"


def test_large_and_tiff_images_get_a_display_version(project, settings):
    settings.VISION_DISPLAY_MAX_SIDE = 32
    big = Image.objects.get(pk=ingest(project, "big.jpg", image_bytes(64, 40)).image_id)
    tiff = Image.objects.get(
        pk=ingest(project, "t.tif", image_bytes(20, 10, fmt="TIFF", color=(1, 2, 3))).image_id
    )
    small = Image.objects.get(pk=ingest(project, "s.png", image_bytes(20, 10, fmt="PNG")).image_id)
    with big.display_file.open("rb") as f:
        assert max(PILImage.open(f).size) == 32
    assert tiff.display_file.name.endswith(".jpg")
    assert not small.display_file


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.jpg", b"", "file is empty (0 bytes)"),
        ("notes.jpg", b"just some text, not a picture\n" * 5, "not an image file"),
        ("half.jpg", image_bytes(200, 200, noise=True)[:3000], "broken or truncated"),
        ("half.png", image_bytes(200, 200, fmt="PNG", noise=True)[:5000], "broken or truncated"),
        ("icon.ico", image_bytes(32, 32, fmt="ICO"), "unsupported image format ICO"),
    ],
)
def test_bad_file_is_refused_with_a_clear_message_and_leaves_nothing(project, settings, name, data, message):
    result = ingest(project, name, data)
    assert result.status == "error"
    assert message in result.error
    assert not Image.objects.exists()
    assert not [p for p in (settings.MEDIA_ROOT / "projects").rglob("*") if p.is_file()]


def test_decompression_bomb_is_refused_not_warned(project, settings):
    settings.VISION_MAX_IMAGE_PIXELS = 50 * 50
    result = ingest(project, "bomb.png", image_bytes(60, 60, fmt="PNG"))
    assert result.status == "error"
    assert "too many pixels (60x60)" in result.error
    assert not Image.objects.exists()


def test_file_over_the_size_limit_is_refused(project, settings):
    settings.VISION_MAX_UPLOAD_BYTES = 1000
    data = image_bytes(100, 100, noise=True)
    assert len(data) > 1000
    result = image_ingest(project=project, name="big.jpg", stream=io.BytesIO(data), size=None)
    assert result.status == "error"
    assert "larger than the upload limit" in result.error
    assert not Image.objects.exists()


def test_batch_results_keep_the_order_and_duplicates_across_groups(project):
    from labeling.ingest import IngestBatch

    batch = IngestBatch(project, max_files=2)
    files = [
        ("a.jpg", image_bytes(color=(1, 0, 0))),
        ("bad.jpg", b"nope"),
        ("b.jpg", image_bytes(color=(2, 0, 0))),
        ("a-again.jpg", image_bytes(color=(1, 0, 0))),
        ("b-again.jpg", image_bytes(color=(2, 0, 0))),
    ]
    results = []
    for name, data in files:
        results += batch.add(name=name, stream=io.BytesIO(data), size=len(data))
    results += batch.flush()
    assert [(r.name, r.status) for r in results] == [
        ("a.jpg", "created"),
        ("bad.jpg", "error"),
        ("b.jpg", "created"),
        ("a-again.jpg", "duplicate"),
        ("b-again.jpg", "duplicate"),
    ]
    assert results[3].image_id == results[0].image_id and results[4].image_id == results[2].image_id
    assert Task.objects.count() == 2


def test_an_image_stored_meanwhile_by_another_import_becomes_a_duplicate(project, settings):
    from labeling.ingest import IngestBatch

    batch = IngestBatch(project)
    for name, color in (("x.jpg", (5, 5, 5)), ("y.jpg", (6, 6, 6))):
        batch.add(name=name, stream=io.BytesIO(image_bytes(color=color)))
    other = ingest(project, "x-elsewhere.jpg", image_bytes(color=(5, 5, 5)))
    results = batch.flush()
    assert [(r.name, r.status, r.image_id == other.image_id) for r in results] == [
        ("x.jpg", "duplicate", True),
        ("y.jpg", "created", False),
    ]
    stored = [p for p in (settings.MEDIA_ROOT / "projects").rglob("*") if p.is_file()]
    assert len(stored) == 2  # the losing copy of x.jpg was removed


def test_text_file_named_jpg_is_refused_after_ultralytics_patched_pil(db):
    """ultralytics swaps PIL's open for one that looks for a HEIF plugin on unreadable files;
    a text file must still be reported as not an image."""
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)

    from labeling.ingest import image_ingest
    from tests.factories import ProjectFactory

    result = image_ingest(project=ProjectFactory(), name="notes.jpg", stream=io.BytesIO(b"hello"), size=5)
    assert result.status == "error"
    assert "not an image file" in result.error



def test_a_decode_waits_until_its_pixels_fit_the_budget_in_flight():
    import threading

    from labeling.ingest import PixelBudget

    budget = PixelBudget(lambda: 3_000_000)
    second_started = threading.Event()

    def second():
        with budget.hold(2_000_000):
            second_started.set()

    with budget.hold(2_000_000):
        with budget.hold(1_000_000):  # a small one fits beside it
            assert budget.in_flight == 3_000_000
        waiting = threading.Thread(target=second)
        waiting.start()
        assert not second_started.wait(0.3)  # 2M + 2M is over the budget: it waits
    assert second_started.wait(10)
    waiting.join()
    assert budget.in_flight == 0
    with budget.hold(5_000_000):  # larger than the whole budget (but under the image limit): alone
        assert budget.in_flight == 5_000_000


def test_concurrent_imports_decode_within_the_pixel_budget(project, settings, monkeypatch):
    import threading

    from labeling import ingest as ingest_module

    settings.VISION_DECODE_PIXELS_IN_FLIGHT = 2 * 300 * 200
    seen = []
    real_load = ingest_module._load_upright

    def recording_load(probe):
        seen.append(ingest_module.DECODE_BUDGET.in_flight)
        return real_load(probe)

    monkeypatch.setattr(ingest_module, "_load_upright", recording_load)
    files = [image_bytes(300, 200, fmt="PNG", color=(n, 0, 0)) for n in range(8)]
    errors = []

    def prepare(data):
        try:
            ingest_module._prepare(project=project, name="a.png", stream=io.BytesIO(data), size=len(data))
        except Exception as exc:  # surfaces in the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(data,)) for data in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 8
    assert all(300 * 200 <= held <= 2 * 300 * 200 for held in seen), seen
    assert ingest_module.DECODE_BUDGET.in_flight == 0
