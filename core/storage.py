"""Files in storage, seen from a process that needs them on local disk.

Every stored file is reached through Django's storage API (local folder or an S3-compatible
bucket). Model backends (ultralytics, torchvision) read paths, so a worker that needs a file
locally asks ``local_path``: with a local storage that is the file itself; otherwise it is a
copy in a size-bounded cache on the worker's own disk, keyed by the storage name. That is
sound because a stored name never gets other content: images are named by their sha256,
weights by their version, exports by their job, and the storages do not overwrite
(``file_overwrite`` off). Uploads that wait for an import job are staged the same way, so a
worker on another machine can read them (``stage_folder``/``staged_folder``).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.utils import timezone

logger = logging.getLogger(__name__)

STAGED_PREFIX = "storage:"  # an ImportJob.source_path that names a folder in storage, not on disk
_PREFETCH_THREADS = 8
_lock = threading.Lock()
_cached_bytes: int | None = None  # this process's running estimate of the cache's size


def storage_has_paths(storage: Storage = default_storage) -> bool:
    try:
        storage.path("probe")
    except NotImplementedError:
        return False
    return True


def local_path(name: str, storage: Storage = default_storage) -> str:
    """A local file with the content stored under ``name``."""
    if storage_has_paths(storage):
        return storage.path(name)
    target = _cache_file(name)
    if target.exists():
        os.utime(target)  # recently used: evicted last
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, storage.open(name, "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(partial, target)  # whole or absent: another process may read it at once
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    _account(target.stat().st_size)
    return str(target)


def local_paths(names: Iterable[str], storage: Storage = default_storage) -> Iterator[str]:
    """``local_path`` of each name, in order, fetched a few at a time ahead of the reader. A
    file that cannot be fetched is logged and its (absent) cache path yielded, so its reader
    reports it as unreadable, as for a missing local file, and the others still come."""
    if storage_has_paths(storage):
        yield from (storage.path(name) for name in names)
        return
    with ThreadPoolExecutor(_PREFETCH_THREADS, thread_name_prefix="fetch") as pool:
        pending: list[tuple[str, Future]] = []
        for name in names:
            pending.append((name, pool.submit(local_path, name, storage)))
            if len(pending) >= 4 * _PREFETCH_THREADS:
                yield _fetched(*pending.pop(0))
        for name, future in pending:
            yield _fetched(name, future)


def prefetch(names: Iterable[str], storage: Storage = default_storage) -> None:
    """Bring files into the local cache ahead of use (a failure is left for the reader)."""
    for _path in local_paths(names, storage):
        pass


def _fetched(name: str, future: Future) -> str:
    try:
        return future.result()
    except Exception as exc:  # one unreadable file must not stop the others
        logger.warning("cannot fetch %s from storage: %s", name, exc)
        return str(_cache_file(name))


def _cache_file(name: str) -> Path:
    key = hashlib.sha256(name.encode()).hexdigest()
    # the suffix stays: readers such as ultralytics pick the decoder by it
    return Path(settings.VISION_STORAGE_CACHE_DIR) / key[:2] / f"{key}{PurePosixPath(name).suffix.lower()}"


def _account(added: int) -> None:
    """Keep the cache under VISION_STORAGE_CACHE_MAX_BYTES, least recently used out first."""
    global _cached_bytes
    with _lock:
        if _cached_bytes is None:
            _cached_bytes = sum(f.stat().st_size for f in _cache_files())
        else:
            _cached_bytes += added
        if _cached_bytes <= settings.VISION_STORAGE_CACHE_MAX_BYTES:
            return
        files = sorted(_cache_files(), key=lambda f: f.stat().st_atime)
        total = sum(f.stat().st_size for f in files)
        keep = 0.8 * settings.VISION_STORAGE_CACHE_MAX_BYTES
        for stale in files:
            if total <= keep:
                break
            with contextlib.suppress(FileNotFoundError):
                size = stale.stat().st_size
                stale.unlink()
                total -= size
        _cached_bytes = total


def _cache_files() -> list[Path]:
    root = Path(settings.VISION_STORAGE_CACHE_DIR)
    return [f for f in root.glob("*/*") if f.is_file() and not f.name.startswith(".part-")] if root.exists() else []


def stage_folder(folder: str, storage: Storage = default_storage) -> str:
    """Make a local folder of uploads readable by any worker: with a local storage it stays
    where it is (web and workers share the disk); otherwise it is copied into storage and
    removed here. Returns the job's source path."""
    if storage_has_paths(storage):
        return folder
    prefix = f"staging/{Path(folder).name}"
    for entry in sorted(Path(folder).iterdir()):
        with entry.open("rb") as handle:
            storage.save(f"{prefix}/{entry.name}", File(handle, name=entry.name))
    shutil.rmtree(folder, ignore_errors=True)
    return STAGED_PREFIX + prefix


@contextlib.contextmanager
def staged_folder(source: str, storage: Storage = default_storage) -> Iterator[str]:
    """The local folder (or file) of a job's source path: a staged folder in storage is fetched
    into a temporary folder for the job and removed afterwards."""
    if not source.startswith(STAGED_PREFIX):
        yield source
        return
    prefix = source.removeprefix(STAGED_PREFIX)
    local = tempfile.mkdtemp(prefix="staged-")
    try:
        _dirs, files = storage.listdir(prefix)
        for file_name in files:
            with storage.open(f"{prefix}/{file_name}", "rb") as src, open(os.path.join(local, file_name), "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


def staged_delete(source: str, storage: Storage = default_storage) -> None:
    """Remove a job's staged uploads, wherever they were staged."""
    if not source.startswith(STAGED_PREFIX):
        shutil.rmtree(source, ignore_errors=True)
        return
    prefix = source.removeprefix(STAGED_PREFIX)
    with contextlib.suppress(FileNotFoundError):
        for file_name in storage.listdir(prefix)[1]:
            storage.delete(f"{prefix}/{file_name}")


def staged_in_storage_sweep(*, active: set[str], older_than, storage: Storage = default_storage) -> int:
    """Remove upload folders staged in storage that no active job names and that are older than
    ``older_than`` (a worker killed mid-import leaves them); returns how many went."""
    if storage_has_paths(storage):
        return 0
    cutoff = timezone.now() - older_than
    removed = 0
    for folder in storage.listdir("staging")[0]:
        source = f"{STAGED_PREFIX}staging/{folder}"
        files = storage.listdir(f"staging/{folder}")[1]
        if source in active or any(storage.get_modified_time(f"staging/{folder}/{f}") > cutoff for f in files):
            continue
        staged_delete(source, storage)
        removed += 1
    return removed
