"""The performance benchmark behind `make bench` (the dev rig; not deployed)."""
