"""The JSON error shape of the public contract, for every error the API can answer."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

_CODES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _join(prefix: str, key) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def flatten_details(detail, prefix: str = "") -> dict[str, list[str]]:
    """Map DRF's nested error detail to `{"recipients.0.email": [messages]}`."""
    if isinstance(detail, dict):
        items = [
            (prefix if key == "non_field_errors" else _join(prefix, key), value)
            for key, value in detail.items()
        ]
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        items = [(_join(prefix, index), item) for index, item in enumerate(detail) if item]
    else:
        messages = detail if isinstance(detail, list) else [detail]
        return {prefix or "non_field_errors": [str(message) for message in messages]}
    flat: dict[str, list[str]] = {}
    for path, value in items:
        for sub_path, messages in flatten_details(value, path).items():
            flat.setdefault(sub_path, []).extend(messages)
    return flat


def _validation_message(details: dict[str, list[str]]) -> str:
    first_field = next(iter(details), None)
    if first_field is None:
        return "Invalid input."
    return f"Invalid input: {first_field}: {details[first_field][0]}"


def api_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view"))
        return Response(
            error_body("internal_error", "An internal error occurred."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    code = _CODES.get(response.status_code, getattr(exc, "default_code", "error"))
    if isinstance(exc, exceptions.ValidationError):
        details = flatten_details(exc.detail)
        message = _validation_message(details)
    else:
        details = {}
        message = str(getattr(exc, "detail", "")) or response.status_text
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after": int(exc.wait)}
    response.data = error_body(code, message, details)
    return response


def json_404(request, exception=None):
    if not request.path.startswith("/api/"):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_500(request):
    return JsonResponse(error_body("internal_error", "An internal error occurred."), status=500)


def json_400(request, exception=None):
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)
