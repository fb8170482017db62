"""Kafka resource: confluent-kafka clients configured from settings (bootstrap + security pass-through)."""

from __future__ import annotations

import dagster as dg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from tsplatform.settings import Settings, get_settings


class KafkaResource(dg.ConfigurableResource):
    """Kafka connection; empty ``bootstrap`` means ``TSPLATFORM_KAFKA_BOOTSTRAP``."""

    bootstrap: str = ""
    topics: list[str] = []  # noqa: RUF012 (pydantic copies defaults)
    consumer_group: str = ""
    max_records_per_run: int = 0

    def settings(self) -> Settings:
        """The process settings with this resource's overrides applied."""
        base = get_settings()
        update: dict[str, object] = {}
        if self.bootstrap:
            update["kafka_bootstrap"] = self.bootstrap
        if self.topics:
            update["topics"] = list(self.topics)
        if self.consumer_group:
            update["consumer_group"] = self.consumer_group
        if self.max_records_per_run:
            update["max_records_per_run"] = self.max_records_per_run
        return base.model_copy(update=update) if update else base

    def admin(self) -> AdminClient:
        return AdminClient(self.settings().kafka_client_config())

    def producer(self, **extra: str | int | bool) -> Producer:
        return Producer(self.settings().kafka_client_config(**extra))

    def consumer(self, group: str, **extra: str | int | bool) -> Consumer:
        return Consumer(self.settings().kafka_client_config(**{"group.id": group, **extra}))
