"""Import: scan a source, copy each file once into the store, verify, and file it under a case.

Lives here: the importer that runs an import end to end (``importer``), the one-pass copy of a
single file (``one_pass``: read → hash → store → parse header), whose images these are and the
one-person-per-case rule (``identity``), and the quirks report with the medium's issuer
(``quirks``).

May import: :mod:`kiosk.sources`, :mod:`kiosk.dicom`, :mod:`kiosk.store`, config and errors.
"""
