"""The account: API tokens issued (replacing an expired one) and revoked, by API and page."""
from __future__ import annotations

from axes.helpers import get_lockout_message
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from .authentication import token_expires_at
from .json_input import BoundedJSONParser


@transaction.atomic
def token_for(user) -> Token:
    """The user's live token; an expired one is replaced by a new key."""
    token, created = Token.objects.select_for_update().get_or_create(user=user)
    if not created and token_expires_at(token) <= timezone.now():
        token.delete()
        token = Token.objects.create(user=user)
    return token


class TokenApi(ObtainAuthToken):
    """POST: a token for username and password (429 once sign-ins are locked out).
    DELETE: revoke the caller's token."""

    parser_classes = [BoundedJSONParser]  # JSON bodies only, as everywhere in the API

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    @extend_schema(responses={200: inline_serializer("TokenOut", {
        "token": serializers.CharField(), "expires_at": serializers.DateTimeField()})})
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # The attempt backend flags the request it was handed: here DRF's.
            if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
                return Response({"detail": get_lockout_message()}, status=settings.AXES_HTTP_RESPONSE_CODE)
            raise ValidationError(serializer.errors)
        token = token_for(serializer.validated_data["user"])
        return Response({"token": token.key, "expires_at": token_expires_at(token)})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, *args, **kwargs):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@login_required
def account(request):
    token = Token.objects.filter(user=request.user).first()
    context = {"token": token, "expires_at": token_expires_at(token) if token else None,
               "expired": token is not None and token_expires_at(token) <= timezone.now()}
    return render(request, "account.html", context)


@require_POST
@login_required
def token_revoke(request):
    Token.objects.filter(user=request.user).delete()
    return redirect("account")
