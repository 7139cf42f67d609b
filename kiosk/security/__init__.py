"""Security at the desk: the tamper-evident audit trail, the coordinator PIN, logs without patient
data.

Lives here: the hash-chained audit trail (``audit``), the scrypt-hashed PIN with its lockout
(``pin``) and its audited use by the desk (``pin_guard``), the log file that holds ids and
hashes, never names (``logfile``), and the WinZip AES primitives (``winzip_aes``: keys,
keystream, HMAC) shared by the package room, which writes the patient's encrypted zip, and the
sources room, which reads encrypted zips on hospital media.

May import: :mod:`kiosk.store`, config and errors.
"""
