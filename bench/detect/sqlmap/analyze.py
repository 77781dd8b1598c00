#!/usr/bin/env python3
"""Counts for bench/detect/sqlmap/run.sh, printed as Markdown.

Unit of measure: one query string the application sent (one HTTP request
that ran SQL). sqlmap runs one request at a time, so every vigil event of
the sqlmap phase belongs to the latest query the application logged before
it (the application logs a query before sending it; vigil stamps an
anomaly event when the query arrives and a statement event when it ends).

A query is *injected* when one of its statement events has a fingerprint
never seen in the normal phase. It is *flagged* when it raised at least one
anomaly.sql_injection event. Its technique comes from sqlmap's -v 3 output:
the [PAYLOAD] line it matches, under the "testing '<title>'" line in effect.
"""
import argparse
import bisect
import collections
import datetime
import json
import glob
import os
import re
import sys

TECH = [("boolean-based", "B"), ("error-based", "E"), ("UNION", "U"),
        ("stacked", "S"), ("time-based", "T"), ("inline", "Q")]
LINE = re.compile(r"^\[(\d\d:\d\d:\d\d)\] \[(\w+)\] (.*)$")


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def unescape(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sqlmap_payloads(stdout):
    """[(section, payload)] in order, and the summary of the run."""
    section = "checks"
    items = []
    ident = False
    found = []
    for raw in open(stdout, encoding="utf-8", errors="replace"):
        raw = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]", "", raw.rstrip("\n"))
        if "identified the following injection point" in raw:
            ident = True
            section = "exploitation"
        m = LINE.match(raw)
        if not m:
            if ident and raw.strip().startswith("Type:"):
                found.append(raw.strip()[5:].strip())
            if raw.strip().startswith("---") and found:
                ident = False
            continue
        kind, msg = m.group(2), m.group(3)
        if kind == "INFO" and msg.startswith("testing '") and section != "exploitation":
            section = msg[len("testing '"):].rstrip("'")
        elif kind == "PAYLOAD":
            items.append((section, msg))
    return items, found


