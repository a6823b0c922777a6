"""Alerts: a bad rating reaches the team within a sync interval, once.

``config`` (the ``alerts`` section: destinations, rules, digests, storm guards), ``records``
(what a run reads and raises, an alert's identity), ``engine`` (run by the sync in the
transaction that stores the answers: every rule, then storing new alerts and queueing one
outbox delivery per destination, the hourly cap), the rules: ``answers`` (low rating,
comment, NPS detractor), ``agents`` (an agent below target; the test in ``stats``, an exact
binomial) and ``digests``; ``recheck`` (alerts not sent yet, checked against the
configuration as it is now); ``store`` (its statements), ``report`` (the Alerts tab and its
"Handled" column). The destinations themselves are in :mod:`csat_hook.notify`; the outbox
delivers alerts.
"""
