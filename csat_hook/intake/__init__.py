"""Intake: a helpdesk's "dialog closed" webhook becomes a stored survey and a queued reply.

``web`` (the endpoints), ``receive`` (verify → parse → record), ``policy`` (whether a close
gets a survey; the ``policy`` section), ``recorder`` (group commit of closes), ``store``
(every statement about surveys), ``config`` (the ``server`` section).
"""
