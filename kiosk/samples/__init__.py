"""Synthetic hospital media for the demo, the tests and the benchmarks (no real patient data).

Lives here: the sample hospital disc with its DICOMDIR file-set and non-DICOM junk
(``sample_disc``), the sample patient's GB18030-named CT and CR instances with the room's
deterministic UIDs and file meta (``studies``), their phantom pixel images (``phantoms``), fast
bulk studies for scale tests and benchmarks (``bulk``), and minimal report PDFs (``pdf``).

May import: nothing of the kiosk but errors.
"""
