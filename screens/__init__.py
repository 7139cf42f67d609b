"""Textual screens of the desk UI (installed as ``kiosk_tui``)."""