def technique(section):
    for key, letter in TECH:
        if key.lower() in section.lower():
            return letter
    return section  # "checks", "exploitation"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audit", required=True)
    ap.add_argument("--phases", required=True)
    ap.add_argument("--sql-log", required=True)
    ap.add_argument("--sqlmap", nargs="+", required=True)
    ap.add_argument("--app-counts")
    ap.add_argument("--verify")
    ap.add_argument("--verify-rc", default="?")
    ap.add_argument("--meta", default="")
    a = ap.parse_args()

    segs = sorted(glob.glob(os.path.join(a.audit, "*.log")))
    events = []
    for seg in segs:
        for line in open(seg, encoding="utf-8"):
            line = line.strip()
            if line.startswith("{"):
                events.append(json.loads(line))

    # Application queries, in order.
    queries = []  # dicts: t, phase, sql, stmts[], anomalies[]
    for line in open(a.sql_log, encoding="utf-8"):
        t, phase, sql = line.rstrip("\n").split("\t", 2)
        queries.append({"t": float(t), "phase": phase, "sql": unescape(sql), "stmts": [], "anoms": []})
    qtimes = [q["t"] for q in queries]

    unassigned = collections.Counter()
    for e in events:
        name = e.get("name")
        if name not in ("statement.executed", "statement.failed", "anomaly.sql_injection"):
            continue
        i = bisect.bisect_right(qtimes, ts(e["time"])) - 1
        if i < 0:
            unassigned[name] += 1
            continue
        q = queries[i]
        if name == "anomaly.sql_injection":
            q["anoms"].append(e)
        else:
            q["stmts"].append(e)

    normal_fps = {s["fingerprint"] for q in queries if q["phase"] == "normal" for s in q["stmts"]}

    # Techniques from sqlmap's payload lines, per run.
    runs = []
    for d in a.sqlmap:
        target = open(os.path.join(d, "target")).read().strip()
        rc = open(os.path.join(d, "rc")).read().strip()
        items, found = sqlmap_payloads(os.path.join(d, "stdout.log"))
        phase = "sqlmap" + re.sub(r"\D", "", os.path.basename(d))
        runs.append((phase, target, rc, items, found))
        qs = [q for q in queries if q["phase"] == phase]
        template_end = {"item": "WHERE id = ", "search": "WHERE name = '", "sort": "ORDER BY "}
        prefix = template_end[target.split("?")[0]]
        j = 0
        last = "checks"
        for q in qs:
            value = q["sql"].split(prefix, 1)[1] if prefix in q["sql"] else q["sql"]
            if prefix.endswith("'") and value.endswith("'"):
                value = value[:-1]
            k = j
            while k < len(items) and items[k][1] != value:
                k += 1
            if k < len(items) and k - j < 50:
                last = items[k][0]
                j = k + 1
                q["tech"] = technique(last)
            else:
                q["tech"] = technique(last) if last == "exploitation" else "checks"

    out = []
    p = out.append
    p("Setup: %s." % a.meta)
    p("")
    # Per phase.
    phases = []
    for q in queries:
        if q["phase"] not in phases:
            phases.append(q["phase"])
    p("| phase | app queries | statement events (executed / failed) | anomaly.sql_injection events | queries flagged |")
    p("|---|---:|---:|---:|---:|")
    for ph in phases:
        qs = [q for q in queries if q["phase"] == ph]
        ex = sum(1 for q in qs for s in q["stmts"] if s["name"] == "statement.executed")
        fa = sum(1 for q in qs for s in q["stmts"] if s["name"] == "statement.failed")
        an = sum(len(q["anoms"]) for q in qs)
        fl = sum(1 for q in qs if q["anoms"])
        label = ph if ph == "normal" else "%s (/%s)" % (ph, next(r[1] for r in runs if r[0] == ph))
        p("| %s | %d | %d (%d / %d) | %d | %d |" % (label, len(qs), ex + fa, ex, fa, an, fl))
    if unassigned:
        p("")
        p("Events before the first application query (not counted): %s." % dict(unassigned))
    p("")
    p("Normal phase: %d distinct fingerprints." % len(normal_fps))
    p("")

    sq = [q for q in queries if q["phase"].startswith("sqlmap")]
    for q in sq:
        q["injected"] = any(s["fingerprint"] not in normal_fps for s in q["stmts"]) or not q["stmts"]
    noevent = sum(1 for q in sq if not q["stmts"])
    inj = [q for q in sq if q["injected"]]
    benign = [q for q in sq if not q["injected"]]
    tp = sum(1 for q in inj if q["anoms"])
    fp_sq = sum(1 for q in benign if q["anoms"])
    normal_q = [q for q in queries if q["phase"] == "normal"]
    fp_normal = sum(1 for q in normal_q if q["anoms"])
    flagged = tp + fp_sq + fp_normal
    p("sqlmap phase: %d queries; %d injected (a statement fingerprint never seen in the normal phase%s), %d with only normal fingerprints." % (
        len(sq), len(inj), "; %d queries with no statement event counted as injected" % noevent if noevent else "", len(benign)))
    p("")
    p("| measure | value |")
    p("|---|---:|")
    p("| recall: injected queries flagged | %d / %d = %s |" % (tp, len(inj), "%.4f" % (tp / len(inj)) if inj else "n/a"))
    p("| precision: flagged queries that were injected | %d / %d = %s |" % (tp, flagged, "%.4f" % (tp / flagged) if flagged else "n/a"))
    p("| false positives, normal phase (queries / events) | %d / %d |" % (fp_normal, sum(len(q["anoms"]) for q in normal_q)))
    p("| false positives, sqlmap queries with normal fingerprints | %d |" % fp_sq)
    p("")

    p("Per sqlmap technique (the test sqlmap was running; `checks`: connection, stability, heuristic and WAF requests; `exploitation`: after detection, %s):" % "the fetches")
    p("")
    p("| run | technique | queries | injected | injected flagged | recall | normal-shaped flagged |")
    p("|---|---|---:|---:|---:|---:|---:|")
    order = ["checks", "B", "E", "U", "S", "T", "Q", "exploitation"]
    for ph, target, rc, items, found in runs:
        qs = [q for q in sq if q["phase"] == ph]
        techs = sorted({q["tech"] for q in qs}, key=lambda t: order.index(t) if t in order else 99)
        for t in techs:
            tq = [q for q in qs if q["tech"] == t]
            ti = [q for q in tq if q["injected"]]
            tf = sum(1 for q in ti if q["anoms"])
            nf = sum(1 for q in tq if not q["injected"] and q["anoms"])
            p("| /%s | %s | %d | %d | %d | %s | %d |" % (target, t, len(tq), len(ti), tf,
                                                       "%.4f" % (tf / len(ti)) if ti else "n/a", nf))
    p("")

    rules = collections.Counter()
    rules_q = collections.Counter()
    for q in queries:
        seen = set()
        for e in q["anoms"]:
            r = e.get("fields", {}).get("rule", "?")
            rules[(q["phase"] == "normal", r)] += 1
            seen.add(r)
        for r in seen:
            rules_q[(q["phase"] == "normal", q.get("injected", False), r)] += 1
    p("Per rule (`anomaly.sql_injection` events; queries: injected sqlmap queries that raised it):")
    p("")
    p("| rule | events, sqlmap phase | injected queries | events, normal phase |")
    p("|---|---:|---:|---:|")
    for r in sorted({r for _, r in rules}, key=lambda r: -rules[(False, r)]):
        p("| `%s` | %d | %d | %d |" % (r, rules[(False, r)], rules_q[(False, True, r)], rules[(True, r)]))
    p("")

    missed = [q for q in inj if not q["anoms"]]
    if missed:
        p("Injected queries not flagged (%d; the first 40 distinct, technique and SQL as the application sent it):" % len(missed))
        p("")
        p("```text")
        seen = set()
        for q in missed:
            key = (q["tech"], q["sql"])
            if key in seen:
                continue
            seen.add(key)
            p("[%s] %s" % (q["tech"], q["sql"][:300]))
            if len(seen) >= 40:
                break
        p("```")
        p("")

    p("What sqlmap reported:")
    p("")
    for ph, target, rc, items, found in runs:
        p("- `/%s` (exit status %s): %s" % (target, rc, "; ".join(found) if found else "not injectable (no injection point identified)"))
    p("")
    if a.verify:
        p("`vigil verify --key-dir`: exit status %s, `%s`" % (a.verify_rc, open(a.verify).read().strip().splitlines()[-1] if open(a.verify).read().strip() else ""))
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
