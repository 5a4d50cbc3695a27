"""Email: validating a request, building the message, delivering it over SMTP, and catching it in development.

The task in :mod:`app.tasks.email` ties these together; the web app only needs :mod:`.validation`.
Nothing here imports Flask, so the worker loads it without the web app.
"""
