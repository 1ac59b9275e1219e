"""Shared test configuration: the integration fixtures live in tests/integration/conftest.py."""
