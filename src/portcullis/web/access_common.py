"""What the access pages share: outcome messages, tabs, and the drop-downs they offer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData

from portcullis.core.context import Context
from portcullis.core.http import MAX_PAGE
from portcullis.core.permissions import Permission
from portcullis.inventory import service as inventory
from portcullis.web.pages import form_data
from portcullis.web.session import WebUser, signed_in

Form = Annotated[FormData, Depends(form_data)]
SignedIn = Annotated[WebUser, Depends(signed_in)]
PAGE_SIZE = 50
# A drop-down beyond this many choices is no longer usable; past it the list is cut, as on the registers.
MAX_OPTIONS = MAX_PAGE

# The outcome of a POST travels back as a code, so a crafted link cannot put words on the page.
DONE = {
    "requested": "Your request has been recorded and sent to its approvers.",
    "cancelled": "The request has been cancelled.",
    "approved": "Your approval has been recorded.",
    "rejected": "The request has been rejected.",
    "revoked": "The grant has been revoked; the access ended now.",
    "resolved": "The finding has been resolved.",
    "created": "Created.",
    "saved": "Saved.",
}

# (label, path, any of these permissions shows the tab)
TABS: tuple[tuple[str, str, tuple[Permission, ...]], ...] = (
    ("My access", "/access", (Permission.ACCESS_REQUEST,)),
    ("Approvals", "/access/approvals", (Permission.ACCESS_APPROVE,)),
    ("Grants", "/access/grants", (Permission.ACCESS_READ,)),
    ("Findings", "/access/findings", (Permission.ACCESS_READ,)),
    ("Catalogue", "/access/catalogue", (Permission.ACCESS_READ, Permission.ACCESS_ADMIN)),
)


def tabs_for(who: WebUser) -> list[tuple[str, str]]:
    return [(label, href) for label, href, perms in TABS if any(who.principal.can(p) for p in perms)]


def done_message(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


def int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def people_options(ctx: Context) -> list[tuple[str, str]]:
    """People to choose from, for those who may read the register; [] for the others."""
    if not ctx.principal.can(Permission.INVENTORY_READ):
        return []
    rows, _, _ = inventory.list_people(ctx, limit=MAX_OPTIONS)
    return [(str(p.id), f"{p.full_name} ({p.email})") for p in rows]


def asset_options(ctx: Context) -> list[tuple[str, str]]:
    if not ctx.principal.can(Permission.INVENTORY_READ):
        return []
    rows, _, _ = inventory.list_assets(ctx, limit=MAX_OPTIONS)
    return [(str(a.id), f"{a.name} ({a.external_id})") for a in rows]


def zone_options(ctx: Context) -> list[tuple[str, str]]:
    if not ctx.principal.can(Permission.INVENTORY_READ):
        return []
    rows, _, _ = inventory.list_zones(ctx, limit=MAX_OPTIONS)
    return [(str(z.id), f"{z.name} ({z.external_id})") for z in rows]


def label_map(options: list[tuple[str, str]]) -> dict[int, str]:
    return {int(k): v for k, v in options}


def frame(request: Request, who: WebUser, section: str, **context: Any) -> dict[str, Any]:
    """The context every access page passes to its template."""
    shared = {"section": section, "tabs": tabs_for(who), "here": request.url.path, "done": done_message(request)}
    return shared | context


def describe_requests(ctx: Context, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each request view with what it asks for in words: the name, and whether any of it is privileged."""
    from portcullis.access import catalogue

    ents: dict[int, dict[str, Any]] = {}
    roles: dict[int, dict[str, Any]] = {}

    def entitlement(eid: int) -> dict[str, Any]:
        if eid not in ents:
            ents[eid] = catalogue.entitlement_view(catalogue.get_entitlement(ctx, eid))
        return ents[eid]

    out: list[dict[str, Any]] = []
    for v in views:
        if v["entitlement_id"] is not None:
            parts = [entitlement(v["entitlement_id"])]
            what = parts[0]["name"]
        else:
            rid = v["role_id"]
            if rid not in roles:
                roles[rid] = catalogue.role_view(catalogue.get_role(ctx, rid))
            parts = [entitlement(i) for i in roles[rid]["entitlement_ids"]]
            what = f"role {roles[rid]['name']}"
        out.append(
            v
            | {
                "what": what,
                "privileged": any(p["privileged"] for p in parts),
                "remote_admin": any(p["remote_admin"] for p in parts),
                "targets": ", ".join(sorted({target_label(p) for p in parts})),
            }
        )
    return out


def target_label(view: dict[str, Any]) -> str:
    if view["asset_id"] is not None:
        return f"ICT asset {view['asset_external_id']}"
    return f"zone {view['zone_external_id']}"
