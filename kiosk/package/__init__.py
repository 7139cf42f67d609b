"""The patient's package: planned from a case, written as an AES-256 zip to the stick, read back.

Lives here: the PDI-shaped plan (``plan``), the one-pass DICOMDIR writer (``dicomdir_writer``),
README.TXT (``readme_txt``), passphrases (``passphrase``), whether a case fits on a stick
(``space``), the export to a stick with its read-back (``export``), and the WinZip AES zip in its
own sub-package (``aeszip``: the only code that knows how to write the ZIP format; format,
keystream, writer, pipeline, read-back, volumes, reader, and the child process that derives
entry keys).

May import: :mod:`kiosk.store`, :mod:`kiosk.dicom`, :mod:`kiosk.security`, config and errors.
"""
