"""MedPass Kiosk core: media import, verified store, packaging. Knows nothing about the UI."""

__version__ = "0.1.0"
