"""The patient's link: signed tokens minted offline, the case's link, the QR, the slip and its
printer.

Lives here: JWT signing and checking (``jwt_tokens``, the one module that imports PyJWT), link
minting and verification (``tokens``), the kiosk's Ed25519 key (``signing_key``), a case's links
(``case_links``), the QR code (``qr``, qrcode), the patient slip (``slip``), its rendering for
ESC/POS (``text_raster``, Pillow) and the receipt printer (``printer``, python-escpos/pyusb).

May import: :mod:`kiosk.security`, :mod:`kiosk.store`, config and errors.
"""
