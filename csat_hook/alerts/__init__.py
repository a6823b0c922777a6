"""Alerts: a bad rating reaches the team within a sync interval, once.

``config`` (the ``alerts`` section: destinations, rules, digests, storm guards), ``stats``
(the agent test: an exact binomial), ``engine`` (the rules, run by the sync in the
transaction that stores the answers, queueing one outbox delivery per destination),
``store`` (its statements), ``report`` (the Alerts tab and its "Handled" column). The
destinations themselves are in :mod:`csat_hook.notify`; the outbox delivers alerts.
"""
