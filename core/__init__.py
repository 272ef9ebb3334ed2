"""Helpers every layer uses and none owns: the logging context (``logs``), the count of calls
to each destination (``api_calls``), CSV downloads (``csv_stream``), encryption at rest
(``crypto``) and the refusing view decorator (``permissions``). They import no app."""
