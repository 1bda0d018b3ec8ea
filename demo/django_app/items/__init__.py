"""The demo's one app: the ``items`` table and the endpoints over it."""
