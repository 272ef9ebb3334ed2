from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()

# What exists once the application is loaded lives as long as the process: frozen out of the
# collections, which then no longer go through Django's whole heap. (The worker also collects
# the youngest generation less often; here that kept bulk upserts' garbage, held in reference
# cycles of their requests, for several calls: 280 MB a web process instead of 150.)
gc.freeze()
