"""A JSON parser that bounds what it reads and refuses what JSON does not allow."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from erp.errors import PayloadTooLarge


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(BaseParser):
    """Parses JSON bodies, refusing bodies over the view's ``max_body_bytes`` with a 413.

    DRF reads the request stream directly, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not
    apply: the bound is enforced here, on the declared length and on what is actually read.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        view = parser_context.get("view")
        limit = getattr(view, "max_body_bytes", None) or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared:
            try:
                if int(declared) > limit:
                    raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
            except ValueError:
                pass
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        try:
            text = raw.decode(parser_context.get("encoding") or "utf-8")
            return json.loads(text, parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc
