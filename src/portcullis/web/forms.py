"""From a submitted register form to the service's input model, with errors per field."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.web.registers import Register

FORM = "__all__"  # errors that belong to the whole form
_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def submitted(reg: Register, form: FormData) -> dict[str, Any]:
    """What the user typed, kept for showing the form again."""
    values: dict[str, Any] = {}
    for f in reg.fields:
        if f.kind == "bool":
            values[f.name] = form.get(f.name) is not None
        elif f.kind == "refs":
            values[f.name] = [v for v in form.getlist(f.name) if isinstance(v, str) and v]
        else:
            raw = form.get(f.name)
            values[f.name] = raw.strip() if isinstance(raw, str) else ""
    return values


def stored(reg: Register, view: dict[str, Any]) -> dict[str, Any]:
    """A record's current values in the shape the form shows them."""
    values: dict[str, Any] = {}
    for f in reg.fields:
        v = view.get(f.name)
        if f.kind == "bool":
            values[f.name] = bool(v)
        elif f.kind == "refs":
            values[f.name] = [str(i) for i in (v or [])]
        elif f.kind == "tags":
            values[f.name] = ", ".join(v or [])
        else:
            values[f.name] = "" if v is None else str(v)
    return values


def stray(reg: Register, errors: dict[str, list[str]]) -> list[str]:
    """Errors about no field on the form: shown above it, so none is lost."""
    names = {f.name for f in reg.fields}
    out: list[str] = []
    for key, messages in errors.items():
        if key not in names:
            out.extend(m if key == FORM else f"{key}: {m}" for m in messages)
    return out


def _message(err: Any, kind: str) -> str:
    t = err["type"]
    if t == "missing":
        return "is required"
    if t == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        return "is required"
    if t == "string_pattern_mismatch":
        return "is not an email address" if kind == "email" else "is not in the expected format"
    if t.startswith("date_"):
        return "is not a date (use YYYY-MM-DD)"
    return _PREFIX.sub("", str(err["msg"]))


def _field_for(reg: Register, err: Any) -> str:
    if err["loc"]:
        return str(err["loc"][0])
    # A check across fields names them in its message; put it by the first one named.
    for f in reg.fields:
        if re.search(rf"\b{re.escape(f.name)}\b", str(err["msg"])):
            return f.name
    return FORM


def to_input(reg: Register, values: dict[str, Any]) -> BaseModel:
    """The schema the services take, or ValidationFailed naming each field."""
    errors: list[FieldError] = []
    data: dict[str, Any] = {}
    kinds = {f.name: f.kind for f in reg.fields}
    for f in reg.fields:
        v = values[f.name]
        if f.kind == "bool":
            data[f.name] = v
        elif f.kind == "refs":
            if not all(str(i).isdigit() for i in v):
                errors.append(FieldError(f.name, "is not a valid choice"))
            else:
                data[f.name] = [int(i) for i in v]
        elif f.kind == "tags":
            data[f.name] = [t.strip() for t in v.split(",") if t.strip()]
        elif v == "":
            if f.required:
                errors.append(FieldError(f.name, "is required"))
            elif f.kind in ("ref", "date") or f.nullable:
                data[f.name] = None
            elif f.kind != "choice":
                data[f.name] = ""
        elif f.kind == "ref":
            if v.isdigit():
                data[f.name] = int(v)
            else:
                errors.append(FieldError(f.name, "is not a valid choice"))
        else:
            data[f.name] = v
    try:
        model = reg.schema.model_validate(data)
    except ValidationError as exc:
        named = {e.field for e in errors}
        for err in exc.errors():
            where = _field_for(reg, err)
            if where not in named:
                errors.append(FieldError(where, _message(err, kinds.get(where, ""))))
        raise ValidationFailed(f"The {reg.singular} cannot be saved", errors) from None
    if errors:
        raise ValidationFailed(f"The {reg.singular} cannot be saved", errors)
    return model
