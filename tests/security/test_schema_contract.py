"""The OpenAPI schema states the contract (docs/api-contract.md): every error code it names, the
fields an error body can carry, and the health check."""

import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "api-contract.md"


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("schema") / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    return yaml.safe_load(out.read_text())


def documented_codes() -> set[str]:
    section = CONTRACT.read_text().split("## Error codes", 1)[1].split("An error body may", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", section))


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node or "allOf" in node:
        ref = node["$ref"] if "$ref" in node else node["allOf"][0]["$ref"]
        node = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return node


def test_the_schema_lists_exactly_the_error_codes_of_the_contract(schema):
    problem = schema["components"]["schemas"]["Problem"]["properties"]
    codes = set(resolve(schema, problem["code"])["enum"])
    # The section also names the fields a body carries ("the body names `minimum_version`").
    documented = documented_codes() - set(problem)

    assert codes == documented
    assert "minimum_version" in problem


def test_error_bodies_declare_every_extra_field(schema):
    fields = set(schema["components"]["schemas"]["Problem"]["properties"])

    assert {"available", "retry_after", "limit", "errors", "reason"} <= fields


def test_the_health_check_is_in_the_schema(schema):
    operation = schema["paths"]["/healthz"]["get"]

    assert set(operation["responses"]) == {"200", "503"}
