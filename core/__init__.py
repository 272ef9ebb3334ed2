"""Helpers every layer uses and none owns: the logging context (``logs``), the count of calls
to each destination (``api_calls``), CSV downloads (``csv_stream``), encryption at rest
(``crypto``), the refusing view decorator (``permissions``) and the htmx request type
(``htmx``). They import no app."""
