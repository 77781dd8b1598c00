#!/usr/bin/env python3
"""Writes Acra-format audit log fixtures for vigil's Acra verifier.

Independent of the Rust verifier: standard library only, following Acra's
formatters and integrity calculator as shared/reference/acra.md (sections 1
and 3) describes them. Go's encoding/json, fmt and strconv behaviour is
reproduced by hand below.

    python3 gen.py          # rewrites every fixture next to this file

Fixtures (each <name>/<format>/ holds the log files and manifest.json):

  rotation/        3 rotated files (log.txt.2, log.txt.1, log.txt), 4 chains:
                   startup lines before the key is loaded (unsigned), two
                   SIGUSR1 key rotations (ResetChain with the same key), a
                   restart, unicode, HTML characters, fake " integrity=" and
                   " chain=new" text, floats, a 66 KiB line, and the literal
                   example lines of the reference.
  after-end/       FinalizeChain without re-keying: entries continue the
                   chain after its end, and the log stops without an end.
  two-keys/        ResetChain(K2): chain 1 under key.hex, chain 2 under
                   other.key.hex.
  json-reformatted/  JSON lines re-serialized by a shipper (key order,
                   spaces, \\u escapes, 563.0, \\/), which Acra's canonical
                   form ignores.
  json-go1.21/     JSON written by a Go older than 1.22 (\\u0008, \\u000c).

manifest.json lists every line: unsigned, or signed with its chain (1-based),
its index in the chain, and whether it carries chain=new / is an end.
"""

import datetime
import decimal
import hashlib
import hmac
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))

KEY = hashlib.sha256(b"vigil acra fixture key").digest()
OTHER_KEY = hashlib.sha256(b"vigil acra fixture key, rotated").digest()

END_MESSAGE = "End of current audit log chain"
PREPARE_MESSAGE = "Prepare to audit log chain finalization"
TZ = datetime.timezone(datetime.timedelta(hours=3))


# ---------------------------------------------------------------------------
# Go formatting, by hand


def shortest_digits(f):
    """Shortest round-trip digits of a float and the decimal point position."""
    d = decimal.Decimal(repr(abs(f))).normalize()
    sign, digits, exp = d.as_tuple()
    digits = "".join(map(str, digits))
    return digits, len(digits) + exp


def fixed(digits, dp):
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def go_json_float(f):
    """encoding/json's floatEncoder for float64."""
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign = "-" if f < 0 else ""
    digits, dp = shortest_digits(f)
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        exp = dp - 1
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        # strconv writes e+21 / e-07; encoding/json then turns e-07 into e-7.
        return sign + mant + "e" + ("-" if exp < 0 else "+") + str(abs(exp))
    return sign + fixed(digits, dp)


def go_sprint_float(f):
    """fmt.Sprint(float64): %g with the shortest digits."""
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    digits, dp = shortest_digits(f)
    exp = dp - 1
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (sign, mant, "-" if exp < 0 else "+", abs(exp))
    return sign + fixed(digits, dp)


