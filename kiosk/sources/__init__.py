"""Where imported files come from: one read-only interface over every kind of medium.

Lives here: the ``Source`` interface and its entries (``source``), the directory reader
(``directory``), the ISO9660 reader (``iso``, the one module that imports pycdlib) and the census
that bounds a disc's tree before it is indexed (``iso_census``), the UDF-only disc reader
(``udf``, over the volume read by ``udf_volume`` from the descriptors of ``udf_descriptors``),
the extent reader both use (``extents``), the limits on untrusted media (``scan_limits``), the
flat DICOMDIR reader (``dicomdir``), ``opener`` which picks a source, and the zip archives on a
medium read as its files (``archive``, over the zip structures in ``zip_format`` and the member
stream in ``zip_member``, the one module that imports fast-zip-decryption), and what a medium
holds besides DICOM (``contents``: pictures, viewers, PDFs).

May import: :mod:`kiosk.system` (where a file lies on its device), :mod:`kiosk.security`
(``winzip_aes``: the WinZip AES keystream), config and errors.
"""
