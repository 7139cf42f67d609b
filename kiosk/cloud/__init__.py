"""The office's DICOMweb server, the durable outbox, uploads and translation pulls.

Lives here: the ``Cloud`` interface and its errors (``protocol``), the real client
(``dicomweb``, the one module that imports requests) and the fake (``fake``), the outbox
(``outbox``), STOW-RS uploads (``uploader``), the sync round (``sync``) and its loop
(``sync_loop``), and the translation sources: the cloud and the office inbox folder
(``translations``).

May import: :mod:`kiosk.reports`, :mod:`kiosk.security`, :mod:`kiosk.dicom`,
:mod:`kiosk.store`, :mod:`kiosk.system`, config and errors.
"""
