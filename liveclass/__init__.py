"""liveclass: the composition root (CLI, configuration, wiring of adapters)."""
