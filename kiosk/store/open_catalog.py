"""The kiosk's data opened for reading its case index, without the rest of the kiosk.

``kiosk cases`` lists cases from the index; building the whole service for it would load
the DICOM, crypto and network libraries it never uses (a third of a second on a Raspberry
Pi class machine, more than the listing of 3,000 cases itself). Jobs left running by a dead
process are marked as at every start, so the statuses listed are the true ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from kiosk.config import Config, load_config
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog
from kiosk.store.database import Database
from kiosk.store.locations import Locations, default_config_file, default_data_dir


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


def open_store(config_file: str | Path | None = None, data_dir: str | Path | None = None,
               env: dict[str, str] | None = None) -> tuple[Config, Locations, Catalog]:
    """The configuration, the data directory (made if new) and its catalog (upgraded if old).

    Raises
    ------
    ConfigError
        The configuration is invalid.
    """
    env = dict(os.environ) if env is None else env
    config = load_config(Path(config_file) if config_file else default_config_file(env), env)
    locations = Locations(resolve_data_dir(config, data_dir, env))
    locations.ensure()
    catalog = Catalog(Database(locations.db_file),
                      BlobStore(locations.blobs_dir, locations.tmp_dir))
    return config, locations, catalog


def open_catalog(config_file: str | Path | None = None, data_dir: str | Path | None = None,
                 env: dict[str, str] | None = None) -> Catalog:
    """The catalog of the configured data directory, jobs of dead processes marked.

    Raises
    ------
    ConfigError
        The configuration is invalid.
    """
    catalog = open_store(config_file, data_dir, env)[2]
    catalog.mark_interrupted()
    return catalog
