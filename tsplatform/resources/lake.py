"""Lake resource: where the Parquet datasets live (local path or Hadoop-compatible URI)."""

from __future__ import annotations

import dagster as dg

from tsplatform.lake import Lake
from tsplatform.settings import get_settings


class LakeResource(dg.ConfigurableResource):
    """The lake root; empty means ``TSPLATFORM_LAKE_ROOT`` / ``<state>/lake``."""

    root: str = ""

    def lake(self) -> Lake:
        return Lake(self.root or get_settings().lake_uri)
