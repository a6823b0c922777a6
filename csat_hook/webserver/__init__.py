"""The HTTP front end's gunicorn settings, shared by ``csat-hook serve`` and the Procfile.

* :mod:`.conf`: the settings themselves, a gunicorn configuration module (the Procfile runs
  ``gunicorn --config python:csat_hook.webserver.conf ...``; ``serve`` applies the same ones);
* :mod:`.worker`: the worker class, gthread that buffers each request before a thread
  serves it, so senders that never finish their body cannot stall the others;
* :mod:`.redact`: the logger class, which keeps request data (a ``?token=...``, header
  values, body bytes) out of gunicorn's own log lines.

Nothing here imports the rest of csat-hook: gunicorn loads these by name.
"""
