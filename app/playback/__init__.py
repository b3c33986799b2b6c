"""A/B playback through sounddevice (no widgets)."""
