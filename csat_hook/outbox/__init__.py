"""The outbox: replies queued by intake, delivered exactly once by workers.

``store`` (every statement: ``store.enqueue`` queueing and cancelling, ``store.claims``
claiming with a lease, ``store.workers`` heartbeat rows and takeovers, ``store.outcomes``
recording outcomes; every name importable from ``store``), ``config`` (the ``delivery``
section), ``delivery`` (one row: ``deliver_one``, dispatching to ``reply_delivery`` or
``alert_delivery``; ``results`` holds what they return), ``worker`` (the queue loop: claim
with a lease, deliver, record), ``heartbeat`` (the worker's liveness, leases, takeovers and
fence), ``recorder`` (writing outcomes, group-committed), ``wake`` (wake-ups, NOTIFY),
``runtime`` (start-up shared by ``serve`` and ``worker``), ``listing`` and ``api`` (the
operator API).
"""
