"""CLI output: a Rich table for people, JSON for scripts, errors with meaningful exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from portcullis.core.canonical import jsonable
from portcullis.core.errors import FieldError, PortcullisError, ValidationFailed

out = Console()

# Options every paginated listing command takes (keyset pagination, as the API).
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=500, help="Rows per page")]
AfterOpt = Annotated[int | None, typer.Option("--after", help="next_after of the previous page")]
err = Console(stderr=True)


def emit(data: Any, as_json: bool, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
        return
    if isinstance(data, list):
        cols = list(columns or (data[0].keys() if data else []))
        table = Table(title=title)
        for c in cols:
            table.add_column(c)
        for row in data:
            table.add_row(*["" if row.get(c) is None else str(jsonable(row.get(c))) for c in cols])
        out.print(table)
        return
    if isinstance(data, dict):
        for k, v in data.items():
            if columns is None or k in columns:
                out.print(f"[bold]{k}[/bold]: {jsonable(v)}", highlight=False)
        return
    out.print(str(data), highlight=False)


def fail(exc: PortcullisError) -> NoReturn:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
    raise typer.Exit(exc.exit_code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn domain errors into a message on stderr and the error's exit code."""
    try:
        yield
    except PortcullisError as exc:
        fail(exc)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator form of reported() for Typer commands."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reported():
            return fn(*args, **kwargs)

    return wrapper


def emit_page(
    result: tuple[list[Any], int, int | None],
    view: Callable[[Any], dict[str, Any]],
    columns: Sequence[str],
    as_json: bool,
    title: str,
) -> None:
    """One page of a keyset-paginated listing, with how to get the next one."""
    rows, total, nxt = result
    items = [view(r) for r in rows]
    if as_json:
        emit({"items": items, "total": total, "next_after": nxt}, True)
        return
    emit(items, False, columns, title=title)
    more = f"; next page: --after {nxt}" if nxt is not None else ""
    out.print(f"{len(items)} of {total}{more}", highlight=False)


def resolve_ref(finder: Callable[[str], Any], value: str | None, option: str, described: str) -> int | None:
    """The id of what a command-line option names (an email, an external id, a key), or a clear error.

    `described` reads before the value: "person with email", "site with external id".
    """
    if value is None or not value.strip():
        return None
    found = finder(value.strip())
    if found is None:
        raise ValidationFailed(f"Unknown {option}", [FieldError(option, f"no {described} {value.strip()}")])
    return int(found if isinstance(found, int) else found.id)
