"""The kiosk's own storage: content-addressed blobs, the tinydb database, and the catalog over them.

Lives here: atomic, power-cut-safe writes (``durable``), the blob store (``blobstore``), the
tinydb database and its atomic storage (``database``, the one module that imports tinydb), where
its records live on disk (``layout``: one file per case, a compact case index) and the upgrade
from the single-file layout (``migration``), the catalog of cases, studies, jobs and reports
(``catalog``), a case's index row and the searchable view over them (``case_summary``),
dividing a stored import report when a case is split (``import_split``), and every on-disk
location (``locations``).

May import: :mod:`kiosk.system`, config and errors.
"""
