"""Synthetic hospital media for the demo, the tests and the benchmarks (no real patient data).

Lives here: the sample hospital disc with its DICOMDIR, studies and report PDF (``sample_disc``).

May import: nothing of the kiosk but errors.
"""
