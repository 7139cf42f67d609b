"""The facade's calls about a case's link: minting, revoking, the QR's data and the slip.

A part of :class:`kiosk.service.KioskService` (its base class), kept apart because the link
has its own collaborators (the link minter and verifier, the manifest signer, the printer).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiosk.errors import PrinterError, UsageError
from kiosk.links.case_links import CaseLinks
from kiosk.links.manifest_signature import ManifestSigner
from kiosk.links.signing_key import load_or_create
from kiosk.links.slip import Slip
from kiosk.links.tokens import Link, TokenClaims
from kiosk.security.audit import AuditLog
from kiosk.store.catalog import Catalog
from kiosk.store.locations import Locations

if TYPE_CHECKING:
    from kiosk.links.printer import PrintReport, ReceiptPrinter


class LinkDesk:
    """The link, QR and slip calls of the facade (state set by ``KioskService.__init__``)."""

    locations: Locations
    catalog: Catalog
    audit: AuditLog
    _links: CaseLinks | None
    _printer: ReceiptPrinter | None
    _printer_factory: Callable[[], ReceiptPrinter] | None
    #: The facade's check that a case holds one person (raises UsageError otherwise).
    require_one_person: Callable[[str], None]

    @property
    def links(self) -> CaseLinks:
        """Minted links of cases (see :mod:`kiosk.links.case_links`)."""
        if self._links is None:
            raise UsageError("Links are not set up in this kiosk (no link minter was built).")
        return self._links

    @functools.cached_property
    def manifest_signer(self) -> ManifestSigner:
        """Signs package manifests (MANIFEST.JWS) with this kiosk's link-signing key."""
        return ManifestSigner(load_or_create(self.locations.link_key_file))

    @property
    def printer(self) -> ReceiptPrinter:
        """The receipt printer (a fake can be assigned, e.g. in tests and the demo)."""
        if self._printer is None:
            if self._printer_factory is None:
                raise UsageError("No receipt printer is set up in this kiosk.")
            self._printer = self._printer_factory()
        return self._printer

    @printer.setter
    def printer(self, printer: ReceiptPrinter) -> None:
        self._printer = printer

    def case_link(self, case_id: str) -> Link:
        """The cloud link for all studies of ``case_id``, minted offline or reused.

        The same link comes back for the screen, the slip and the export while it has at least
        half its validity left.

        Raises
        ------
        UsageError
            No such case, or it has no study yet.
        """
        self.require_one_person(case_id)  # raises for an unknown case too
        study_uids = [s["study_uid"] for s in self.catalog.studies(case_id)]
        return self.links.for_case(case_id, study_uids)

    def revoke_link(self, key: str) -> list[Link]:
        """Revoke the live links of case ``key``, or the link whose id is ``key``.

        The gateway is told through the outbox (next sync); this kiosk refuses the token at
        once. Returns what was revoked (empty: already revoked).

        Raises
        ------
        UsageError
            No case and no link with that id.
        """
        return self.links.revoke(key)

    def reissue_link(self, case_id: str) -> Link:
        """Revoke the case's links and mint a new one (new id and passcode; a new slip).

        Raises
        ------
        UsageError
            No such case, or it has no study yet.
        """
        self.require_one_person(case_id)
        study_uids = [s["study_uid"] for s in self.catalog.studies(case_id)]
        return self.links.reissue(case_id, study_uids)

    def verify_link(self, token: str, *, study_uid: str | None = None) -> TokenClaims:
        """Check a link token of either kind with this kiosk's key, secret and revocation list.

        Raises
        ------
        LinkTokenError
            Not valid; ``reason`` says why.
        """
        return self.links.verifier.verify(token, study_uid=study_uid)

    def print_slip(self, case_id: str, *, passphrase: str | None = None) -> PrintReport:
        """Print the patient slip: QR, expiry, case number, passphrase, instructions.

        The passphrase is printed but never stored or logged; the audit entry only says whether
        one was on the slip.

        Raises
        ------
        UsageError
            No such case or no study.
        PrinterError
            No printer, offline, out of paper: show the message and carry on.
        """
        link = self.case_link(case_id)
        slip = Slip(case_id=case_id, link=link.url, expiry_date=link.expiry_date,
                    passphrase=passphrase, fingerprint=self.manifest_signer.fingerprint,
                    passcode=link.passcode)
        try:
            report = self.printer.print_slip(slip)
        except PrinterError as exc:
            self.audit.append("print", case_id=case_id, token_id=link.token_id, ok=False,
                              error=type(exc).__name__, passphrase=passphrase is not None)
            raise
        self.audit.append("print", case_id=case_id, token_id=link.token_id, ok=True,
                          printer=report.printer, passphrase=passphrase is not None)
        return report
