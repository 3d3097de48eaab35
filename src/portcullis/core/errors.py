"""Domain errors. Interfaces turn them into problem details, exit codes or page messages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with the input, and where: a field, and a line for files."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out


class PortcullisError(Exception):
    status = 400
    title = "Bad request"
    exit_code = 1

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[FieldError] = errors or []

    def __str__(self) -> str:
        if not self.errors:
            return self.detail
        return self.detail + "\n" + "\n".join(f"  - {e}" for e in self.errors)


class ValidationFailed(PortcullisError):
    status = 422
    title = "Invalid input"
    exit_code = 2


class NotFound(PortcullisError):
    status = 404
    title = "Not found"
    exit_code = 3


class Conflict(PortcullisError):
    status = 409
    title = "Conflict"
    exit_code = 4


class AuthenticationFailed(PortcullisError):
    status = 401
    title = "Authentication required"
    exit_code = 5


class PermissionDenied(PortcullisError):
    status = 403
    title = "Forbidden"
    exit_code = 6


class TooManyAttempts(PortcullisError):
    status = 429
    title = "Too many attempts"
    exit_code = 7


class SchemaBehind(PortcullisError):
    status = 503
    title = "Database schema is behind"
    exit_code = 8


@dataclass
class ErrorCollector:
    """Gathers every problem before refusing, so one report names them all."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, field_name: str, message: str, line: int | None = None) -> None:
        self.errors.append(FieldError(field_name, message, line))

    def raise_if_any(self, detail: str) -> None:
        if self.errors:
            raise ValidationFailed(detail, list(self.errors))
