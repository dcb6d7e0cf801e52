"""The machine-readable report: the JSON envelope, its schema, and SARIF.

``--json`` prints one :class:`Report`. Its JSON Schema is generated from these models
and shipped as ``tools/schema/report.schema.json``; a test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tools.findings import CATALOG
from tools.models import (
    SCHEMA_VERSION,
    CheckReport,
    PqResult,
    ScanResult,
    Severity,
    TlsResult,
)

TOOL_NAME = "netwarden"
TOOL_URI = "https://github.com/netwarden/netwarden"

Command = Literal["tls", "pq", "scan", "check"]
Entry = Annotated[
    TlsResult | PqResult | ScanResult | CheckReport, Field(discriminator="kind")
]


class Report(BaseModel):
    """One run of one command over one or more targets."""

    schema_version: Literal["1.0"] = "1.0"
    tool: str = TOOL_NAME
    version: str
    command: Command
    generated_at: str
    results: list[Entry]


def build_report(command: Command, version: str, results: list[Any]) -> Report:
    return Report(
        version=version,
        command=command,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        results=results,
    )


def report_json(report: Report) -> str:
    return report.model_dump_json(indent=2)


def generated_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{TOOL_URI}/schema/report-{SCHEMA_VERSION}.json"
    return schema


def shipped_schema() -> str:
    """The schema file that ships in the package."""
    return (
        resources.files("tools")
        .joinpath("schema/report.schema.json")
        .read_text(encoding="utf-8")
    )


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# --- SARIF 2.1.0 ----------------------------------------------------------------------

_LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SCORES = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def to_sarif(report: Report) -> dict[str, Any]:
    """Findings as a SARIF 2.1.0 log, one rule per catalogued finding id."""
    rules = [
        {
            "id": rule_id,
            "name": "".join(part.title() for part in rule_id.split("-")),
            "shortDescription": {"text": kind.title},
            "help": {"text": kind.remediation},
            "defaultConfiguration": {"level": _LEVELS[kind.severity]},
            "properties": {"security-severity": _SCORES[kind.severity]},
        }
        for rule_id, kind in CATALOG.items()
    ]
    index = {rule_id: i for i, rule_id in enumerate(CATALOG)}
    results = [
        _sarif_result(entry.target, entry.host, entry.port, f, index)
        for entry in _flatten(report.results)
        for f in entry.findings
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": report.version,
                        "informationUri": TOOL_URI,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": True}],
                "results": results,
            }
        ],
    }


def _flatten(results: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for entry in results:
        if isinstance(entry, CheckReport):
            flat.extend([*entry.tls, *entry.pq])
        else:
            flat.append(entry)
    return flat


def _sarif_result(
    target: str, host: str, port: int | None, found: Any, index: dict[str, int]
) -> dict[str, Any]:
    where = f"{host}:{port}" if port else host
    fingerprint = hashlib.sha256(f"{where}|{found.id}".encode()).hexdigest()[:32]
    return {
        "ruleId": found.id,
        "ruleIndex": index[found.id],
        "level": _LEVELS[found.severity],
        "message": {"text": f"{where}: {found.title}. {found.detail}"},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": where}},
                "logicalLocations": [{"name": target, "kind": "endpoint"}],
            }
        ],
        "partialFingerprints": {"netwardenFinding/v1": fingerprint},
    }
