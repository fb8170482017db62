"""What one ``tsplatform sql-source`` polls and where it publishes it: :class:`SourceConfig`, and the
contract fields (:data:`CONTRACT_FIELDS`) a table's columns are mapped onto.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tsplatform.errors import ConfigError

DEFAULT_TOPIC_PREFIX = "sensor_data_source_"
#: Default ``--gap-grace-ms`` of incrementing mode: how long a skipped id is looked for.
DEFAULT_GAP_GRACE_MS = 600_000

#: Contract fields (ARCHITECTURE.md, "The message contract") in envelope order, and whether required.
CONTRACT_FIELDS: tuple[tuple[str, bool], ...] = (
    ("ss_id", False),
    ("rstart", False),
    *((f"rlev{i}", False) for i in range(1, 9)),
    ("rend", False),
    ("event_time", True),
    ("input_data", False),
    ("position", True),
    ("type_name", True),
    ("unit", False),
)

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True)
class SourceConfig:
    """What to poll and where to publish it.

    ``columns`` maps a contract field (``position``, ``input_data``, ...) to the table's column when the
    names differ; unmapped fields use the contract name. The time field is ``time_column``; the
    incrementing id (optional) is ``id_column``. ``delay_ms`` >= 0 (timestamp mode only); ``gap_grace_ms``
    >= 0 (incrementing mode only); ``batch_size`` >= 1.
    """

    table: str
    schema: str | None = None
    topic: str | None = None
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    time_column: str = "event_time"
    id_column: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    delay_ms: int = 0
    batch_size: int = 10_000
    name: str | None = None
    gap_grace_ms: int = DEFAULT_GAP_GRACE_MS

    def __post_init__(self) -> None:
        if not self.table:
            raise ConfigError("sql-source: --table is empty")
        if self.delay_ms < 0:
            raise ConfigError(f"sql-source: --delay-ms must be >= 0, got {self.delay_ms}")
        if self.id_column is not None and self.delay_ms:
            raise ConfigError(
                "sql-source: --delay-ms is for timestamp mode; with --id-column rows are read by id, and "
                "rows committed late are found by their ids (see --gap-grace-ms)"
            )
        if self.gap_grace_ms < 0:
            raise ConfigError(f"sql-source: --gap-grace-ms must be >= 0, got {self.gap_grace_ms}")
        if self.batch_size < 1:
            raise ConfigError(f"sql-source: --batch-size must be >= 1, got {self.batch_size}")
        unknown = sorted(set(self.columns) - {f for f, _ in CONTRACT_FIELDS})
        if unknown:
            known = ", ".join(f for f, _ in CONTRACT_FIELDS)
            raise ConfigError(f"sql-source: unknown contract field(s) {unknown} in --map; known: {known}")
        if "event_time" in self.columns:
            raise ConfigError("sql-source: map the time column with --time-column, not --map event_time=...")
        topic = self.resolved_topic
        if not _TOPIC_NAME.match(topic) or topic in {".", ".."}:
            raise ConfigError(
                f"sql-source: topic {topic!r} is not a valid Kafka topic name (letters, digits, '.', '_', "
                "'-', at most 249): pass --topic"
            )

    @property
    def resolved_topic(self) -> str:
        """``--topic``, else the Connect convention ``<topic prefix><table>``."""
        return self.topic or f"{self.topic_prefix}{self.table}"

    @property
    def source_name(self) -> str:
        """Identity of the stream the position belongs to (``--name``, else ``schema.table->topic``)."""
        return self.name or f"{self.schema or ''}.{self.table}->{self.resolved_topic}"

    def column_for(self, contract_field: str) -> str:
        if contract_field == "event_time":
            return self.time_column
        return self.columns.get(contract_field, contract_field)
