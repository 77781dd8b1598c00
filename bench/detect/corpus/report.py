#!/usr/bin/env python3
"""The report of bench/detect/corpus/run.sh: which corpus statements raised
`anomaly.sql_injection` through the proxy, against what the library said.

  report.py AUDIT_DIR CORPUS_JSONL SEND_SUMMARY VERIFY_LINE
"""
import json
import os
import sys


def main(audit, corpus, summary, verify_line):
    with open(corpus, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    seen, detected = set(), set()
    segments = sorted(n for n in os.listdir(audit) if n.startswith("audit-") and n.endswith(".log"))
    for seg in segments:
        with open(os.path.join(audit, seg), encoding="utf-8") as f:
            for line in f:
                ev = json.loads(line)
                app = ev.get("application", "")
                if not app.startswith("corpus-"):
                    continue
                i = int(app[len("corpus-"):])
                if ev.get("category") == "statement":
                    seen.add(i)
                if ev["name"] == "anomaly.sql_injection":
                    detected.add(i)

    # A statement with a NUL byte cannot be sent (libpq ends the string
    # there); it is compared on the library's side only.
    sendable = [i for i, r in enumerate(records) if "\0" not in r["sql"]]
    agree = sum(1 for i in sendable if records[i]["injection"] == (i in detected))
    only_library = [i for i in sendable if records[i]["injection"] and i not in detected]
    only_proxy = [i for i in sendable if not records[i]["injection"] and i in detected]
    lines = {}
    for i, r in enumerate(records):
        key = (r["file"], r["line"])
        d = lines.setdefault(key, {"alters": False, "library": False, "proxy": False})
        d["alters"] |= r["alters"]
        d["library"] |= r["injection"]
        d["proxy"] |= i in detected
    altering = [d for d in lines.values() if d["alters"]]

    def pct(n, d):
        return f"{100.0 * n / d:.1f}%" if d else "-"

    print("## SQL injection corpus through the proxy\n")
    print(f"Sender: {summary}. Audit log: {verify_line}\n")
    print(f"Statements: {len(records):,} ({len(lines):,} payload lines × 5 templates); "
          f"statement events seen for {len(seen):,}.\n")
    print("| | library (`detect_eval`) | through vigil serve |")
    print("|---|---:|---:|")
    print(f"| statements with an injection finding | {sum(r['injection'] for r in records):,} | {len(detected):,} |")
    lib_all = sum(d["library"] for d in lines.values())
    prx_all = sum(d["proxy"] for d in lines.values())
    print(f"| payload lines detected, of {len(lines):,} | {lib_all:,} ({pct(lib_all, len(lines))}) | {prx_all:,} ({pct(prx_all, len(lines))}) |")
    lib_alt = sum(d["library"] for d in altering)
    prx_alt = sum(d["proxy"] for d in altering)
    print(f"| lines that alter structure detected, of {len(altering):,} | {lib_alt:,} ({pct(lib_alt, len(altering))}) | {prx_alt:,} ({pct(prx_alt, len(altering))}) |")
    print()
    print(f"Per statement sent ({len(sendable):,}; {len(records) - len(sendable)} hold a NUL byte, "
          f"which libpq cannot send), proxy and library agree on {agree:,}; "
          f"library only: {len(only_library)}, proxy only: {len(only_proxy)}.")
    for name, idx in (("library only", only_library), ("proxy only", only_proxy)):
        for i in idx[:10]:
            print(f"- {name}: `{records[i]['sql'][:160]}`")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
