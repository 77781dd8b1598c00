#!/usr/bin/env python3
"""Writes the hand-made fixtures in fe/ and be/: one message per file, built
field by field from the message formats in the PostgreSQL documentation
(protocol-message-formats.html, PostgreSQL 18), independently of the Rust
codec so that each checks the other. Run from this folder:

    python3 gen_fixtures.py

The tests read the committed files; rerunning this must not change them.
"""

import os
import struct


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def u16(v):
    return struct.pack(">H", v)


def i32(v):
    return struct.pack(">i", v)


def cstr(s):
    if isinstance(s, str):
        s = s.encode()
    assert b"\0" not in s
    return s + b"\0"


def msg(tag, body):
    """A tagged message: type byte, Int32 length counting itself, body."""
    return tag.encode() + i32(4 + len(body)) + body


def untagged(body):
    return i32(4 + len(body)) + body


def values(vals):
    out = u16(len(vals))
    for v in vals:
        out += i32(-1) if v is None else i32(len(v)) + v
    return out


def codes(cs):
    return u16(len(cs)) + b"".join(i16(c) for c in cs)


def oids(os_):
    return u16(len(os_)) + b"".join(struct.pack(">I", o) for o in os_)


def proto(major, minor):
    return struct.pack(">HH", major, minor)


# SCRAM client-first-message (RFC 7677 example nonce).
CLIENT_FIRST = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"

