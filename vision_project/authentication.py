"""Sign-in hardening: web sign-in attempts counted by django-axes, API tokens that expire.
Kept apart from the views: DRF imports the authentication classes while it loads."""
from __future__ import annotations

import functools
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from .queries import Columns, execute_prepared


class SignInAttemptBackend(AxesStandaloneBackend):
    """Counts and refuses web sign-ins (the login page, the token endpoint). A call without a
    request (Client.login in tests, a management command) is no web attempt: it is left to
    the next backend instead of failing for want of a request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


@functools.cache
def _token_columns() -> tuple[Columns, Columns]:
    return Columns(Token, "k"), Columns(get_user_model(), "u")


def token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(days=settings.VISION_TOKEN_TTL_DAYS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token auth, refusing a token older than VISION_TOKEN_TTL_DAYS."""

    def authenticate_credentials(self, key):
        # DRF's lookup (the token with its user, one query; an inactive user refused), in
        # SQL written once instead of a QuerySet compiled on every API request.
        token_columns, user_columns = _token_columns()
        with connection.cursor() as cursor:
            execute_prepared(
                cursor,
                f"SELECT {token_columns.sql}, {user_columns.sql} FROM {Token._meta.db_table} k "
                f"JOIN {user_columns.model._meta.db_table} u ON u.{user_columns.model._meta.pk.column} = k.user_id "
                "WHERE k.key = %s",
                [key],
            )
            row = cursor.fetchone()
        if row is None:
            raise AuthenticationFailed(_("Invalid token."))
        token = token_columns.build(row)
        user = token.user = user_columns.build(row, token_columns.width)
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        if token_expires_at(token) <= timezone.now():
            raise AuthenticationFailed("Token has expired; get a new one from POST /api/auth/token/.")
        return user, token
