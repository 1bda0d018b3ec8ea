"""The demo rows, the formula of apps/molt-seed/demo_rows.cpp (a pure function, no randomness).

For user u in 1..users and j in 0..items_per_user-1:
  id         = (u-1)*items_per_user + j + 1
  status     = "closed" when (u + j) % 3 == 0, else "open"
  created_at = "2026-MM-DDTHH:MM:SSZ", month j%12+1, day j%28+1, hour j%24,
               minute (j*7)%60, second (j*13)%60
  title      = "Item <id> <word>", word = WORDS[id % 8]
  score      = ((id*37) % 1000) / 100.0
  unread     = id % 4 == 0 (stored as 0/1)
"""

from __future__ import annotations

from collections.abc import Iterator

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
DEFAULT_USERS = 1000
DEFAULT_ITEMS_PER_USER = 200

DemoRow = tuple[int, int, str, str, str, float, int]  # the table's column order


def demo_row(user: int, j: int, items_per_user: int) -> DemoRow:
    item_id = (user - 1) * items_per_user + j + 1
    return (
        item_id,
        user,
        f"2026-{j % 12 + 1:02d}-{j % 28 + 1:02d}T{j % 24:02d}:{j * 7 % 60:02d}:{j * 13 % 60:02d}Z",
        "closed" if (user + j) % 3 == 0 else "open",
        f"Item {item_id} {WORDS[item_id % 8]}",
        (item_id * 37 % 1000) / 100.0,
        1 if item_id % 4 == 0 else 0,
    )


def demo_rows(users: int, items_per_user: int) -> Iterator[DemoRow]:
    """Every row in id order, user 1 first."""
    for user in range(1, users + 1):
        for j in range(items_per_user):
            yield demo_row(user, j, items_per_user)
