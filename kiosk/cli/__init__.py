"""The ``kiosk`` command line: argument parsing and one module per command group.

Lives here: the entry point and the import/export/cases/qr commands (``main``), links
(``link``), media and ``kiosk doctor`` (``media``, ``doctor``), PIN/retention/audit
(``security``) and sync (``sync``). The desk UI is started through the ``medpass_kiosk.ui``
entry points, so no core module imports the UI.

May import: the composition root (:mod:`kiosk.bootstrap`), the facade and every room.
"""
