"""Vision-language assist, off by default: an OpenAI-compatible chat completions endpoint
suggests names for a cluster, or a taxonomy, from a few thumbnails.

Configured by the deployment's admin in the environment (VISION_ASSIST_URL, _MODEL, and
_KEY_ENV, the name of the variable that holds the key: the key is read when a request is
made and never stored). Every bound is explicit: images per request, thumbnail side, request
and reply bytes, one deadline for the whole exchange, and requests per project and hour.
Each call that is sent is logged (training.AssistRequest: when, who, endpoint, status,
duration). Nothing else depends on it: a failure answers the caller with what went wrong
and changes no other row. Standard library HTTP (urllib), no new dependency.
"""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image as PILImage

from core.models import Image, Project

from .models import AssistRequest, AssistStatus

PURPOSES = ("cluster_names", "taxonomy")
MAX_NAMES = 10
MAX_NAME_LENGTH = 100
MAX_TAXONOMY_NODES = 200
MAX_TAXONOMY_DEPTH = 4
_READ_CHUNK = 16 * 1024


class AssistError(Exception):
    """A request the assist could not answer; ``status_code`` is the HTTP status for the API."""

    status_code = 502

    def __init__(self, detail: str, log_id: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.log_id = log_id


class AssistUnavailable(AssistError):
    """Not configured here (no endpoint, or its key is missing): a state of this site, not a
    fault of the server, so 409 rather than a 5xx; it stays so until an admin configures it."""

    status_code = 409


class AssistBudgetSpent(AssistError):
    status_code = 429


class AssistBadInput(AssistError):
    status_code = 400


@dataclass
class AssistReply:
    result: list
    log_id: int


def assist_enabled() -> bool:
    return bool(settings.VISION_ASSIST_URL.strip())


def assist_requests_left(project: Project) -> int:
    since = timezone.now() - timedelta(hours=1)
    used = AssistRequest.objects.filter(project=project, created_at__gte=since).count()
    return max(0, settings.VISION_ASSIST_REQUESTS_PER_HOUR - used)


def assist_status(project: Project) -> dict:
    enabled = assist_enabled()
    return {"enabled": enabled, "model": settings.VISION_ASSIST_MODEL if enabled else "",
            "requests_left": assist_requests_left(project) if enabled else 0,
            "max_images": settings.VISION_ASSIST_MAX_IMAGES}


def assist_suggest(*, project: Project, user, purpose: str, image_ids: list[int]) -> AssistReply:
    """Ask the endpoint for cluster names (``cluster_names``: a list of strings, best first)
    or a taxonomy (``taxonomy``: a list of {"name", "children"} trees) for the images.
    Raises AssistUnavailable (off, or its key variable unset), AssistBudgetSpent, AssistBadInput,
    or AssistError (timeout, HTTP error, malformed reply; logged)."""
    if purpose not in PURPOSES:
        raise AssistBadInput(f"Unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}.")
    url = settings.VISION_ASSIST_URL.strip()
    if not url:
        raise AssistUnavailable("The vision-language assist is off: no VISION_ASSIST_URL is configured.")
    if urlparse(url).scheme not in ("http", "https"):
        raise AssistUnavailable(f"VISION_ASSIST_URL must be an http(s) URL; got {url!r}.")
    key = _key()
    if assist_requests_left(project) <= 0:
        raise AssistBudgetSpent(f"This project used its {settings.VISION_ASSIST_REQUESTS_PER_HOUR} assist "
                                "requests of the last hour; try again later.")
    thumbnails = _thumbnails(project, image_ids)
    body = json.dumps(_chat_request(project, purpose, thumbnails)).encode()
    if len(body) > settings.VISION_ASSIST_MAX_REQUEST_BYTES:
        raise AssistBadInput(f"The request would be {len(body)} bytes, over the limit of "
                             f"{settings.VISION_ASSIST_MAX_REQUEST_BYTES}; send fewer images.")
    started = time.monotonic()
    status, http_status, detail, result = _exchange(url, key, body, purpose)
    log = AssistRequest.objects.create(
        project=project, user=user if getattr(user, "is_authenticated", False) else None, endpoint=url[:500],
        model_name=settings.VISION_ASSIST_MODEL[:200], purpose=purpose, status=status, http_status=http_status,
        duration_ms=int((time.monotonic() - started) * 1000), images=len(thumbnails), request_bytes=len(body),
        detail=detail[:500],
    )
    if status != AssistStatus.OK:
        raise AssistError(f"The assist endpoint failed ({status}): {detail}", log_id=log.pk)
    return AssistReply(result=result, log_id=log.pk)


def _key() -> str:
    name = settings.VISION_ASSIST_KEY_ENV.strip()
    if not name:
        return ""
    key = os.environ.get(name, "")
    if not key:
        raise AssistUnavailable(f"The assist key variable {name} is not set in the environment.")
    return key


def _thumbnails(project: Project, image_ids: list[int]) -> list[str]:
    """JPEG data URLs of the images, longest side VISION_ASSIST_THUMBNAIL_SIDE."""
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    if not ids or len(ids) > settings.VISION_ASSIST_MAX_IMAGES:
        raise AssistBadInput(f"Send 1-{settings.VISION_ASSIST_MAX_IMAGES} image ids; got {len(ids)}.")
    images = Image.objects.filter(project=project, pk__in=ids).in_bulk()
    missing = [i for i in ids if i not in images]
    if missing:
        raise AssistBadInput(f"Images {missing} are not images of project {project.pk}.")
    side = settings.VISION_ASSIST_THUMBNAIL_SIDE
    urls = []
    for image_id in ids:
        image = images[image_id]
        name = (image.display_file or image.file).name
        try:
            with default_storage.open(name, "rb") as stream:
                picture = PILImage.open(stream)
                picture.draft("RGB", (side, side))
                picture = picture.convert("RGB")
                picture.thumbnail((side, side))
                out = io.BytesIO()
                picture.save(out, "JPEG", quality=75)
        except (OSError, ValueError) as exc:
            raise AssistBadInput(f"Image {image_id} cannot be read: {exc}") from None
        urls.append("data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode())
    return urls


def _chat_request(project: Project, purpose: str, thumbnails: list[str]) -> dict:
    classes = list(project.label_classes.values_list("name", flat=True))
    known = f" The project's classes so far: {', '.join(classes)}." if classes else ""
    if purpose == "cluster_names":
        ask = ("These images form one cluster of similar images in an image classification project." + known +
               ' Suggest up to 5 short class names for them, best first. Reply with JSON only: {"names": [...]}')
    else:
        ask = ("These images are samples of an image classification project." + known +
               ' Propose a taxonomy of classes for such images, at most 3 levels deep. Reply with JSON only: '
               '{"taxonomy": [{"name": "...", "children": [...]}]}')
    content: list[dict] = [{"type": "text", "text": ask}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in thumbnails]
    return {"model": settings.VISION_ASSIST_MODEL, "temperature": 0, "max_tokens": 400,
            "messages": [{"role": "system", "content": "You name classes for an image labeling team."},
                         {"role": "user", "content": content}]}


def _exchange(url: str, key: str, body: bytes, purpose: str) -> tuple[str, int | None, str, list]:
    """(status, HTTP status, detail, result) of one POST, within one deadline."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    timeout = settings.VISION_ASSIST_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    limit = settings.VISION_ASSIST_MAX_REPLY_BYTES
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) checked)
            code = response.status
            raw = b""
            while chunk := response.read(_READ_CHUNK):
                raw += chunk
                if len(raw) > limit:
                    return AssistStatus.MALFORMED, code, f"the reply is larger than {limit} bytes", []
                if time.monotonic() > deadline:
                    return AssistStatus.TIMEOUT, code, f"no complete reply within {timeout:g} s", []
    except urllib.error.HTTPError as exc:
        return AssistStatus.HTTP_ERROR, exc.code, f"HTTP {exc.code} {exc.reason}", []
    except (TimeoutError, socket.timeout):
        return AssistStatus.TIMEOUT, None, f"no reply within {timeout:g} s", []
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            return AssistStatus.TIMEOUT, None, f"no reply within {timeout:g} s", []
        return AssistStatus.UNREACHABLE, None, f"cannot connect: {exc.reason}", []
    except OSError as exc:
        return AssistStatus.UNREACHABLE, None, f"connection failed: {exc}", []
    try:
        return AssistStatus.OK, code, "", _parse(raw, purpose)
    except ValueError as exc:
        return AssistStatus.MALFORMED, code, str(exc), []


def _parse(raw: bytes, purpose: str) -> list:
    """The suggestion in a chat completions reply; ValueError saying what was wrong."""
    try:
        reply = json.loads(raw)
        content = reply["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ValueError("the reply is not a chat completion (no choices[0].message.content)") from None
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ValueError("the message content is not text")
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        raise ValueError(f"the message is not the JSON asked for: {content[:120]!r}") from None
    if purpose == "cluster_names":
        names = answer.get("names") if isinstance(answer, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError('the message has no "names" list of non-empty strings')
        return [n.strip()[:MAX_NAME_LENGTH] for n in names[:MAX_NAMES]]
    tree = answer.get("taxonomy") if isinstance(answer, dict) else None
    if not isinstance(tree, list) or not tree:
        raise ValueError('the message has no "taxonomy" list')
    count = [0]
    return [_node(n, 1, count) for n in tree]


def _node(node, depth: int, count: list[int]) -> dict:
    count[0] += 1
    if count[0] > MAX_TAXONOMY_NODES or depth > MAX_TAXONOMY_DEPTH:
        raise ValueError(f"the taxonomy is larger than {MAX_TAXONOMY_NODES} classes or "
                         f"{MAX_TAXONOMY_DEPTH} levels")
    if not isinstance(node, dict) or not isinstance(node.get("name"), str) or not node["name"].strip():
        raise ValueError("a taxonomy entry has no name")
    children = node.get("children") or []
    if not isinstance(children, list):
        raise ValueError(f"the children of {node['name']!r} are not a list")
    return {"name": node["name"].strip()[:MAX_NAME_LENGTH], "children": [_node(c, depth + 1, count) for c in children]}
