"""csat-hook: survey customers when a helpdesk dialog closes; per-agent CSAT in Google Sheets."""

from __future__ import annotations

__version__ = "0.1.0"
