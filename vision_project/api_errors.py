"""Every API error is JSON with a human-readable `detail`."""
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from labeling.payloads import PayloadError


class Conflict(Exception):
    """A request collides with running work; carries the id of what it collided with."""

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


def exception_handler(exc, context):
    if isinstance(exc, Conflict):
        return Response({"detail": exc.detail, **exc.extra}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, PayloadError):
        return Response({"detail": f"Invalid payload: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            detail = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            return Response({"detail": detail, "errors": exc.message_dict}, status=status.HTTP_400_BAD_REQUEST)
        detail = "; ".join(exc.messages)
        return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, (dict, list)) and "detail" not in response.data:
        response.data = {"detail": _summarize(response.data), "errors": response.data}
    return response


def _summarize(errors) -> str:
    if isinstance(errors, dict):
        parts = [f"{field}: {_summarize(value)}" for field, value in errors.items()]
        return "; ".join(parts)
    if isinstance(errors, list):
        return " ".join(_summarize(e) for e in errors)
    return str(errors)
