"""JSON lines from any source, read through a configured mapping of dotted paths (e.g. an ECS document).

For sources Portcullis has no parser of its own for: the operator says which field holds the time, the actor,
the action and so on, and how the source's values map to Portcullis's outcomes, categories and methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, TypeVar

from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome, config_error
from portcullis.events.parsers.fields import (
    MISSING,
    TIME_ERRORS,
    FieldPath,
    TimeFormat,
    config_map,
    json_type,
    load_record,
    text,
)

_REQUIRED: Final = ("time", "actor", "action")
_OPTIONAL: Final = ("outcome", "category", "method", "source_address", "target", "host", "detail")
_ACTOR_KINDS: Final = {"username": ActorKind.USERNAME, "idp": ActorKind.IDP, "badge": ActorKind.BADGE}


_E = TypeVar("_E", Outcome, Category, Method)


def _value_map(config: Mapping[str, Any], key: str, enum: type[_E]) -> dict[str, _E]:
    """The source's values to Portcullis's; Portcullis's own values are understood without being listed."""
    known = {member.value: member for member in enum if member.value}
    out = dict(known)
    for value, mapped in config_map(config, key).items():
        if mapped not in known:
            raise config_error(f"{key}.{value}", f"must be one of {', '.join(known)}")
        out[value] = known[mapped]
    return out


class JsonMappedParser:
    """Config: fields {time, actor, action (required); outcome, category, method, source_address, target, host,
    detail} as dotted paths; time_format; timezone; category (fixed, when no field holds one, or as the
    fallback when the record lacks it); outcomes, categories, methods (value maps); privileged_actions [...];
    actor_kind username|idp|badge."""

    name: ClassVar[str] = "json-mapped"
    framing: ClassVar[str] = "lines"

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        fields = config.get("fields")
        if not isinstance(fields, Mapping):
            raise config_error("fields", "must map time, actor and action (at least) to dotted paths")
        unknown = sorted(set(fields) - {*_REQUIRED, *_OPTIONAL})
        if unknown:
            raise config_error(f"fields.{unknown[0]}", f"is not one of {', '.join((*_REQUIRED, *_OPTIONAL))}")
        for role in _REQUIRED:
            if role not in fields:
                raise config_error(f"fields.{role}", "is required")
        paths = {role: FieldPath(path, f"fields.{role}") for role, path in fields.items()}
        self._time_path = paths["time"]
        self._actor_path = paths["actor"]
        self._action_path = paths["action"]
        self._outcome_path = paths.get("outcome")
        self._category_path = paths.get("category")
        self._method_path = paths.get("method")
        self._source_path = paths.get("source_address")
        self._target_path = paths.get("target")
        self._host_path = paths.get("host")
        self._detail_path = paths.get("detail")
        self._time = TimeFormat(config.get("time_format", "iso8601"), config.get("timezone", "UTC"))
        self._outcomes = _value_map(config, "outcomes", Outcome)
        self._categories = _value_map(config, "categories", Category)
        self._methods = _value_map(config, "methods", Method)
        fixed = config.get("category")
        if fixed is None:
            if self._category_path is None:
                raise config_error("category", "is required when fields.category is not given")
            self._category: Category | None = None
        elif not isinstance(fixed, str) or fixed not in {c.value for c in Category}:
            raise config_error("category", f"must be one of {', '.join(c.value for c in Category)}")
        else:
            self._category = Category(fixed)
        privileged = config.get("privileged_actions", [])
        if not isinstance(privileged, list) or not all(isinstance(a, str) for a in privileged):
            raise config_error("privileged_actions", "must be a list of action values")
        self._privileged = frozenset(privileged)
        kind = config.get("actor_kind", "username")
        if not isinstance(kind, str) or kind not in _ACTOR_KINDS:
            raise config_error("actor_kind", f"must be one of {', '.join(_ACTOR_KINDS)}")
        self._actor_kind = _ACTOR_KINDS[kind]

    def state(self) -> dict[str, Any]:
        return {}

    def parse(self, raw: str) -> Event | None:
        record = load_record(raw)
        if record is None:
            return None  # a blank line between records written one per line
        stamp = self._time_path.get(record)
        if stamp is MISSING or stamp is None:
            raise Malformed(f"missing field {self._time_path.path!r} (the time)")
        try:
            when = self._time.parse(stamp)
        except TIME_ERRORS:
            raise self._time.malformed(stamp, f"field {self._time_path.path!r}") from None
        actor = _required(record, self._actor_path, "the actor")
        action = _required(record, self._action_path, "the action")
        outcome = Outcome.UNKNOWN
        if self._outcome_path is not None:
            seen = _optional(record, self._outcome_path)
            if seen:
                found = self._outcomes.get(seen)
                if found is None:
                    raise Malformed(f"outcome {seen!r} in field {self._outcome_path.path!r} is not mapped")
                outcome = found
        category = self._read_category(record)
        method = Method.UNKNOWN
        if self._method_path is not None:
            seen = _optional(record, self._method_path)
            if seen:
                found_method = self._methods.get(seen)
                if found_method is None:
                    raise Malformed(f"method {seen!r} in field {self._method_path.path!r} is not mapped")
                method = found_method
        return Event(
            time=when,
            category=category,
            action=action,
            outcome=outcome,
            actor=actor,
            actor_kind=self._actor_kind,
            target=_optional(record, self._target_path),
            host=_optional(record, self._host_path),
            source_address=_optional(record, self._source_path),
            method=method,
            privileged=action in self._privileged or category is Category.PRIVILEGED_ACTION,
            detail=_optional(record, self._detail_path),
        )

    def _read_category(self, record: dict[str, Any]) -> Category:
        path = self._category_path
        if path is None:
            assert self._category is not None  # the constructor requires one or the other
            return self._category
        seen = path.get(record)
        if seen is MISSING or seen is None or seen == [] or seen == "":
            if self._category is not None:
                return self._category
            raise Malformed(f"missing field {path.path!r} (the category)")
        # ECS writes event.category as a list ("authentication", "session"): the first one mapped wins.
        candidates = seen if type(seen) is list else [seen]
        for candidate in candidates:
            try:
                found = self._categories.get(text(candidate))
            except TypeError:
                raise Malformed(f"field {path.path!r} holds {json_type(candidate)}, not a value") from None
            if found is not None:
                return found
        shown = ", ".join(repr(text(c)) for c in candidates)
        raise Malformed(f"category {shown} in field {path.path!r} is not mapped")


def _required(record: dict[str, Any], path: FieldPath, role: str) -> str:
    value = path.get(record)
    if value is MISSING or value is None:
        raise Malformed(f"missing field {path.path!r} ({role})")
    try:
        seen = text(value)
    except TypeError:
        raise Malformed(f"field {path.path!r} ({role}) holds {json_type(value)}, not a value") from None
    if not seen:
        raise Malformed(f"field {path.path!r} ({role}) is empty")
    return seen


def _optional(record: dict[str, Any], path: FieldPath | None) -> str:
    if path is None:
        return ""
    value = path.get(record)
    if type(value) is str:
        return value
    try:
        return text(value)
    except TypeError:
        raise Malformed(f"field {path.path!r} holds {json_type(value)}, not a value") from None
