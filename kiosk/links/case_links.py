"""The link of each case: minted once, shown, printed and exported as the same link.

The Done screen, the receipt slip, ``kiosk qr`` and the export report must all show one link, so
a minted link is kept in the database (table ``links``) and handed out again while it is still
valid with at least half its life left; otherwise (expired, revoked, other studies, key or
template changed) a new one is minted. Every mint is an audit event with ids only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kiosk.errors import ConfigError, LinkTokenError
from kiosk.links.tokens import Link, LinkMinter, LinkVerifier
from kiosk.security.audit import AuditLog
from kiosk.store.database import Database

LINKS = "links"


class CaseLinks:
    """Mints, keeps and checks the links of cases.

    Parameters
    ----------
    db : Database
        Where minted links are kept.
    minter : LinkMinter
        The configured token kind.
    verifier : LinkVerifier
        Checks tokens of both kinds (and a kept link before it is handed out again).
    audit : AuditLog
        Receives ``link_minted`` events.
    template : str
        The URL template in force (a kept link made with another template is not reused).
    expiry_days : int
        Configured validity.
    """

    def __init__(self, db: Database, minter: LinkMinter, verifier: LinkVerifier,
                 audit: AuditLog, template: str, expiry_days: int) -> None:
        self.db = db
        self.minter = minter
        self.verifier = verifier
        self.audit = audit
        self.template = template
        self.expiry_days = expiry_days

    def for_case(self, case_id: str, study_uids: Sequence[str], *,
                 now: datetime | None = None) -> Link:
        """The case's link: the kept one if still good, else a newly minted one.

        Raises
        ------
        UsageError
            The case has no study.
        """
        now = now or datetime.now(UTC)
        kept = self._reusable(case_id, tuple(study_uids), now)
        if kept is not None:
            return kept
        link = self.minter.mint(case_id, study_uids, now=now)
        self.db.insert(LINKS, {
            "case_id": case_id, "token_id": link.token_id, "kind": link.kind,
            "template": self.template, "url": link.url, "token": link.token,
            "study_uids": list(link.study_uids), "expires": link.expires.isoformat(),
            "created": now.isoformat(),
        })
        self.audit.append("link_minted", case_id=case_id, token_id=link.token_id,
                          kind=link.kind, studies=len(link.study_uids),
                          expires=link.expires.isoformat())
        return link

    def _reusable(self, case_id: str, study_uids: tuple[str, ...],
                  now: datetime) -> Link | None:
        docs = sorted(self.db.find(LINKS, case_id=case_id), key=lambda d: d["created"])
        for doc in reversed(docs):
            if (doc["kind"], doc["template"]) != (self.minter.kind, self.template) or \
                    tuple(doc["study_uids"]) != study_uids:
                continue
            link = _link(doc)
            # A slip printed from a kept link must still give the patient a useful window.
            if link.expires - now < timedelta(days=self.expiry_days) / 2:
                return None
            try:
                self.verifier.verify(link.token, now=now)
            except (LinkTokenError, ConfigError):
                return None  # revoked, or the key or secret changed since
            return link
        return None

    def minted(self, case_id: str) -> list[Link]:
        """Every link minted for ``case_id``, oldest first (for the Admin screen)."""
        docs = sorted(self.db.find(LINKS, case_id=case_id), key=lambda d: d["created"])
        return [_link(d) for d in docs]


def _link(doc: dict[str, Any]) -> Link:
    return Link(url=doc["url"], token=doc["token"], token_id=doc["token_id"], kind=doc["kind"],
                case_id=doc["case_id"], study_uids=tuple(doc["study_uids"]),
                expires=datetime.fromisoformat(doc["expires"]))
