"""Business rules, one module per domain: the only place that decides anything."""
