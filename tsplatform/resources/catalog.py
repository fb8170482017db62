"""Metadata catalog resource (MongoDB)."""

from __future__ import annotations

import dagster as dg

from tsplatform.catalog import Catalog
from tsplatform.settings import get_settings


class CatalogResource(dg.ConfigurableResource):
    """MongoDB catalog; empty fields fall back to ``TSPLATFORM_MONGO_URI`` / ``TSPLATFORM_MONGO_DB``."""

    uri: str = ""
    db: str = ""

    def settings_pair(self) -> tuple[str, str]:
        """``(uri, database)`` after the fallbacks (what executors need to open their own client)."""
        settings = get_settings()
        return self.uri or settings.mongo_uri, self.db or settings.mongo_db

    def catalog(self) -> Catalog:
        return Catalog(*self.settings_pair())
