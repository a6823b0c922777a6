"""The outbox: replies queued by intake, delivered exactly once by workers.

``store`` (every statement), ``config`` (the ``delivery`` section), ``delivery`` (one reply:
render, post, say what happened), ``worker`` (the queue loop: claim with a lease, deliver,
record), ``wake`` (wake-ups, NOTIFY), ``runtime`` (start-up shared by ``serve`` and
``worker``), ``api`` (the operator API).
"""
