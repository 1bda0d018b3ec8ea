"""The molt demo project: one endpoint served by Django and offloaded to molt-worker."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _use_checkout_molt_accel() -> None:
    """Without an installed molt_accel, use the one of this checkout (``python/``)."""
    if importlib.util.find_spec("molt_accel") is not None:
        return
    checkout = Path(__file__).resolve().parents[3] / "python"
    if (checkout / "molt_accel").is_dir():
        sys.path.append(str(checkout))


_use_checkout_molt_accel()
