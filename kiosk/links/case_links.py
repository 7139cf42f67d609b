"""The link of each case: minted once, shown, printed and exported as the same link.

The Done screen, the receipt slip, ``kiosk qr`` and the export report must all show one link, so
a minted link is kept in the database (table ``links``) and handed out again while it is still
valid with at least half its life left; otherwise (expired, revoked, other studies, key or
template changed) a new one is minted. Every mint is an audit event with ids only.

A short link (``{base}/s/{id}``) lives at the office gateway too: ``on_mint`` and
``on_revoke`` (set by the composition root to queue outbox jobs) tell the gateway. A revoked
link is never handed out again, and its token is added to this kiosk's revocation list so
``kiosk link verify`` refuses it here as the gateway does there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kiosk.errors import ConfigError, LinkTokenError, UsageError
from kiosk.links.tokens import Link, LinkMinter, LinkVerifier, RevocationList
from kiosk.security.audit import AuditLog
from kiosk.store.database import Database
from kiosk.store.durable import write_atomic

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
        #: Called with each newly minted link / each link revoked here (the outbox's jobs).
        self.on_mint: Callable[[Link], None] | None = None
        self.on_revoke: Callable[[Link], None] | None = None

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
        with self.db.transaction():  # the record and its outbox job, or neither
            self.db.insert(LINKS, {
                "case_id": case_id, "token_id": link.token_id, "kind": link.kind,
                "template": self.template, "url": link.url, "token": link.token,
                "study_uids": list(link.study_uids), "expires": link.expires.isoformat(),
                "created": now.isoformat(), "share_id": link.share_id,
                "passcode": link.passcode, "revoked": None,
            })
            if self.on_mint is not None:
                self.on_mint(link)
        self.audit.append("link_minted", case_id=case_id, token_id=link.token_id,
                          kind=link.kind, studies=len(link.study_uids),
                          expires=link.expires.isoformat(), short=link.share_id is not None,
                          passcode=link.passcode is not None)
        return link

    def revoke(self, key: str, *, now: datetime | None = None) -> list[Link]:
        """Revoke the live links of a case (``key`` = case id) or one link (its id).

        Returns the links revoked (empty when every one was already revoked).

        Raises
        ------
        UsageError
            No case and no link has that id.
        """
        now = now or datetime.now(UTC)
        with self.db.transaction():
            docs = self.db.find(LINKS, case_id=key) or self.db.find(LINKS, share_id=key)
            if not docs:
                raise UsageError(f"There is no case or link {key}. `kiosk cases` lists the "
                                 "cases; a link's id is the last part of its address.")
            revoked = []
            for doc in sorted(docs, key=lambda d: d["created"]):
                if doc.get("revoked"):
                    continue
                self.db.update(LINKS, {"revoked": now.isoformat()}, case_id=doc["case_id"],
                               token_id=doc["token_id"])
                link = _link(doc)
                revoked.append(link)
                if self.on_revoke is not None:
                    self.on_revoke(link)
            self._add_to_revocation_list([link.token_id for link in revoked])
        for link in revoked:
            self.audit.append("link_revoked", case_id=link.case_id, token_id=link.token_id)
        return revoked

    def reissue(self, case_id: str, study_uids: Sequence[str], *,
                now: datetime | None = None) -> Link:
        """Revoke the case's live links and mint a new one (new id, new passcode)."""
        now = now or datetime.now(UTC)
        if self.db.find(LINKS, case_id=case_id):
            self.revoke(case_id, now=now)
        return self.for_case(case_id, study_uids, now=now)

    def _add_to_revocation_list(self, token_ids: list[str]) -> None:
        if not token_ids:
            return
        path = self.verifier.revocation_file
        known = RevocationList.read(path).token_ids
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = "# Revoked links (kiosk link revoke): token ID or kiosk ID per line\n"
        text += "".join(f"token {t}\n" for t in token_ids if t not in known)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"))

    def _reusable(self, case_id: str, study_uids: tuple[str, ...],
                  now: datetime) -> Link | None:
        docs = sorted(self.db.find(LINKS, case_id=case_id), key=lambda d: d["created"])
        for doc in reversed(docs):
            if (doc["kind"], doc["template"]) != (self.minter.kind, self.template) or \
                    tuple(doc["study_uids"]) != study_uids or doc.get("revoked") or \
                    bool(doc.get("passcode")) != bool(getattr(self.minter, "passcode", False)):
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
                expires=datetime.fromisoformat(doc["expires"]),
                share_id=doc.get("share_id"), passcode=doc.get("passcode"))
