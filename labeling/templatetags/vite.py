"""Include the Vite build's hashed entry files in templates.

    {% load vite %}{% vite_entry "src/pages/annotate.ts" %}

reads frontend/dist/.vite/manifest.json (written by `npm run build`) and emits the entry's
stylesheets, module preloads of its shared chunks and its module script.
"""
import json
import logging
from functools import lru_cache
from pathlib import Path

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()
logger = logging.getLogger(__name__)


def manifest_path() -> Path:
    return Path(settings.FRONTEND_BUILD_DIR) / ".vite" / "manifest.json"


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_manifest() -> dict | None:
    """The manifest, re-read when a rebuild changes it; None when the frontend is not built."""
    path = manifest_path()
    try:
        return _load(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None


def entry_files(manifest: dict, entry: str) -> tuple[list[str], list[str], str]:
    """(stylesheets, preloaded chunks, script) for one entry, following its static imports."""
    if entry not in manifest:
        raise KeyError(f"{entry!r} is not an entry of the frontend build; known: {sorted(manifest)}")
    css: list[str] = []
    chunks: list[str] = []
    seen: set[str] = set()

    def walk(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        chunk = manifest[key]
        for imported in chunk.get("imports", []):
            walk(imported)
            if manifest[imported]["file"] not in chunks:
                chunks.append(manifest[imported]["file"])
        for sheet in chunk.get("css", []):
            if sheet not in css:
                css.append(sheet)

    walk(entry)
    return css, chunks, manifest[entry]["file"]


@register.simple_tag
def vite_entry(entry: str):
    manifest = load_manifest()
    if manifest is None:
        logger.warning("frontend not built (%s missing): run `make frontend`", manifest_path())
        return mark_safe("<!-- frontend not built: run `make frontend` -->")
    css, chunks, script = entry_files(manifest, entry)
    return format_html(
        "{}{}<script type=\"module\" src=\"{}\"></script>",
        format_html_join("", '<link rel="stylesheet" href="{}">', ((static(f),) for f in css)),
        format_html_join("", '<link rel="modulepreload" href="{}">', ((static(f),) for f in chunks)),
        static(script),
    )
