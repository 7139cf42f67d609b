"""Reports: the Chinese original and its certified English translation merged into a case.

Lives here: the merger (``merger``) that files a PDF in the case and as an Encapsulated PDF
instance in the same study.

May import: :mod:`kiosk.dicom`, :mod:`kiosk.store`, config and errors.
"""
