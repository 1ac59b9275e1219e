"""Local services: missing tools are one clear line; a broker that never ran is not running."""

from __future__ import annotations

import string
import uuid
from pathlib import Path

import pytest

from shadow.errors import DependencyMissing
from shadow.kit.dev import kafka as dev_kafka
from shadow.kit.dev.kafka import LocalKafka, check_java
from shadow.kit.dev.s3 import LocalS3


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_kafka.shutil, "which", lambda name: None)
    with pytest.raises(DependencyMissing, match=r"java \(17 or newer\).*install a Java 17"):
        check_java()


def test_missing_maven_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dev_kafka.shutil, "which", lambda name: None)
    with pytest.raises(DependencyMissing, match=r"mvn \(Apache Maven\).*apt-get install maven"):
        LocalKafka("4.4.0", tmp_path).ensure_jars()


def test_services_that_never_started_are_not_running(tmp_path: Path) -> None:
    assert LocalKafka("4.4.0", tmp_path).status().running is False
    state = LocalS3(tmp_path).status()
    assert state.running is False
    assert state.to_json() == '{"running": false, "bootstrap": "", "pid": 0}'


def test_cluster_ids_never_look_like_an_option(monkeypatch):
    # a UUID whose base64 starts with "-" (first byte 0xF8..0xFB) must be skipped
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(dev_kafka.uuid, "uuid4", lambda: next(draws))
    assert dev_kafka.new_cluster_id() == "AQEBAQEBAQEBAQEBAQEBAQ"


def test_cluster_ids_are_22_url_safe_characters():
    for _ in range(200):
        cluster_id = dev_kafka.new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert set(cluster_id) <= set(string.ascii_letters + string.digits + "-_")
