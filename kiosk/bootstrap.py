"""Composition root: the one place where real adapters are built and wired together."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.cloud.outbox import Outbox
from kiosk.cloud.protocol import Cloud
from kiosk.cloud.sync import Syncer, credentials_fingerprint
from kiosk.cloud.translations import InboxSource
from kiosk.config import Config, load_config
from kiosk.ingest.importer import Importer, ImportOptions
from kiosk.links.case_links import CaseLinks
from kiosk.links.signing_key import load_or_create, read_public_key
from kiosk.links.tokens import (
    KioskTokenMinter,
    Link,
    LinkMinter,
    LinkVerifier,
    OrthancShareMinter,
)
from kiosk.reports.merger import ReportMerger
from kiosk.security.audit import AuditLog
from kiosk.service import KioskService
from kiosk.sources.scan_limits import ScanLimits
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog
from kiosk.store.database import Database
from kiosk.store.locations import Locations, default_config_file
from kiosk.store.open_catalog import open_store, resolve_data_dir

if TYPE_CHECKING:
    from kiosk.links.printer import ReceiptPrinter
    from kiosk.media.desk import MediaDesk
    from kiosk.media.fake_media import FakeMediaWatcher


def build_service(config_file: str | Path | None = None, data_dir: str | Path | None = None,
                  env: dict[str, str] | None = None) -> KioskService:
    """Load the configuration, open the store and return a recovered service.

    Raises
    ------
    ConfigError
        The configuration is invalid.
    """
    config, locations, catalog = open_store(config_file, data_dir, env)
    store = catalog.store
    importer = Importer(catalog, store, ImportOptions(
        workers=config.import_.workers,
        read_retries=config.import_.read_retries,
        sync_batch_bytes=config.import_.sync_batch_bytes,
        limits=ScanLimits.from_settings(config.import_),
    ))
    audit = AuditLog(locations.audit_file, config.kiosk_id)
    links = build_case_links(config, locations, catalog.db, audit)
    syncer = build_syncer(config, locations, catalog, store, audit, build_cloud(config))
    if config.link.registers:
        connect_links(links, syncer)
    service = KioskService(config, locations, catalog, store, audit, importer, links=links,
                           printer_factory=lambda: _build_printer(config), syncer=syncer)
    service.recover()
    service.migrate_config_pin()  # the old plain ui.admin_pin becomes a hash, once
    return service


def build_cloud(config: Config) -> Cloud | None:
    """The office's DICOMweb server from the settings, or None when no URL is set."""
    settings = config.cloud
    if not settings.url:
        return None
    from kiosk.cloud.dicomweb import DicomWebCloud  # requests loads only when a cloud is configured

    return DicomWebCloud(settings.url, user=settings.user, password=settings.password,
                         token=settings.token, ca_bundle=settings.ca_bundle,
                         timeout=config.sync.timeout_seconds,
                         gateway_url=config.link.base_url if config.link.registers else "")


def connect_links(links: CaseLinks, syncer: Syncer) -> None:
    """Short links reach the office gateway through the outbox: minted, then revoked."""
    def minted(link: Link) -> None:
        if link.share_id is not None:
            syncer.queue_share(case_id=link.case_id, share_id=link.share_id, token=link.token,
                               token_id=link.token_id, passcode=link.passcode)

    def revoked(link: Link) -> None:
        if link.share_id is not None:
            syncer.queue_revoke(case_id=link.case_id, share_id=link.share_id,
                                token_id=link.token_id)

    links.on_mint, links.on_revoke = minted, revoked


def build_syncer(config: Config, locations: Locations, catalog: Catalog, store: BlobStore,
                 audit: AuditLog, cloud: Cloud | None) -> Syncer:
    """The sync engine: outbox, report merger, office inbox and ``cloud`` (None: no cloud)."""
    return Syncer(catalog, store, Outbox(catalog.db, store),
                  ReportMerger(catalog, store, config.kiosk_id), config.sync,
                  InboxSource(locations.inbox_dir), cloud,
                  credentials=credentials_fingerprint(config.cloud), audit=audit)


