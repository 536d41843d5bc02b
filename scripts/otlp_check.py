"""Checks request bodies posthaste sent with Encoding::OtlpLogs against the real OTLP schema.

    python3 scripts/otlp_check.py BODIES_DIR EXPECT_JSON

BODIES_DIR holds one file per request body (already gunzipped). Each is parsed into
opentelemetry.proto.collector.logs.v1.logs_service_pb2.ExportLogsServiceRequest with
google.protobuf.json_format, unknown fields refused, after turning the hex traceId/spanId of
OTLP's JSON encoding into the base64 that protobuf's JSON mapping expects. EXPECT_JSON names what
must hold over all records:

    {"records": 12,                         # total log records
     "severities": {"INFO": 9, ...},        # severityText -> severityNumber, for every record that has one
     "attributes": {"step": "int_value", "residual": "double_value", ...},   # key -> AnyValue kind
     "resource": {"service.name": "solver"},  # resource attributes present (string values)
     "trace_ids": true}                     # at least one record carries a trace and span id

Prints a summary line and exits 0, or prints what failed and exits 1.
"""

import base64
import json
import os
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2


def hex_ids_to_base64(doc):
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for rec in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64encode(bytes.fromhex(rec[key])).decode()
    return doc


def main():
    bodies_dir, expect_path = sys.argv[1], sys.argv[2]
    with open(expect_path) as f:
        expect = json.load(f)
    failures = []
    records = []
    resources = {}
    for name in sorted(os.listdir(bodies_dir)):
        with open(os.path.join(bodies_dir, name), "rb") as f:
            raw = f.read()
        try:
            doc = hex_ids_to_base64(json.loads(raw))
            msg = json_format.Parse(json.dumps(doc), logs_service_pb2.ExportLogsServiceRequest(), ignore_unknown_fields=False)
        except Exception as e:  # noqa: BLE001 - any parse failure is a finding
            failures.append(f"{name}: not an ExportLogsServiceRequest: {e}")
            continue
        for rl in msg.resource_logs:
            for attr in rl.resource.attributes:
                resources[attr.key] = attr.value.string_value
            for sl in rl.scope_logs:
                records.extend(sl.log_records)
    if len(records) != expect["records"]:
        failures.append(f"{len(records)} records, expected {expect['records']}")
    for rec in records:
        wanted = expect.get("severities", {}).get(rec.severity_text)
        if rec.severity_text and wanted is not None and rec.severity_number != wanted:
            failures.append(f"severity {rec.severity_text} has number {rec.severity_number}, expected {wanted}")
    seen_kinds = {}
    for rec in records:
        for attr in rec.attributes:
            seen_kinds.setdefault(attr.key, set()).add(attr.value.WhichOneof("value"))
    for key, kind in expect.get("attributes", {}).items():
        if seen_kinds.get(key) != {kind}:
            failures.append(f"attribute {key}: kinds {sorted(seen_kinds.get(key, []))}, expected {kind}")
    for key, value in expect.get("resource", {}).items():
        if resources.get(key) != value:
            failures.append(f"resource attribute {key}: {resources.get(key)!r}, expected {value!r}")
    if expect.get("trace_ids") and not any(len(r.trace_id) == 16 and len(r.span_id) == 8 for r in records):
        failures.append("no record carries a 16-byte trace id and an 8-byte span id")
    if failures:
        print("OTLP schema check FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"OTLP schema check passed: {len(records)} records in {len(os.listdir(bodies_dir))} requests")


if __name__ == "__main__":
    main()
