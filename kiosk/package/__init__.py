"""The patient's package: planned from a case, written as an AES-256 zip to the stick, read back.

Lives here: the PDI-shaped plan (``plan``), the one-pass DICOMDIR writer (``dicomdir_writer``),
README.TXT (``readme_txt``), passphrases (``passphrase``), the WinZip AES zip (the only code that
knows the ZIP format: its public API ``zipcrypt``, over ``zip_format``, ``winzip_aes``,
``zip_writer``, ``zip_pipeline``, ``device_readback``, ``zip_volumes``, ``zip_reader`` and
``zip_errors``), the child process that derives entry keys (``key_process``), and the export to
a stick with its read-back (``export``).

May import: :mod:`kiosk.store`, :mod:`kiosk.dicom`, config and errors.
"""
