"""The host system: facts the kiosk reads about its own machine and the one notification it sends.

Lives here: which disks hold the system (``disks``), process liveness by pid and boot id
(``liveness``), where a file's data lies on its device (``fiemap``), and systemd's watchdog
notification (``sd_notify``).

May import: errors only.
"""
