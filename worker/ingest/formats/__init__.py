"""Record shapes: one module per shape a usage record can come in (the canonical record and its aliases, ...)."""
