"""The office gateway: an Orthanc Python plugin between kiosks, phones and the office's Orthanc.

Lives here: the files ``kiosk gateway config`` writes (``config_file``, ``settings``), the
decisions and answers of every route (``app``: the incoming-request filter, the kiosk, office
and phone APIs of docs/gateway.md), the database every Orthanc process shares
(``share_store``: SQLite or PostgreSQL), secrets and hashes (``credentials``), the small
bilingual pages (``pages``), and the Orthanc adapter (``plugin``, the only module importing
``orthanc``, which exists only inside Orthanc's embedded Python).

May import: kiosk.links (token verification: ``kiosk.links.trust``) and the rooms below it.
Never imported by the desk; only ``kiosk.cli.gateway`` and Orthanc's plugin script use it.
"""
