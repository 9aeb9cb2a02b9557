"""The JSON Schema of the triage record, shipped as record.schema.json beside this module."""

from __future__ import annotations

import json
from pathlib import Path

from complaint_triage.models import TriageRecord

SCHEMA_PATH = Path(__file__).with_name("record.schema.json")


def record_schema() -> dict:
    """The schema generated from the TriageRecord model (serialisation view, JSON key names)."""
    schema = TriageRecord.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://complaint-triage.invalid/record.schema.json"
    schema["required"] = sorted(schema["properties"])
    return schema


def shipped_schema() -> dict:
    """The schema file that ships with the package."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def write_schema() -> Path:
    """Regenerate record.schema.json from the model."""
    SCHEMA_PATH.write_text(json.dumps(record_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SCHEMA_PATH
