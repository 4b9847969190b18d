"""Reading uploaded zip archives without trusting them.

Entries are streamed one at a time from the central directory. Before anything is read,
the archive as a whole is refused when it declares too many entries or too many bytes
(zip bombs); an entry whose name climbs out of the archive (`../`, absolute paths, drive
letters) or that is itself an archive is reported as an error and skipped. zipfile stops
decompressing at an entry's declared size, so the declared sizes are real caps.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")


class ArchiveError(ValueError):
    """The archive as a whole cannot be read; nothing in it is imported."""


@dataclass
class ArchiveEntry:
    name: str  # the entry's path inside the archive, normalized
    info: zipfile.ZipInfo
    error: str = ""


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_entry_name(raw: str) -> str | None:
    """The entry's normalized relative path, or None when it would leave the archive."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    normalized = posixpath.normpath(name)
    if normalized == ".." or normalized.startswith("../"):
        return None
    return normalized


def _is_metadata(name: str) -> bool:
    """macOS and Windows add these to archives; they are not the user's files."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] in {".DS_Store", "Thumbs.db"}


def zip_entries(archive: zipfile.ZipFile, *, max_bytes: int, max_entries: int) -> Iterator[ArchiveEntry]:
    """Yield the archive's file entries (errors included, metadata files left out).

    Raises ArchiveError before yielding anything when the archive breaks a cap."""
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > max_entries:
        raise ArchiveError(f"archive has {len(infos):,} entries; the limit is {max_entries:,}")
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise ArchiveError(
            f"archive would unpack to {total:,} bytes; the limit is {max_bytes:,} bytes (possible zip bomb)"
        )
    for info in infos:
        name = safe_entry_name(info.filename)
        if name is None:
            yield ArchiveEntry(info.filename, info, "unsafe path in archive (absolute or with '..'); skipped")
            continue
        if _is_metadata(name):
            continue
        if info.flag_bits & 0x1:
            yield ArchiveEntry(name, info, "entry is encrypted; skipped")
        elif is_archive_name(name):
            yield ArchiveEntry(name, info, "nested archive; unpack it and import its files directly")
        else:
            yield ArchiveEntry(name, info)


def open_zip(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"not a readable zip archive ({exc})") from None
