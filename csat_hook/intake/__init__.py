"""Intake: a helpdesk's "dialog closed" webhook becomes a stored survey and a queued reply.

``web`` (the endpoints), ``body`` (reading a body: bounded in size and time, framing errors a
4xx), ``receive`` (verify → parse → record), ``storable`` (the one place where an event's text
is made fit for the database), ``policy`` (whether a close gets a survey; the ``policy``
section), ``recorder`` (group commit of closes), ``store`` (every statement about surveys),
``config`` (the ``server`` section).
"""