def go_sprint(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_sprint_float(v)
    return str(v)


def go_quote(s):
    """strconv.Quote (fmt %q)."""
    named = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
             "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in named:
            out.append(named[ch])
        elif ch.isprintable():
            out.append(ch)
        elif c < 0x20 or c == 0x7F:
            out.append("\\x%02x" % c)
        elif c < 0x10000:
            out.append("\\u%04x" % c)
        else:
            out.append("\\U%08x" % c)
    out.append('"')
    return "".join(out)


def go_json_string(s, legacy=False):
    """encoding/json's string encoder with HTML escaping (Go 1.22+, or older)."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "\b\f" and not legacy:
            out.append("\\b" if ch == "\b" else "\\f")
        elif c < 0x20 or ch in "<>&" or c in (0x2028, 0x2029):
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_marshal(v, legacy=False):
    """json.Marshal of what json.Unmarshal gives for interface{}."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return go_json_float(float(v))
    if isinstance(v, str):
        return go_json_string(v, legacy)
    if isinstance(v, list):
        return "[" + ",".join(go_marshal(x, legacy) for x in v) + "]"
    if isinstance(v, dict):
        # Python orders str by code point, which is UTF-8 byte order.
        return "{" + ",".join(go_json_string(k, legacy) + ":" + go_marshal(v[k], legacy)
                              for k in sorted(v)) + "}"
    raise TypeError(v)


def go_unmarshal(text):
    """json.Unmarshal into map[string]interface{}: every number is a float64."""
    return json.loads(text, parse_int=float, parse_float=float)


# ---------------------------------------------------------------------------
# Acra's formatters (logrus TextFormatter, JSONFormatter, CEF formatter)


SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@^+")


def needs_quoting(s):
    return len(s) == 0 or any(ch not in SAFE for ch in s)


def rfc3339(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, TZ)
    return t.isoformat()  # 2021-07-01T19:34:14+03:00


def unix_time(ms):
    return "%d.%03d" % (ms // 1000, ms % 1000)


class Event:
    def __init__(self, ms, level, msg, fields):
        self.ms, self.level, self.msg, self.fields = ms, level, msg, dict(fields)


def format_plaintext(ev, service):
    def kv(key, value):
        value = go_sprint(value)
        return key + "=" + (go_quote(value) if needs_quoting(value) else value)

    parts = [kv("time", rfc3339(ev.ms)), kv("level", ev.level)]
    if ev.msg:
        parts.append(kv("msg", ev.msg))
    parts += [kv(k, ev.fields[k]) for k in sorted(ev.fields)]
    return " ".join(parts) + "\n"


def format_json(ev, service, legacy=False):
    obj = {"level": ev.level, "msg": ev.msg, "product": service, "timestamp": rfc3339(ev.ms),
           "unixTime": unix_time(ev.ms), "version": "0.85.0"}
    obj.update(ev.fields)
    return go_marshal(obj, legacy) + "\n"


def cef_prepare(value):
    s = go_sprint(value).strip()
    s = s.replace("\n", " ").replace("\t", " ")
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("=", "\\=")


SEVERITY = {"debug": 0, "info": 1, "warning": 3, "error": 6, "fatal": 8, "panic": 10}


def format_cef(ev, service):
    def value(v):
        s = cef_prepare(v)
        return s if s else " "

    data = dict(ev.fields)
    code = data.pop("code", 100)
    data["unixTime"] = unix_time(ev.ms)
    header = ["CEF:0", "cossacklabs", service, "0.85.0", str(code), ev.msg,
              str(SEVERITY[ev.level])]
    out = "|".join([header[0]] + [value(h) for h in header[1:]]) + "|"
    for key in sorted(data):
        k = cef_prepare(key)
        out += (go_quote(k) if needs_quoting(k) else k) + "=" + value(data[key]) + " "
    return out + "\n"


# ---------------------------------------------------------------------------
# Acra's integrity calculator and audit log hook


class Calculator:
    """LogEntryIntegrityCalculator."""

    def __init__(self, key):
        self.k = hashlib.sha256(key).digest()
        self.prev = b""

    def integrity(self, data):
        new_chain = self.prev == b""
        h = hmac.new(self.k, data + self.prev, hashlib.sha256).digest()
        self.prev = h
        self.k = hashlib.sha256(self.k).digest()
        return hashlib.sha256(h).hexdigest(), new_chain


class AuditLog:
    """An Acra service writing one log stream, possibly over rotated files."""

    def __init__(self, fmt, service="acra-server", legacy_json=False):
        self.fmt, self.service, self.legacy_json = fmt, service, legacy_json
        self.calc = None
        self.files = []  # [name, [(text, manifest entry)]]
        self.chain = 0
        self.index = 0

    def open_file(self, name):
        self.files.append([name, []])

    def load_key(self, key):
        """GetLogSecretKey at startup: a new calculator, so a new chain."""
        self.calc = Calculator(key)

    def formatted(self, ev):
        if self.fmt == "plaintext":
            return format_plaintext(ev, self.service)
        if self.fmt == "json":
            return format_json(ev, self.service, self.legacy_json)
        return format_cef(ev, self.service)

    def log(self, ev, expect_literal=None):
        if ev.msg == END_MESSAGE:
            ev.fields["chain"] = "end"  # the hook's PreFormat
        text = self.formatted(ev)
        if expect_literal is not None:
            assert text == expect_literal + "\n", (text, expect_literal)
        if self.calc is None:
            self.files[-1][1].append((text, {"signed": False}))
            return
        if self.fmt == "json":
            parsed = go_unmarshal(text)
            data = b"".join(b"delimiter" + k.encode() + b"delimiter"
                            + go_marshal(parsed[k], self.legacy_json).encode() + b"delimiter"
                            for k in sorted(parsed))
        elif self.fmt == "plaintext":
            data = text[:-1].encode()
        else:
            assert text.endswith(" \n")
            data = text[:-2].encode()
        ic, new_chain = self.calc.integrity(data)
        if new_chain:
            self.chain += 1
            self.index = 0
        if self.fmt == "json":
            parsed["integrity"] = ic
            if new_chain:
                parsed["chain"] = "new"
            line = go_marshal(parsed, self.legacy_json) + "\n"
        else:
            line = data.decode() + " integrity=" + ic + (" chain=new" if new_chain else "") + "\n"
        self.files[-1][1].append((line, {
            "signed": True, "chain": self.chain, "index": self.index, "new": new_chain,
            "end": ev.msg == END_MESSAGE,
        }))
        self.index += 1

    def service_messages(self, clock, reset_key=None):
        """sendServiceLogs at forced Info level; ResetChain re-keys after the end."""
        self.log(Event(clock.tick(), "info", PREPARE_MESSAGE, {}))
        self.log(Event(clock.tick(), "info", END_MESSAGE, {}))
        if reset_key is not None:
            self.calc = Calculator(reset_key)

    def write(self, directory):
        os.makedirs(directory, exist_ok=True)
        manifest = {"format": self.fmt, "files": [], "lines": []}
        for name, lines in self.files:
            manifest["files"].append(name)
            with open(os.path.join(directory, name), "w", encoding="utf-8", newline="") as f:
                for number, (text, entry) in enumerate(lines, 1):
                    f.write(text)
                    manifest["lines"].append(dict(entry, file=name, line=number))
        with open(os.path.join(directory, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")


class Clock:
    def __init__(self, ms):
        self.ms = ms

    def tick(self, ms=1250):
        self.ms += ms
        return self.ms

    def at(self, ms):
        assert ms > self.ms
        self.ms = ms
        return ms


# ---------------------------------------------------------------------------
# Scripts


# The reference's example lines, per format: (pid, start time in ms, lines).
EXAMPLES = {
    "plaintext": (304870, 1625157254000, [
        'time="2021-07-01T19:34:14+03:00" level=info msg="Starting service acra-server '
        '[pid=304870]" version=0.85.0',
        'time="2021-07-01T19:34:14+03:00" level=info msg="Keystore init OK"',
    ]),
    "json": (304386, 1625157077908, [
        '{"level":"info","msg":"Starting service acra-server [pid=304386]","product":'
        '"acra-server","timestamp":"2021-07-01T19:31:17+03:00","unixTime":"1625157077.908",'
        '"version":"0.85.0"}',
        None,
    ]),
    "cef": (304668, 1625157173936, [
        "CEF:0|cossacklabs|acra-server|0.85.0|100|Starting service acra-server "
        "[pid\\=304668]|1|unixTime=1625157173.936 ",
        "CEF:0|cossacklabs|acra-server|0.85.0|100|Keystore init OK|1|unixTime=1625157173.937 ",
    ]),
}
JSON_WARNING_EXAMPLE = (
    '{"code":563,"error":"fail to parse specified query","level":"warning","msg":'
    '"Failed to parse input query","product":"acra-server","timestamp":'
    '"2021-07-01T19:47:06+03:00","unixTime":"1625158026.944","version":"0.85.0"}'
)

LONG_QUERY = "SELECT " + ", ".join("col_%05d" % i for i in range(6600)) + " FROM wide_table"


def startup(log, clock, pid, fmt, examples=None):
    """Acra's startup lines; the first ones precede the key and are unsigned."""
    start = examples[0] if examples else None
    keystore = examples[1] if examples else None
    fields = {"version": "0.85.0"} if fmt == "plaintext" else {}
    log.log(Event(clock.ms, "info", "Starting service acra-server [pid=%d]" % pid, fields),
            expect_literal=start)
    log.log(Event(clock.tick(0), "info", "Validating service configuration...", {}))
    log.log(Event(clock.tick(0), "info", "Initialising keystore...", {}))
    ks_fields = {} if keystore or fmt == "cef" else {"path": ".acrakeys"}
    ks_ms = clock.tick(1) if fmt == "cef" else clock.tick(0)
    log.log(Event(ks_ms, "info", "Keystore init OK", ks_fields), expect_literal=keystore)
    log.load_key(KEY)
    log.log(Event(clock.tick(), "info", "Configuring transport...", {}))
    log.log(Event(clock.tick(), "info", "Start listening connections", {}))


def connection(log, clock, session, client, queries):
    log.log(Event(clock.tick(), "info", "Got new connection to AcraServer: 10.0.0.%d:5%04d"
                  % (session, session), {}))
    for level, msg, fields in queries:
        f = {"session_id": session, "client_id": client}
        f.update(fields)
        log.log(Event(clock.tick(), level, msg, f))
    log.log(Event(clock.tick(), "info", "Finished processing client's connection",
                  {"session_id": session, "client_id": client}))


def rotation(fmt):
    pid, start_ms, examples = EXAMPLES[fmt]
    clock = Clock(start_ms)
    log = AuditLog(fmt)
    log.open_file("log.txt.2")
    startup(log, clock, pid, fmt, examples)
    connection(log, clock, 1, "app-reader", [
        ("info", "Allowed query: 'select id, name from users where id = :replaced1'",
         {"service": "acra-censor", "handler": "allow"}),
        ("error", "Denied query: 'select * from cards where note = :replaced1'",
         {"code": 560, "error": "deny by query", "service": "acra-censor", "handler": "deny"}),
        ("info", "Allowed query: 'select 1 where a < b && c > d'",
         {"service": "acra-censor", "handler": "allow", "note": "<script>&amp;</script>"}),
    ])
    # The reference's warning example, signed (JSON) or in the same words.
    if fmt == "json":
        clock.at(1625158026944)
        log.log(Event(clock.ms, "warning", "Failed to parse input query",
                      {"code": 563, "error": "fail to parse specified query"}),
                expect_literal=JSON_WARNING_EXAMPLE)
    else:
        log.log(Event(clock.tick(), "warning", "Failed to parse input query",
                      {"code": 563, "error": "fail to parse specified query"}))
    log.log(Event(clock.tick(), "info", "Received incoming SIGUSR1 signal", {}))
    log.service_messages(clock, reset_key=KEY)  # chain 1 ends; chain 2 starts
    connection(log, clock, 2, "клиент-😀", [
        ("error", "Denied query: 'SELECT * FROM пользователи WHERE имя = :replaced1'",
         {"code": 560, "error": "deny by table", "handler": "deny", "table": "пользователи"}),
        ("info", "Denied query: 'update t set note = ' integrity=00ff chain=new' where id = 1'",
         {"error": "x integrity=abcd", "handler": "deny"}),
        ("info", "multi\nline\tquery \\ with | pipes = and \"quotes\"",
         {"weird key": "v", "empty": ""}),
    ])
    log.open_file("log.txt.1")  # copytruncate in the middle of chain 2
    log.log(Event(clock.tick(), "info", "span", {
        "span_name": "HandleSession", "duration": 0.000125, "ratio": 1.5e-07,
        "bytes": 1e21, "count": 12345678.0, "sampled": True,
        "float_id": 1625157077.0,
    }))
    log.log(Event(clock.tick(), "error", "Denied query: '%s'" % LONG_QUERY,
                  {"code": 560, "handler": "deny", "session_id": 3}))
    log.log(Event(clock.tick(), "info", "Received incoming SIGTERM or SIGINT signal", {}))
    log.service_messages(clock)  # deferred FinalizeChain at exit: chain 2 ends
    clock.tick(60000)
    log.calc = None  # restart: no key until keystore init
    startup(log, clock, pid + 1, fmt)  # chain 3
    connection(log, clock, 1, "app-writer", [
        ("info", "Allowed query: 'insert into orders values (:replaced1, :replaced2)'",
         {"service": "acra-censor", "handler": "allow"}),
    ])
    log.open_file("log.txt")
    connection(log, clock, 2, "app-writer", [
        ("warning", "OCSP: Certificate was revoked",
         {"url": "http://ocsp.example/", "serial": "0a:1b", "revoked_at": "2021-06-30"}),
    ])
    log.log(Event(clock.tick(), "info", "Received incoming SIGUSR1 signal", {}))
    log.service_messages(clock, reset_key=KEY)  # chain 3 ends; chain 4 starts
    connection(log, clock, 3, "app-reader", [
        ("info", "Allowed query: 'select count(*) from orders'",
         {"service": "acra-censor", "handler": "allow"}),
    ])
    log.log(Event(clock.tick(), "info", "Received incoming SIGTERM or SIGINT signal", {}))
    log.service_messages(clock)  # chain 4 ends
    return log


def after_end(fmt):
    """FinalizeChain does not re-key: later entries continue the chain."""
    clock = Clock(1625160000000)
    log = AuditLog(fmt)
    log.open_file("log.txt")
    startup(log, clock, 4242, fmt)
    log.service_messages(clock)
    log.log(Event(clock.tick(), "info", "Server graceful shutdown completed, bye PID: 4242", {}))
    return log


def two_keys(fmt):
    clock = Clock(1625170000000)
    log = AuditLog(fmt)
    log.open_file("log.txt")
    startup(log, clock, 5151, fmt)
    log.log(Event(clock.tick(), "info", "Received incoming SIGUSR1 signal", {}))
    log.service_messages(clock, reset_key=OTHER_KEY)
    connection(log, clock, 1, "app", [("info", "Allowed query: 'select 1'", {})])
    log.service_messages(clock)
    return log


def json_legacy():
    clock = Clock(1625180000000)
    log = AuditLog("json", legacy_json=True)
    log.open_file("log.json")
    startup(log, clock, 6161, "json")
    connection(log, clock, 1, "app", [
        ("error", "Failed to parse input query",
         {"code": 563, "error": "unexpected \b and \f in 'select\f1'"}),
    ])
    log.service_messages(clock)
    return log


def reformat(line):
    """A shipper's re-encoding of one JSON line: same values, other text."""
    obj = json.loads(line)

    def enc(v):
        if isinstance(v, bool) or v is None:
            return json.dumps(v)
        if isinstance(v, (int, float)):
            return repr(float(v))  # 563.0, 1.5e-07, 1e+21
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=True).replace("/", "\\/")
        raise TypeError(v)

    return "{ " + ",  ".join(json.dumps(k) + " : " + enc(obj[k])
                             for k in sorted(obj, reverse=True)) + " }\n"


def main():
    for sub in ["rotation", "after-end", "two-keys", "json-reformatted", "json-go1.21"]:
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
    with open(os.path.join(HERE, "key.hex"), "w") as f:
        f.write(KEY.hex() + "\n")
    with open(os.path.join(HERE, "key.bin"), "wb") as f:
        f.write(KEY)
    with open(os.path.join(HERE, "other.key.hex"), "w") as f:
        f.write(OTHER_KEY.hex() + "\n")
    for fmt in ["plaintext", "json", "cef"]:
        rotation(fmt).write(os.path.join(HERE, "rotation", fmt))
        after_end(fmt).write(os.path.join(HERE, "after-end", fmt))
        two_keys(fmt).write(os.path.join(HERE, "two-keys", fmt))
    json_legacy().write(os.path.join(HERE, "json-go1.21", "json"))
    log = rotation("json")
    for _, lines in log.files:
        for i, (text, entry) in enumerate(lines):
            lines[i] = (reformat(text), entry)
    log.write(os.path.join(HERE, "json-reformatted", "json"))


if __name__ == "__main__":
    main()
