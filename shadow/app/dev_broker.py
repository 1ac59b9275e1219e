"""The local broker as the default - commands that talk to Kafka use `shadow dev kafka start`'s.

The shared core never guesses a broker: an unset ``kafka.bootstrap_servers`` is a ConfigError
there (shadow.clients). The command line, for convenience on a developer's machine, fills it in
with the address of the broker `shadow dev kafka start` runs, when one runs.
"""

from __future__ import annotations

from shadow.settings import Settings


def with_dev_broker(settings: Settings) -> Settings:
    """The settings as they are when kafka.bootstrap_servers is set or no local broker runs;
    else the same settings with the local broker's address."""
    kafka = settings.kafka
    if kafka.bootstrap_servers:
        return settings
    from shadow.kit.dev.kafka import LocalKafka

    state = LocalKafka(kafka.dev_version, kafka.dev_home).status()
    if not state.running:
        return settings
    local = kafka.model_copy(update={"bootstrap_servers": state.bootstrap})
    return settings.model_copy(update={"kafka": local})
