"""The items of one import, streamed one at a time: files of a server folder or of an
upload, with zip archives among them expanded (one level; an archive inside an archive
is an error). Every item can be opened on its own, so memory holds one file at a time."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings

from vision_project.json_input import json_loads

from .archive import ArchiveError, is_archive_name, open_zip, zip_entries


@dataclass
class SourceItem:
    name: str  # shown in the report: the path the person knows the file by
    relpath: str  # path relative to the import root; class folders come from it
    size: int | None = None
    open: Callable[[], BinaryIO] | None = None
    error: str = ""


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in {"Thumbs.db", "__MACOSX"}


def folder_files(root: str) -> Iterator[tuple[str, str]]:
    """(path relative to root, absolute path) of every file under root, sorted."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
        for file_name in sorted(files):
            if not _is_hidden(file_name):
                full = os.path.join(directory, file_name)
                yield os.path.relpath(full, root).replace(os.sep, "/"), full


def source_items(files: Iterable[tuple[str, str]]) -> Iterator[SourceItem]:
    """Items of (relative name, path on disk) pairs; zips are expanded entry by entry."""
    for relpath, path in files:
        if relpath.lower().endswith(".zip"):
            yield from _zip_items(relpath, path)
        elif is_archive_name(relpath):
            yield SourceItem(relpath, relpath, error="unsupported archive format; upload a .zip")
        else:
            yield SourceItem(relpath, relpath, os.path.getsize(path), _file_opener(path))


def source_count(files: Iterable[tuple[str, str]]) -> int:
    """How many items source_items will yield (for progress); zips count their entries."""
    total = 0
    for relpath, path in files:
        if relpath.lower().endswith(".zip"):
            try:
                with open_zip(path) as archive:
                    total += sum(1 for info in archive.infolist() if not info.is_dir())
            except ArchiveError:
                total += 1
        else:
            total += 1
    return total


def _file_opener(path: str) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")


def _zip_items(archive_name: str, path: str) -> Iterator[SourceItem]:
    try:
        archive = open_zip(path)
    except ArchiveError as exc:
        yield SourceItem(archive_name, archive_name, error=str(exc))
        return
    with archive:
        try:
            entries = list(
                zip_entries(
                    archive,
                    max_bytes=settings.VISION_MAX_ARCHIVE_BYTES,
                    max_entries=settings.VISION_MAX_ARCHIVE_ENTRIES,
                )
            )
        except ArchiveError as exc:
            yield SourceItem(archive_name, archive_name, error=f"{exc}; nothing in it was imported")
            return
        for entry in entries:
            item = SourceItem(
                f"{archive_name}/{entry.name}", entry.name, entry.info.file_size, error=entry.error
            )
            if not entry.error:
                item.open = _entry_opener(archive, entry.info)
            yield item


def _entry_opener(archive, info) -> Callable[[], BinaryIO]:
    return lambda: archive.open(info)


def label_files(path: str, suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name for messages, path) of the label files at path: the file itself, or the
    files under the folder whose names end in one of suffixes."""
    if os.path.isfile(path):
        return [(os.path.basename(path), path)]
    return [(rel, full) for rel, full in folder_files(path) if rel.lower().endswith(suffixes)]


def read_label_file(path: str) -> bytes:
    """A label file's bytes; refuses files over the label size limit."""
    limit = settings.VISION_MAX_LABEL_FILE_BYTES
    size = os.path.getsize(path)
    if size > limit:
        raise ValueError(f"label file is {size:,} bytes; the limit is {limit:,} bytes")
    with open(path, "rb") as stream:
        return stream.read()


def read_label_json(path: str):
    """A label file parsed as JSON; ValueError saying what is wrong otherwise."""
    try:
        return json_loads(read_label_file(path))  # nesting past the recursion limit: ValueError
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(str(exc)) from None
