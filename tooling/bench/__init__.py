"""The performance benchmark behind `make bench` (tooling; not deployed)."""
