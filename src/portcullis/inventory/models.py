"""Inventory tables (placeholder)."""
