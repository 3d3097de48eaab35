"""Web pages (placeholder until the web module lands)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
