"""Local copies of stored files for processes that read paths (core/storage.py), with a
storage that has no local paths (Django's in-memory storage stands in for a bucket)."""
import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from core import storage as cache


@pytest.fixture
def bucket(settings, tmp_path, monkeypatch):
    # Treated like S3Storage: no local paths (InMemoryStorage itself maps names to paths it never writes).
    real = cache.storage_has_paths
    monkeypatch.setattr(cache, "storage_has_paths", lambda storage: not isinstance(storage, InMemoryStorage)
                        and real(storage))
    settings.VISION_STORAGE_CACHE_DIR = str(tmp_path / "cache")
    settings.VISION_STORAGE_CACHE_MAX_BYTES = 10_000
    cache._cached_bytes = None
    yield InMemoryStorage()
    cache._cached_bytes = None


def test_s3_storage_has_no_local_paths_and_the_file_system_has():
    from storages.backends.s3 import S3Storage

    assert not cache.storage_has_paths(S3Storage(bucket_name="any"))
    assert cache.storage_has_paths(FileSystemStorage())


def test_a_local_storage_hands_out_its_own_files(tmp_path):
    local = FileSystemStorage(location=tmp_path)
    name = local.save("a/b.png", ContentFile(b"png"))
    assert cache.local_path(name, local) == str(tmp_path / "a" / "b.png")


def test_a_remote_file_is_fetched_once_and_keeps_its_suffix(bucket):
    name = bucket.save("projects/1/images/ab/abc.PNG", ContentFile(b"x" * 100))
    first = cache.local_path(name, bucket)
    assert Path(first).read_bytes() == b"x" * 100 and first.endswith(".png")
    bucket.delete(name)  # a second read must not need the storage
    assert cache.local_path(name, bucket) == first


def test_the_cache_stays_under_its_size_least_recently_used_out(bucket):
    paths = []
    for n in range(5):
        name = bucket.save(f"f{n}.bin", ContentFile(bytes([n]) * 3000))
        paths.append(cache.local_path(name, bucket))
        os.utime(paths[-1], (1000 + n, 1000 + n))  # distinct use times, oldest first
    kept = [p for p in paths if os.path.exists(p)]
    assert sum(os.path.getsize(p) for p in kept) <= 10_000
    assert kept == paths[-len(kept):] and paths[-1] in kept


def test_local_paths_keep_order_and_an_unreadable_file_does_not_stop_the_rest(bucket):
    names = [bucket.save(f"img{n}.png", ContentFile(b"%d" % n)) for n in range(40)]
    paths = list(cache.local_paths([*names[:20], "missing.png", *names[20:]], bucket))
    assert len(paths) == 41 and not os.path.exists(paths[20])
    readable = [Path(p).read_bytes() for i, p in enumerate(paths) if i != 20]
    assert readable == [b"%d" % n for n in range(40)]


def test_staged_uploads_travel_through_the_storage(bucket, tmp_path):
    folder = tmp_path / "upload-x"
    folder.mkdir()
    (folder / "photos.zip").write_bytes(b"zip bytes")
    (folder / "labels.json").write_text("{}")
    source = cache.stage_folder(str(folder), bucket)
    assert source == "storage:staging/upload-x" and not folder.exists()
    with cache.staged_folder(source, bucket) as local:
        assert sorted(os.listdir(local)) == ["labels.json", "photos.zip"]
        assert Path(local, "photos.zip").read_bytes() == b"zip bytes"
    assert not os.path.exists(local)
    cache.staged_delete(source, bucket)
    assert bucket.listdir("staging/upload-x") == ([], [])


def test_with_a_local_storage_staged_uploads_stay_where_they_are(tmp_path):
    local = FileSystemStorage(location=tmp_path / "media")
    folder = tmp_path / "upload-y"
    folder.mkdir()
    assert cache.stage_folder(str(folder), local) == str(folder) and folder.exists()


def test_the_sweep_removes_only_old_staged_folders_no_job_needs(bucket, tmp_path):
    from datetime import timedelta

    for name in ("upload-old", "upload-active", "upload-new"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a.png").write_bytes(b"png")
        cache.stage_folder(str(folder), bucket)
    active = {"storage:staging/upload-active"}
    assert cache.staged_in_storage_sweep(active=active, older_than=timedelta(hours=1), storage=bucket) == 0
    assert cache.staged_in_storage_sweep(active=active, older_than=timedelta(0), storage=bucket) == 2
    assert bucket.listdir("staging/upload-active")[1] == ["a.png"]
    assert bucket.listdir("staging/upload-old")[1] == [] and bucket.listdir("staging/upload-new")[1] == []
