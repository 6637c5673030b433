"""Shared pytest configuration. Helpers that need fixtures put them in tests/fixtures_<topic>.py
and list the module in pytest_plugins below (append only)."""

import os

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins: list[str] = []
pytest_plugins += ["tests.fake_llm"]  # the scripted OpenAI-compatible server (agent tests)
pytest_plugins += ["tests.fixtures_docker"]  # a private Docker engine + tiny image (sandbox tests)
pytest_plugins += ["tests.fixtures_cluster"]  # a real 2-node Ray cluster on 127.0.0.1 (cluster tests)
