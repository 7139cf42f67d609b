"""Composition root: the one place where real adapters are built and wired together."""

from __future__ import annotations

import os
from pathlib import Path

from kiosk.audit import AuditLog
from kiosk.blobstore import BlobStore
from kiosk.catalog import Catalog
from kiosk.config import Config, load_config
from kiosk.database import Database
from kiosk.importer import Importer, ImportOptions
from kiosk.locations import Locations, default_config_file, default_data_dir
from kiosk.service import KioskService


def resolve_data_dir(config: Config, data_dir: str | Path | None,
                     env: dict[str, str]) -> Path:
    """``--data-dir``, else ``KIOSK_DATA_DIR``, else the config's ``data_dir``, else default."""
    if data_dir:
        return Path(data_dir)
    if env.get("KIOSK_DATA_DIR"):
        return Path(env["KIOSK_DATA_DIR"])
    if config.data_dir:
        return Path(config.data_dir)
    return default_data_dir(env)


def build_service(config_file: str | Path | None = None, data_dir: str | Path | None = None,
                  env: dict[str, str] | None = None) -> KioskService:
    """Load the configuration, open the store and return a recovered service.

    Raises
    ------
    ConfigError
        The configuration is invalid.
    """
    env = dict(os.environ) if env is None else env
    path = Path(config_file) if config_file else default_config_file(env)
    config = load_config(path, env)
    locations = Locations(resolve_data_dir(config, data_dir, env))
    locations.ensure()
    store = BlobStore(locations.blobs_dir, locations.tmp_dir)
    catalog = Catalog(Database(locations.db_file), store)
    importer = Importer(catalog, store, ImportOptions(
        workers=config.import_.workers,
        read_retries=config.import_.read_retries,
        sync_batch_bytes=config.import_.sync_batch_bytes,
    ))
    service = KioskService(config, locations, catalog, store,
                           AuditLog(locations.audit_file, config.kiosk_id), importer)
    service.recover()
    return service
