"""Security at the desk: the tamper-evident audit trail, the coordinator PIN, logs without patient
data.

Lives here: the hash-chained audit trail (``audit``), the scrypt-hashed PIN with its lockout
(``pin``), and the log file that holds ids and hashes, never names (``logfile``).

May import: :mod:`kiosk.store`, config and errors.
"""
