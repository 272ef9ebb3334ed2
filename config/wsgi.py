from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from config.celery_app import tune_garbage_collection

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()

# As in the Celery worker: the API's bulk upsert makes hundreds of thousands of short-lived
# objects per call, and the collector ran through Django's whole heap every few thousand.
tune_garbage_collection()
