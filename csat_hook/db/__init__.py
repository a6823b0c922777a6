"""The database: engine and transactions (``engine``), the tables (``schema``), migrations
(``migrate``), and the one group-commit mechanism (``group_commit``).

Statements live with the flow that runs them: ``intake/store.py`` (surveys),
``outbox/store.py`` (the reply queue), ``sync/store.py`` (answers and the sync's ledger).
"""
