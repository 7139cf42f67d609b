"""DICOM itself: reading one instance, its header, its names, and the objects the kiosk adds.

Lives here: sniffing and reading an instance (``instance``), checking its pixel data in every
transfer syntax (``pixel_data``), deflated data sets inflated within bounds (``deflate``), the
import's deadline as long checks see it (``deadline``), the struct header scanner
(``header_scan``), character sets and names (``names``), and Encapsulated PDF reports
(``encapsulated``). Everything that imports pydicom for reading lives here or in
the rooms above it that write DICOM (``kiosk.package``).

May import: errors only.
"""
