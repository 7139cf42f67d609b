"""The patient's package: planned from a case, written as an AES-256 zip to the stick, read back.

Lives here: the PDI-shaped plan (``plan``), the one-pass DICOMDIR writer (``dicomdir_writer``),
README.TXT (``readme_txt``), passphrases (``passphrase``), the WinZip AES zip (``zipcrypt``; the
only code that knows the ZIP format), the child process that derives entry keys
(``key_process``), and the export to a stick with its read-back (``export``).

May import: :mod:`kiosk.store`, :mod:`kiosk.dicom`, config and errors.
"""
