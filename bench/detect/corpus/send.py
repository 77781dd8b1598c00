#!/usr/bin/env python3
"""Sends every statement of a corpus file (from `detect_eval --emit`) through
vigil, each on its own connection named `corpus-<index>`, as one simple
Query (libpq's PQexec, as an application that splices input into its SQL).

  send.py CONNINFO CORPUS_JSONL

Prints how many statements were sent, failed on the server (most payloads
are not valid SQL) and skipped (a NUL byte, which libpq cannot send).
"""
import json
import sys

import psycopg


def main(conninfo, corpus):
    sent = failed = skipped = 0
    with open(corpus, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    for i, rec in enumerate(records):
        sql = rec["sql"]
        if "\0" in sql:
            skipped += 1
            continue
        with psycopg.connect(f"{conninfo} application_name=corpus-{i}", autocommit=True) as conn:
            result = conn.pgconn.exec_(sql.encode("utf-8", "surrogateescape"))
            sent += 1
            if result.status not in (1, 2):  # COMMAND_OK, TUPLES_OK
                failed += 1
    print(f"sent={sent} failed={failed} skipped={skipped}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
