"""Import: scan a source, copy each file once into the store, verify, and file it under a case.

Lives here: the importer that runs an import end to end (``importer``) and the one-pass copy of a
single file (``one_pass``: read → hash → store → parse header).

May import: :mod:`kiosk.sources`, :mod:`kiosk.dicom`, :mod:`kiosk.store`, config and errors.
"""
