"""The API app keeps no models: erasures moved to ``exports.models`` (migration
``api.0002_erasure_moved_to_exports`` removes them from this app's state, their tables stay)."""
