"""Every API error is JSON with a human-readable `detail`."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.jobs import job_dispatched
from labeling.payloads import PayloadError

BROKER_RETRY_AFTER_S = 60


class Conflict(Exception):
    """A request collides with running work; carries the id of what it collided with."""

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class JobAcceptedSerializer(serializers.Serializer):
    """The body job_accepted answers with (202, or 503 with a detail)."""

    job_id = serializers.IntegerField()
    status_url = serializers.CharField()


def job_accepted(job, data: dict) -> Response:
    """The answer to a request that queued ``job``: 202 with ``data``, or 503 with the same
    body (the job's id in it) when the broker did not take the task. The job is not lost: it
    stays queued and the re-dispatch sweep sends it once the broker is back."""
    # Inside an outer transaction the send waits for its commit and has not been tried yet.
    if connection.in_atomic_block or job_dispatched(job):
        return Response(data, status=status.HTTP_202_ACCEPTED)
    detail = ("The job is queued, but the task broker is unreachable; it starts once the broker is back. "
              "Poll its status; no need to ask again.")
    return Response({**data, "detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                    headers={"Retry-After": str(BROKER_RETRY_AFTER_S)})


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
