"""Erasing a customer's data (``csat-hook erase``): what csat-hook stored about one customer
(by e-mail address, by the helpdesk's customer id, or by one dialog) made empty, and what the
metrics need kept, so every CSAT figure and every agent's numbers stay as they were.

* :mod:`.records`: the selector and the counts the command prints (never the data);
* :mod:`.store`: the SQL: which rows match, and the one transaction that erases them;
* :mod:`.files`: csat-hook's own files, after the database: a dry-run helpdesk's lines about
  the customer's dialogs kept without their text, the captured payloads naming them deleted.

What is erased: the survey's customer id, e-mail and name; a reply's text as sent and its
reply context; the comment and the form's agent and ticket fields as typed (the respondent's
to edit) of the answer, of its history and of the matching unverified answers (with the row
as read); the comment and reply context in the alerts' messages (an
answer's alert, a digest's line about it). What is deleted: the early reopens intake
remembers (``early_reopens``: helpdesk, dialog id and times, no customer field) of the dialogs
found: the selected dialog, and those of the customer's surveys (a stale close of one
delivered later is then surveyed as any close). What is kept: the survey
key, helpdesk, dialog, agent, rating, NPS answer and every time. A reply not sent (pending,
or failed: a retry would send it) is cancelled. A reply being sent (a worker holds the survey
and the reply context in memory) is erased all the same and marked (``outbox.erased_at``):
its worker's outcome keeps no customer data (``outbox/store/outcomes.py``): sent, it is
recorded without its text; a retry, a takeover or a failure cancels it.

An erasure record per survey (``erasures``) lets the sync store a later submission to that
survey (the answer is still in its source) with its rating and without its comment
(``sync/ingest.py`` reads it). A ``--dialog`` erasure records its dialog too
(``erased_dialogs``), whether anything of it is stored now or not: a later submission
credited to that helpdesk's dialog, naming it by a reference that does not verify, or typed
with its ticket number is stored the same way. Outside csat-hook's reach: alerts and replies
already posted to a helpdesk, Slack, Telegram, e-mail or a webhook, and the source the answers
come from.
"""
