"""Arrow schemas of the landing datasets, `raw_readings` and `quarantine` (ARCHITECTURE.md)."""

from __future__ import annotations

import pyarrow as pa

UTC_MS = pa.timestamp("ms", tz="UTC")

#: One row per decoded reading, with its Kafka provenance.
RAW_READINGS_SCHEMA = pa.schema(
    [
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("event_time", UTC_MS, nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("ss_id", pa.int64()),
        pa.field("unit", pa.string()),
        pa.field("rstart", pa.float64()),
        pa.field("rend", pa.float64()),
        *[pa.field(f"rlev{i}", pa.float64()) for i in range(1, 9)],
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("ingested_at", UTC_MS, nullable=False),
        pa.field("schema_id", pa.string(), nullable=False),
    ]
)

#: One row per record that could not be decoded into a reading.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.binary()),
        pa.field("key", pa.binary()),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("ingested_at", UTC_MS, nullable=False),
    ]
)

PROVENANCE_COLUMNS = ("topic", "partition", "offset")
