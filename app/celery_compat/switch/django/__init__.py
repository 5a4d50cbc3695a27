"""``django`` under the switch, only while Django is not installed: just ``django.conf.settings``.

So that ``config_from_object("django.conf:settings", namespace="CELERY")`` in a Django-style
``proj/celery.py`` reads a plain settings module. With Django installed, the switch leaves
``django`` alone.
"""
