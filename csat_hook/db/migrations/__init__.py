"""Alembic migrations (``csat-hook db upgrade``)."""
