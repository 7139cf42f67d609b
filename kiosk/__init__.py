"""MedPass Kiosk core: media import, verified store, packaging. Knows nothing about the UI."""

import os as _os

__version__ = "0.1.0"

# numpy's OpenBLAS starts a thread per core on import and spends ~0.13 s of CPU setting them
# up; the kiosk never multiplies a matrix, and on a 2-core Pi that CPU is the export's. Set
# before anything imports numpy (pydicom does too); an explicit setting still wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
