"""Zip uploads: bad entries are reported one by one and the good ones still land; an
archive that breaks a cap is refused whole before anything is read."""

import zipfile

import pytest

from core.models import Image
from labeling.importers.archive import safe_entry_name
from labeling.importers.service import import_run
from tests.labeling.test_ingest import image_bytes, make_project


@pytest.fixture
def project(db):
    return make_project()


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def errors_by_name(report):
    return {item["name"]: item["error"] for item in report["items"] if item["status"] == "error"}


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("a/b.jpg", "a/b.jpg"),
        ("./a.jpg", "a.jpg"),
        ("a/../b.jpg", "b.jpg"),
        ("../b.jpg", None),
        ("a/../../b.jpg", None),
        ("/etc/passwd", None),
        ("C:/x.jpg", None),
        ("..\\x.jpg", None),
    ],
)
def test_entry_names_that_leave_the_archive_are_refused(raw, safe):
    assert safe_entry_name(raw) == safe


def test_bad_zip_entries_are_reported_and_the_rest_lands(project, tmp_path):
    inner = write_zip(tmp_path / "inner.zip", [("x.jpg", image_bytes(color=(9, 9, 9)))])
    archive = write_zip(
        tmp_path / "photos.zip",
        [
            ("good/one.jpg", image_bytes(color=(1, 2, 3))),
            ("good/two.png", image_bytes(fmt="PNG", color=(4, 5, 6))),
            ("good/again.jpg", image_bytes(color=(1, 2, 3))),
            ("../escape.jpg", image_bytes(color=(7, 7, 7))),
            ("/absolute.jpg", image_bytes(color=(8, 8, 8))),
            ("nested.zip", inner.read_bytes()),
            ("empty.jpg", b""),
            ("readme.jpg", b"this is text"),
        ],
    )
    report = import_run(project=project, files=[("photos.zip", str(archive))])

    assert report["images"] == {"created": 2, "duplicate": 1, "error": 5}
    errors = errors_by_name(report)
    assert "unsafe path in archive" in errors["photos.zip/../escape.jpg"]
    assert "unsafe path in archive" in errors["photos.zip//absolute.jpg"]
    assert "nested archive" in errors["photos.zip/nested.zip"]
    assert errors["photos.zip/empty.jpg"] == "file is empty (0 bytes)"
    assert "not an image file" in errors["photos.zip/readme.jpg"]
    duplicate = next(i for i in report["items"] if i["status"] == "duplicate")
    assert duplicate["name"] == "photos.zip/good/again.jpg"
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["one.jpg", "two.png"]
    assert not list(tmp_path.glob("escape.jpg")) and not (tmp_path.parent / "escape.jpg").exists()


def test_zip_bomb_by_size_is_refused_whole_and_other_files_land(project, tmp_path, settings):
    settings.VISION_MAX_ARCHIVE_BYTES = 100_000
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.jpg", b"\0" * 1_000_000)  # deflates to about 1 KB
    assert bomb.stat().st_size < 10_000
    single = tmp_path / "single.jpg"
    single.write_bytes(image_bytes())
    report = import_run(project=project, files=[("bomb.zip", str(bomb)), ("single.jpg", str(single))])
    assert "possible zip bomb" in errors_by_name(report)["bomb.zip"]
    assert "nothing in it was imported" in errors_by_name(report)["bomb.zip"]
    assert report["images"]["created"] == 1


def test_zip_with_too_many_entries_is_refused_whole(project, tmp_path, settings):
    settings.VISION_MAX_ARCHIVE_ENTRIES = 3
    archive = write_zip(tmp_path / "many.zip", [(f"{n}.jpg", image_bytes(color=(n, 0, 0))) for n in range(5)])
    report = import_run(project=project, files=[("many.zip", str(archive))])
    assert errors_by_name(report) == {
        "many.zip": "archive has 5 entries; the limit is 3; nothing in it was imported"
    }
    assert not Image.objects.exists()


def test_entry_over_the_size_limit_is_refused_and_the_rest_lands(project, tmp_path, settings):
    big = image_bytes(300, 300, noise=True)
    settings.VISION_MAX_UPLOAD_BYTES = len(big) - 1
    archive = write_zip(tmp_path / "a.zip", [("big.jpg", big), ("small.jpg", image_bytes())])
    report = import_run(project=project, files=[("a.zip", str(archive))])
    assert "larger than the upload limit" in errors_by_name(report)["a.zip/big.jpg"]
    assert report["images"]["created"] == 1


def test_unreadable_archive_and_other_archive_formats_are_reported(project, tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    tar = tmp_path / "photos.tar.gz"
    tar.write_bytes(b"\x1f\x8b")
    report = import_run(project=project, files=[("broken.zip", str(broken)), ("photos.tar.gz", str(tar))])
    errors = errors_by_name(report)
    assert "not a readable zip archive" in errors["broken.zip"]
    assert "unsupported archive format" in errors["photos.tar.gz"]


def test_every_kind_of_bad_file_in_one_batch_is_reported_and_the_good_ones_land(project, tmp_path, settings):
    settings.VISION_MAX_IMAGE_PIXELS = 150 * 150
    big = image_bytes(120, 120, noise=True)
    settings.VISION_MAX_UPLOAD_BYTES = len(big) - 1
    files = {
        "good.jpg": image_bytes(color=(3, 3, 3)),
        "good.png": image_bytes(fmt="PNG", color=(4, 4, 4)),
        "empty.jpg": b"",
        "cut.jpg": image_bytes(100, 100, noise=True)[:2000],
        "cut.png": image_bytes(100, 100, fmt="PNG", noise=True)[:3000],
        "text.jpg": b"definitely not a jpeg",
        "icon.ico": image_bytes(16, 16, fmt="ICO"),
        "bomb.png": image_bytes(200, 200, fmt="PNG"),
        "huge.jpg": big,
        "copy.jpg": image_bytes(color=(3, 3, 3)),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = import_run(project=project, files=[(name, str(tmp_path / name)) for name in files])

    errors = errors_by_name(report)
    assert errors["empty.jpg"] == "file is empty (0 bytes)"
    assert "broken or truncated" in errors["cut.jpg"]
    assert "broken or truncated" in errors["cut.png"]
    assert "not an image file" in errors["text.jpg"]
    assert "unsupported image format ICO" in errors["icon.ico"]
    assert "too many pixels (200x200)" in errors["bomb.png"]
    assert "larger than the upload limit" in errors["huge.jpg"]
    assert report["images"] == {"created": 2, "duplicate": 1, "error": 7}
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["good.jpg", "good.png"]
