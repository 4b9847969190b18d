"""Export destinations. Image files are copied from storage in chunks, never whole."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import BinaryIO

from django.core.files.storage import default_storage


class DirSink:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _target(self, arcname: str) -> Path:
        target = self.root / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_text(self, arcname: str, text: str) -> None:
        self._target(arcname).write_text(text, encoding="utf-8")

    def write_bytes(self, arcname: str, data: bytes) -> None:
        self._target(arcname).write_bytes(data)

    def write_stored(self, arcname: str, storage_name: str) -> None:
        with default_storage.open(storage_name, "rb") as source, open(self._target(arcname), "wb") as out:
            shutil.copyfileobj(source, out)


class ZipSink:
    """Labels are deflated; images are stored as they are (they are compressed already).
    A context manager: the archive is closed on the way out, on failure too (an open
    ZipFile over a closed file errors when it is collected)."""

    def __init__(self, fileobj: BinaryIO):
        self.archive = zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED)

    def __enter__(self) -> ZipSink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.archive.close()

    def write_text(self, arcname: str, text: str) -> None:
        self.archive.writestr(arcname, text)

    def write_bytes(self, arcname: str, data: bytes) -> None:
        self.archive.writestr(arcname, data, compress_type=zipfile.ZIP_STORED)

    def write_stored(self, arcname: str, storage_name: str) -> None:
        info = zipfile.ZipInfo(arcname, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        with default_storage.open(storage_name, "rb") as source, self.archive.open(info, "w") as out:
            shutil.copyfileobj(source, out)
