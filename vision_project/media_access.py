"""Who may read a media file: a signed-in browser, a script sending its API token, or
anyone holding a signed link that has not expired.

Scripts authenticate with `Authorization: Token <key>`; a URL they are handed (an image's
url, an export's download_url) works for them as it is, and also in tools that send no
header (a downloader, an <img>), because API answers to token clients carry signed URLs:
`/media/<path>?signature=...`, valid for VISION_MEDIA_URL_MAX_AGE_SECONDS and only for the
user it was made for, who must still be a member when the file is read.
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.renderers import JSONRenderer

_SALT = "vision.media"


class MediaRefused(Exception):
    """Credentials were given and are wrong (bad token, bad or expired signature)."""


def media_url_sign(path: str, user) -> str:
    """The media URL of path with a signature for user."""
    signature = signing.dumps({"p": path, "u": user.pk}, salt=_SALT, compress=True)
    return f"{settings.MEDIA_URL}{path}?signature={quote(signature)}"


def media_caller(request, path: str):
    """The user reading path: the session's, the token's or the signature's; None when the
    request carries no credentials. Raises MediaRefused for credentials that fail."""
    if request.user.is_authenticated:
        return request.user
    header = request.META.get("HTTP_AUTHORIZATION", "").split()
    if header and header[0].lower() == "token":
        token = Token.objects.select_related("user").filter(key=header[-1]).first() if len(header) == 2 else None
        if token is None or not token.user.is_active:
            raise MediaRefused("Invalid token.")
        return token.user
    signature = request.GET.get("signature")
    if signature:
        try:
            signed = signing.loads(
                signature, salt=_SALT, max_age=settings.VISION_MEDIA_URL_MAX_AGE_SECONDS
            )
        except signing.SignatureExpired:
            raise MediaRefused("This link has expired; ask the API for a fresh URL.") from None
        except signing.BadSignature:
            raise MediaRefused("This link's signature is not valid.") from None
        user = get_user_model().objects.filter(pk=signed.get("u"), is_active=True).first()
        if signed.get("p") != path or user is None:
            raise MediaRefused("This link's signature is not valid.")
        return user
    return None


def media_urls_signed(data, user):
    """data (parsed JSON) with every local media URL in it signed for user."""
    if isinstance(data, dict):
        return {key: media_urls_signed(value, user) for key, value in data.items()}
    if isinstance(data, list):
        return [media_urls_signed(value, user) for value in data]
    if isinstance(data, str) and data.startswith(settings.MEDIA_URL) and "?" not in data:
        return media_url_sign(data[len(settings.MEDIA_URL):], user)
    return data


class MediaSigningJSONRenderer(JSONRenderer):
    """JSON; for a caller authenticated by token, media URLs in the answer are signed."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        request = (renderer_context or {}).get("request")
        if request is not None and isinstance(getattr(request, "successful_authenticator", None),
                                               TokenAuthentication):
            data = media_urls_signed(data, request.user)
        return super().render(data, accepted_media_type, renderer_context)
