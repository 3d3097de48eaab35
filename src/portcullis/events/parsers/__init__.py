"""The parsers by the format name a source is configured with; one module per format."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.events.parsers.base import Parser

# format -> (module, class); imported on first use so a source only pays for its own parser.
FORMATS: dict[str, tuple[str, str]] = {
    "syslog": ("syslog", "SyslogParser"),
    "journald-json": ("journald", "JournaldParser"),
    "badge-csv": ("badge_csv", "BadgeCsvParser"),
    "cloudtrail": ("cloudtrail", "CloudTrailParser"),
    "keycloak": ("keycloak", "KeycloakParser"),
    "json-mapped": ("json_mapped", "JsonMappedParser"),
}


def parser_class(fmt: str) -> Any:
    try:
        module, cls = FORMATS[fmt]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValidationFailed(
            "Unknown event format", [FieldError("format", f"{fmt!r} is not one of {known}")]
        ) from None
    return getattr(import_module(f"portcullis.events.parsers.{module}"), cls)


def build_parser(fmt: str, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> Parser:
    parser: Parser = parser_class(fmt)(config, state)
    return parser
