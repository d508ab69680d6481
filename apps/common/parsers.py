import io

from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


class LimitedJSONParser(JSONParser):
    """JSON parser that refuses bodies over the view's `max_body_bytes` with a 413.

    Django only limits `request.body`; DRF reads the raw stream, so the limit is applied
    here while reading, which also covers chunked bodies without a Content-Length.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        view = (parser_context or {}).get("view")
        limit = getattr(view, "max_body_bytes", settings.MAX_NOTIFICATION_BODY_BYTES)
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        return super().parse(io.BytesIO(data), media_type, parser_context)