def _revocation_file(config: Config, locations: Locations) -> Path:
    return Path(config.link.revocation_list) if config.link.revocation_list \
        else locations.revocation_file


def build_case_links(config: Config, locations: Locations, db: Database,
                     audit: AuditLog) -> CaseLinks:
    """The configured link minter and verifier; makes this kiosk's signing key on first start."""
    key = load_or_create(locations.link_key_file)
    settings = config.link
    minter: LinkMinter
    if settings.kind == "orthanc-share":
        minter = OrthancShareMinter(settings.orthanc_secret, settings.orthanc_token_type,
                                    settings.template, settings.expiry_days)
    else:
        minter = KioskTokenMinter(config.kiosk_id, key.private_pem, settings.template,
                                  settings.expiry_days,
                                  short_base=settings.short_base if settings.short else None,
                                  passcode=settings.passcode)
    verifier = LinkVerifier(key.public_pem, settings.orthanc_secret or None,
                            _revocation_file(config, locations))
    return CaseLinks(db, minter, verifier, audit, settings.template, settings.expiry_days)


def build_link_verifier(config_file: str | Path | None = None,
                        data_dir: str | Path | None = None, env: dict[str, str] | None = None,
                        *, public_key_file: str | Path | None = None,
                        revocation_file: str | Path | None = None) -> LinkVerifier:
    """A verifier for a gateway: no database, no store, nothing written.

    Uses ``public_key_file`` (PEM) when given, else this kiosk's own key if it has one, and the
    revocation list from ``revocation_file``, ``link.revocation_list`` or the data directory.

    Raises
    ------
    ConfigError
        The configuration or the public key file is invalid.
    """
    env = dict(os.environ) if env is None else env
    path = Path(config_file) if config_file else default_config_file(env)
    config = load_config(path, env)
    locations = Locations(resolve_data_dir(config, data_dir, env))
    public_pem = None
    if public_key_file:
        public_pem = read_public_key(Path(public_key_file))
    elif locations.link_key_file.exists():
        public_pem = load_or_create(locations.link_key_file).public_pem
    revoked = Path(revocation_file) if revocation_file else _revocation_file(config, locations)
    return LinkVerifier(public_pem, config.link.orthanc_secret or None, revoked)


def _build_printer(config: Config) -> ReceiptPrinter:
    from kiosk.links.printer import build_printer  # python-escpos is slow to import: only on use

    return build_printer(config.printer)


def build_media_desk(locations: Locations, *, fake: FakeMediaWatcher | None = None,
                     limits: ScanLimits | None = None) -> MediaDesk:
    """The media desk: udev, the system mounter and role decisions; or a simulation.

    Parameters
    ----------
    locations : Locations
        The data directory's disk is never offered as a medium.
    fake : FakeMediaWatcher, optional
        Use this simulated watcher (``kiosk demo``, UI tests) with a :class:`FakeMounter`.
    limits : ScanLimits, optional
        The ``[import]`` limits a disc's tree is counted against before it is indexed.

    Raises
    ------
    MediaError
        udev cannot be listened to.
    """
    from kiosk.media.desk import MediaDesk, RoleClassifier
    from kiosk.media.fake_media import FakeMounter

    if fake is not None:
        return MediaDesk(fake, FakeMounter(fake))
    from kiosk.media.mount_policy import MOUNT_ROOT
    from kiosk.media.mounter import SystemMounter, default_backend
    from kiosk.media.udev_monitor import UdevMediaWatcher  # pyudev only when real media are watched
    from kiosk.system.disks import disks_in_use

    mounter = SystemMounter(default_backend(MOUNT_ROOT), limits=limits)
    watcher = UdevMediaWatcher(RoleClassifier(mounter),
                               lambda: disks_in_use(MOUNT_ROOT, [locations.data_dir]))
    return MediaDesk(watcher, mounter)


def attach_media(service: KioskService, *,
                 fake: FakeMediaWatcher | None = None) -> MediaDesk:
    """Build the media desk (:func:`build_media_desk`) and attach it to ``service``."""
    service.media = build_media_desk(service.locations, fake=fake,
                                     limits=service.importer.options.limits)
    return service.media
