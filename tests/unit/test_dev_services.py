"""Local services: missing tools are one clear line; a broker that never ran is not running."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadow.dev import kafka as dev_kafka
from shadow.dev.kafka import LocalKafka, check_java
from shadow.dev.s3 import LocalS3
from shadow.errors import DependencyMissing


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
