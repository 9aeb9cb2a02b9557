"""The shapes of values.jsonl and linking.toml, validated before a pipeline is built from them."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from complaint_triage.errors import ModelError

FAMILIES = ("asin", "complaint_id", "registration", "patent", "copyright")
# Values the linker reads on its own terms (addresses and store names), not through [values.*] rules.
DIRECT_LABELS = frozenset({"VAL_EMAIL", "VAL_MARKETPLACE"})


class ValueShape(BaseModel):
    """One identifier shape: a label and the regular expression that finds it."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(pattern=r"^VAL_[A-Z0-9_]+$")
    regex: str
    note: str = ""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"does not compile: {exc}") from None
        return value


class ValueLink(BaseModel):
    """Which identifier families a value can belong to, and whether it needs a cue before it."""

    model_config = ConfigDict(extra="forbid")
    families: list[str] = Field(min_length=1)
    needs_cue: bool
    default: str | None = None

    @model_validator(mode="after")
    def _known_families(self) -> "ValueLink":
        unknown = set(self.families) - set(FAMILIES) | (
            {self.default} - set(self.families) if self.default else set()
        )
        if unknown:
            raise ValueError(f"unknown or unlisted family {', '.join(sorted(unknown))}")
        return self


class LinkingRules(BaseModel):
    """linking.toml: windows, digit counts per family, cue labels and value labels."""

    model_config = ConfigDict(extra="forbid")
    window_tokens: int = Field(ge=1)
    window_lines: int = Field(ge=0)
    chain_window_tokens: int = Field(ge=1)
    chain_window_lines: int = Field(ge=0)
    veto_tokens: int = Field(ge=0)
    digits: dict[str, tuple[int, int]]
    cues: dict[str, str]
    values: dict[str, ValueLink]

    @model_validator(mode="after")
    def _known_families(self) -> "LinkingRules":
        unknown = (set(self.digits) | set(self.cues.values())) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown family {', '.join(sorted(unknown))}")
        return self


def _first_problem(exc: ValidationError) -> str:
    """The first few problems on one line (a renamed key is both unknown and missing)."""
    return "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()[:3])


def validated_shapes(rows: list[dict], linking: dict, where: str) -> list[dict]:
    """values.jsonl rows checked, each label with its linking rule; as the value finder takes them."""
    shapes = []
    for number, row in enumerate(rows, start=1):
        try:
            shape = ValueShape.model_validate(row)
        except ValidationError as exc:
            raise ModelError(f"{where}: row {number}: {_first_problem(exc)}") from None
        if shape.label not in linking.get("values", {}) and shape.label not in DIRECT_LABELS:
            raise ModelError(
                f"{where}: row {number}: {shape.label} has no [values.{shape.label}] rule in linking.toml"
            )
        shapes.append({"label": shape.label, "regex": shape.regex})
    return shapes


def validated_linking(data: dict, where: str) -> dict:
    """linking.toml checked against its model; returned as the linker takes it."""
    try:
        LinkingRules.model_validate(data)
    except ValidationError as exc:
        raise ModelError(f"{where}: {_first_problem(exc)}") from None
    return data
