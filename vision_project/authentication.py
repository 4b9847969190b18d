"""Sign-in hardening: web sign-in attempts counted by django-axes, API tokens that expire.
Kept apart from the views: DRF imports the authentication classes while it loads."""
from __future__ import annotations

from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


class SignInAttemptBackend(AxesStandaloneBackend):
    """Counts and refuses web sign-ins (the login page, the token endpoint). A call without a
    request (Client.login in tests, a management command) is no web attempt: it is left to
    the next backend instead of failing for want of a request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(days=settings.VISION_TOKEN_TTL_DAYS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token auth, refusing a token older than VISION_TOKEN_TTL_DAYS."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expires_at(token) <= timezone.now():
            raise AuthenticationFailed("Token has expired; get a new one from POST /api/auth/token/.")
        return user, token
