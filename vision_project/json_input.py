"""JSON from outside: nesting deep enough to exhaust the parser's recursion is bad input."""
import json

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

TOO_DEEP = "JSON nested too deeply to read"


def json_loads(text: str | bytes):
    """json.loads, with ValueError (as for malformed JSON) for nesting past the recursion limit."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser answers malformed JSON with 400 but lets RecursionError through (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - {TOO_DEEP}.") from None


class BoundedJSONField(serializers.JSONField):
    """A JSON field whose form-encoded text may nest past the recursion limit: 400, not 500."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except RecursionError:
            raise serializers.ValidationError(TOO_DEEP) from None