FRONTEND = {
    # Startup phase (untagged).
    "startup-v3.0": untagged(
        proto(3, 0)
        + cstr("user") + cstr("alice")
        + cstr("database") + cstr("shop")
        + cstr("application_name") + cstr("orders-api")
        + cstr("options") + cstr("-c search_path=app")
        + cstr("client_encoding") + cstr("UTF8")
        + b"\0"
    ),
    "startup-v3.2": untagged(
        proto(3, 2)
        + cstr("user") + cstr("bob")
        + cstr("_pq_.test_protocol_negotiation") + cstr("on")
        + b"\0"
    ),
    "ssl-request": untagged(i32(80877103)),
    "gssenc-request": untagged(i32(80877104)),
    "cancel-request-v3.0": untagged(i32(80877102) + i32(4242) + bytes([0xDE, 0xAD, 0xBE, 0xEF])),
    "cancel-request-v3.2": untagged(i32(80877102) + i32(4242) + bytes(range(1, 33))),
    # Simple query.
    "query": msg("Q", cstr("SELECT 1; UPDATE accounts SET owner = 'mallory' WHERE id = 7")),
    # Extended query.
    "parse": msg("P", cstr("stmt_1") + cstr("SELECT * FROM accounts WHERE id = $1 AND owner = $2") + oids([23, 25])),
    "parse-unnamed": msg("P", cstr("") + cstr("SELECT now()") + oids([])),
    "bind": msg(
        "B",
        cstr("")
        + cstr("stmt_1")
        + codes([0, 1, 0])
        + values([b"42", struct.pack(">i", 7), None])
        + codes([1]),
    ),
    "describe-statement": msg("D", b"S" + cstr("stmt_1")),
    "describe-portal": msg("D", b"P" + cstr("")),
    "execute": msg("E", cstr("") + i32(0)),
    "execute-limit": msg("E", cstr("cursor_1") + i32(100)),
    "close-statement": msg("C", b"S" + cstr("stmt_1")),
    "close-portal": msg("C", b"P" + cstr("cursor_1")),
    "sync": msg("S", b""),
    "flush": msg("H", b""),
    "terminate": msg("X", b""),
    # COPY FROM STDIN.
    "copy-data": msg("d", b"3\tcarol\t7.25\t\\N\n"),
    "copy-done": msg("c", b""),
    "copy-fail": msg("f", cstr("aborted by user")),
    # Authentication responses ('p').
    "password": msg("p", cstr("hunter2")),
    "sasl-initial-response": msg(
        "p", cstr("SCRAM-SHA-256") + i32(len(CLIENT_FIRST)) + CLIENT_FIRST
    ),
    "sasl-response": msg("p", b"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
    # Fast path.
    "function-call": msg("F", struct.pack(">I", 1598) + codes([1]) + values([struct.pack(">i", 9)]) + i16(1)),
}

BACKEND = {
    # Authentication.
    "auth-ok": msg("R", i32(0)),
    "auth-kerberos": msg("R", i32(2)),
    "auth-cleartext": msg("R", i32(3)),
    "auth-md5": msg("R", i32(5) + bytes([0x01, 0x02, 0xFE, 0xFF])),
    "auth-gss": msg("R", i32(7)),
    "auth-gss-continue": msg("R", i32(8) + b"\x60\x82\x01\x00token"),
    "auth-sspi": msg("R", i32(9)),
    "auth-sasl": msg("R", i32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0"),
    "auth-sasl-continue": msg("R", i32(11) + b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
    "auth-sasl-final": msg("R", i32(12) + b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
    # Session start.
    "parameter-status": msg("S", cstr("server_version") + cstr("18.1")),
    "backend-key-data-v3.0": msg("K", i32(4242) + bytes([0xDE, 0xAD, 0xBE, 0xEF])),
    "backend-key-data-v3.2": msg("K", i32(4242) + bytes(range(1, 33))),
    "negotiate-protocol-version": msg("v", i32(0) + i32(1) + cstr("_pq_.test_protocol_negotiation")),
    "ready-for-query-idle": msg("Z", b"I"),
    "ready-for-query-transaction": msg("Z", b"T"),
    "ready-for-query-failed": msg("Z", b"E"),
    # Results.
    "row-description": msg(
        "T",
        u16(3)
        + cstr("id") + struct.pack(">IhIhih", 16384, 1, 23, 4, -1, 0)
        + cstr("owner") + struct.pack(">IhIhih", 16384, 2, 25, -1, -1, 0)
        + cstr("balance") + struct.pack(">IhIhih", 0, 0, 1700, -1, 655366, 1),
    ),
    "data-row": msg("D", values([b"1", None, b""])),
    "command-complete-insert": msg("C", cstr("INSERT 0 5")),
    "command-complete-select": msg("C", cstr("SELECT 3")),
    "command-complete-update": msg("C", cstr("UPDATE 2")),
    "command-complete-delete": msg("C", cstr("DELETE 0")),
    "command-complete-merge": msg("C", cstr("MERGE 4")),
    "command-complete-fetch": msg("C", cstr("FETCH 100")),
    "command-complete-copy": msg("C", cstr("COPY 10")),
    "command-complete-create-table": msg("C", cstr("CREATE TABLE")),
    "empty-query-response": msg("I", b""),
    "error-response": msg(
        "E",
        b"S" + cstr("ERROR")
        + b"V" + cstr("ERROR")
        + b"C" + cstr("23505")
        + b"M" + cstr('duplicate key value violates unique constraint "accounts_pkey"')
        + b"D" + cstr("Key (id)=(1) already exists.")
        + b"s" + cstr("public")
        + b"t" + cstr("accounts")
        + b"n" + cstr("accounts_pkey")
        + b"F" + cstr("nbtinsert.c")
        + b"L" + cstr("666")
        + b"R" + cstr("_bt_check_unique")
        + b"\0",
    ),
    "error-response-syntax": msg(
        "E",
        b"S" + cstr("ERREUR")
        + b"V" + cstr("ERROR")
        + b"C" + cstr("42601")
        + b"M" + cstr("erreur de syntaxe sur ou près de « SELEC »")
        + b"H" + cstr("Check the spelling.")
        + b"P" + cstr("15")
        + b"\0",
    ),
    "notice-response": msg(
        "N",
        b"S" + cstr("NOTICE") + b"V" + cstr("NOTICE") + b"C" + cstr("00000")
        + b"M" + cstr("notice from vigil") + b"W" + cstr("PL/pgSQL function inline_code_block line 1 at RAISE")
        + b"\0",
    ),
    "parse-complete": msg("1", b""),
    "bind-complete": msg("2", b""),
    "close-complete": msg("3", b""),
    "no-data": msg("n", b""),
    "portal-suspended": msg("s", b""),
    "parameter-description": msg("t", oids([23, 25, 1043])),
    # COPY.
    "copy-in-response": msg("G", i8(0) + codes([0, 0, 0, 0])),
    "copy-out-response": msg("H", i8(1) + codes([1, 1])),
    "copy-both-response": msg("W", i8(1) + codes([])),
    "copy-data": msg("d", b"1\talice\t101.50\t\\N\n"),
    "copy-done": msg("c", b""),
    # Asynchronous and fast path.
    "notification-response": msg("A", i32(4242) + cstr("vigil_chan") + cstr("payload-42")),
    "function-call-response": msg("V", i32(4) + struct.pack(">i", 81)),
    "function-call-response-null": msg("V", i32(-1)),
}


def main():
    for folder, fixtures in (("fe", FRONTEND), ("be", BACKEND)):
        os.makedirs(folder, exist_ok=True)
        for name, data in fixtures.items():
            with open(os.path.join(folder, name + ".bin"), "wb") as f:
                f.write(data)
    print(f"{len(FRONTEND)} frontend and {len(BACKEND)} backend fixtures")


if __name__ == "__main__":
    main()
