"""The published JSON Schema (schema/config.schema.json) agrees with what the filter accepts."""

from __future__ import annotations

import json

import jsonschema
import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.repo import REPO, routing_table

SCHEMA = json.loads((REPO / "schema/config.schema.json").read_text())


def validate(cfg):
    jsonschema.Draft202012Validator(SCHEMA).validate(cfg)


def test_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_shipped_configs_validate():
    validate(routing_table()["config"])
    validate(envoy_config.filter_config(envoy_config.load()))


@pytest.mark.parametrize("cfg", [
    {"rules": "default -> \"s\"", "keep": True, "baggage": "traffic-color", "header": "x-color"},
    {"rules": "default -> \"s\"", "jwt": {"metadata_key": "jwt_payload"}},
    {"rules": "default -> \"s\"", "jwt": {"trust": "unverified", "from": {"cookie": "id_token"}}},
])
def test_accepted_configs_validate(cfg):
    validate(cfg)


@pytest.mark.parametrize("cfg", [
    {"header": "x"},
    {"rules": "default -> \"s\"", "colour": "x"},
    {"rules": "default -> \"s\"", "header": "bad header"},
    {"rules": "default -> \"s\"", "keep": "yes"},
    {"rules": "default -> \"s\"", "jwt": {"trust": "maybe"}},
    {"rules": "default -> \"s\"", "jwt": {"from": {"header": "x-jwt"}}},
    {"rules": "default -> \"s\"", "jwt": {"trust": "unverified", "metadata_key": "p"}},
    {"rules": "default -> \"s\"", "jwt": {"trust": "unverified", "from": {"query": "t"}}},
])
def test_rejected_configs_fail(cfg):
    with pytest.raises(jsonschema.ValidationError):
        validate(cfg)
