"""One module per job; each registers itself with ``worker.registry.job``."""
