"""The chdb engine (ClickHouse 26.9 in-process) as the oracle for RowBinary
encodings of types the test server (18.16) lacks.

Reads cases [{"type", "hex", "expected", optional "expr", "structure",
"format"}] from the JSON file given as the first argument, decodes each with
`format(<format, default RowBinary>, <structure, default "c <type>">, ...)`
and compares `expr` (default `toString(c)`) with the expected text. Exits 1 listing every mismatch."""

import json
import sys

import chdb

SETTINGS = (
    " SETTINGS allow_experimental_variant_type = 1, allow_experimental_json_type = 1,"
    " input_format_binary_read_json_as_string = 1, session_timezone = 'UTC'"
)


def main() -> int:
    cases = json.load(open(sys.argv[1]))
    conn = chdb.connect(":memory:")
    failures = []
    for case in cases:
        structure = case.get("structure", "c " + case["type"]).replace("'", "\\'")
        sql = (
            f"SELECT {case.get('expr', 'toString(c)')} "
            f"FROM format({case.get('format', 'RowBinary')}, '{structure}', unhex('{case['hex']}'))"
            + SETTINGS
        )
        try:
            got = str(conn.query(sql, "TSVRaw")).rstrip("\n")
        except Exception as error:  # the engine's own error is the finding
            got = f"ERROR: {error}"
        if got != case["expected"]:
            failures.append(f"{case['type']} {case.get('input')!r}: expected {case['expected']!r}, got {got!r}")
    for failure in failures:
        print(failure)
    print(f"chdb oracle: {len(cases) - len(failures)} of {len(cases)} encodings decode as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
