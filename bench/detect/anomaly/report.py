#!/usr/bin/env python3
"""The report of bench/detect/anomaly/run.sh, from the sealed audit log.

  report.py AUDIT_DIR PHASES_TSV SETTINGS VERIFY_LINE

PHASES_TSV holds `name<TAB>RFC 3339 time` lines in order: learn, normal,
attacks, attack:<detector> ..., end. Events are placed in the phase their
time falls in.
"""
import bisect
import json
import os
import sys

DETECTORS = [
    ("new_fingerprint", "anomaly.new_fingerprint"),
    ("sql_injection", "anomaly.sql_injection"),
    ("catalog_read", "anomaly.catalog_read"),
    ("dangerous_capability", "anomaly.dangerous_capability"),
    ("error_burst", "anomaly.error_burst"),
    ("bulk_read", "anomaly.bulk_read"),
    ("rate", "anomaly.rate"),
    ("dump", "anomaly.dump"),
    ("auth_probe", "anomaly.auth_probe"),
    ("tls_probe", "anomaly.tls_probe"),
    ("tls_downgrade", "anomaly.tls_downgrade"),
    ("new_source", "anomaly.new_source"),
]


def main(audit, phases_path, settings, verify_line):
    phases = [line.rstrip("\n").split("\t") for line in open(phases_path) if line.strip()]
    starts = [t for _, t in phases]
    names = [n for n, _ in phases]
    counts = {}  # (phase, event name) -> count
    statements = {}  # phase -> statement events
    first = {}  # (phase, event name) -> time of the first one
    segments = sorted(n for n in os.listdir(audit) if n.startswith("audit-") and n.endswith(".log"))
    for seg in segments:
        with open(os.path.join(audit, seg), encoding="utf-8") as f:
            for line in f:
                ev = json.loads(line)
                i = bisect.bisect_right(starts, ev["time"]) - 1
                if i < 0:
                    continue
                phase = names[i]
                if ev.get("category") == "statement":
                    statements[phase] = statements.get(phase, 0) + 1
                if ev["name"].startswith("anomaly."):
                    key = (phase, ev["name"])
                    counts[key] = counts.get(key, 0) + 1
                    first.setdefault(key, ev["time"])

    normal = statements.get("normal", 0)
    print("## Anomaly detectors through the proxy\n")
    print(f"Settings: {settings}. Audit log: {verify_line}\n")
    print(f"Statements: learning {statements.get('learn', 0):,}, normal {normal:,}.\n")
    print("| detector | event | normal phase: events | per million statements | attack: events | detected |")
    print("|---|---|---:|---:|---:|---|")
    missed = 0
    false_pos = 0
    for det, event in DETECTORS:
        fp = counts.get(("normal", event), 0)
        hit = counts.get((f"attack:{det}", event), 0)
        per_m = fp * 1e6 / normal if normal else 0.0
        false_pos += fp
        missed += hit == 0
        print(f"| {det} | `{event}` | {fp} | {per_m:.1f} | {hit} | {'yes' if hit else 'NO'} |")
    print()
    other = sorted(
        (phase, event, n) for (phase, event), n in counts.items()
        if phase.startswith("attack:") and phase != f"attack:{event.split('.', 1)[1]}"
    )
    if other:
        print("Other anomaly events during the attacks (phase, event, count):\n")
        for phase, event, n in other:
            print(f"- {phase}: `{event}` × {n}")
        print()
    learning = sorted((event, n) for (phase, event), n in counts.items() if phase == "learn")
    if learning:
        print("During learning: " + ", ".join(f"`{e}` × {n}" for e, n in learning) + "\n")
    print(f"Detected {len(DETECTORS) - missed} of {len(DETECTORS)} attacks; "
          f"{false_pos} anomaly events in {normal:,} normal statements.")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
