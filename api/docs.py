"""The API documentation pages, Swagger UI and Redoc, from the vendored files
(drf-spectacular-sidecar) under the site's Content-Security-Policy: no inline script or style,
nothing from another host (no web fonts: Redoc falls back to the system's)."""

from __future__ import annotations

from csp.constants import NONCE
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"


class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"


# Swagger UI draws some of its icons as data: images.
swagger_ui = csp_update({"img-src": ["data:"]})(SwaggerView.as_view(url_name="api:schema"))
# Redoc's styles are <style> elements it adds itself: allowed with this response's nonce, which
# static/js/redoc-init.js hands to Redoc. Two are added as the bundle loads, before it can know
# the nonce: they are allowed by their digests (an empty one, and perfect-scrollbar's, in
# Redoc 2.5.4 of drf-spectacular-sidecar 2026.10.1; the browser test says when they change).
# Its icons are data: images; its search index runs in a worker made from a blob.
REDOC_BUNDLE_STYLES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
]
redoc = csp_update(
    {"style-src": [NONCE, *REDOC_BUNDLE_STYLES], "img-src": ["data:"], "worker-src": ["blob:"]}
)(RedocView.as_view(url_name="api:schema"))
