"""The end of a case's life: purging a case and the retention policy that decides when.

Lives here: purging a case with everything it left behind (``purge``), the retention review
(``policy``: delivered and uploaded more than ``retention.days`` ago), and the two put together
with the audit trail for the facade (``purger``).

May import: every room below the facade (cloud, links, reports, store, ...).
"""
