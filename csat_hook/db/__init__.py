"""The database: engine and transactions (``engine``), the tables (``schema``), migrations
(``migrate``), the one group-commit mechanism (``group_commit``), and text both databases can
hold (``text``).

Statements live with the flow that runs them: ``intake/store.py`` (surveys),
``outbox/store/`` (the reply queue), ``sync/store.py`` (answers and the sync's ledger).
"""
