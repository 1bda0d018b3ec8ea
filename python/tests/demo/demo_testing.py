"""Constants the demo tests share (a module of its own: conftest is not importable by name)."""

from __future__ import annotations

# Small enough to seed in well under a second, large enough for full 500-row pages.
SEED_USERS = 12
SEED_ITEMS = 600
