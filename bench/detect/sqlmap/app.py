#!/usr/bin/env python3
"""A deliberately injectable web application for bench/detect/sqlmap/run.sh.

DO NOT deploy this anywhere: every endpoint builds its SQL by string
concatenation. It connects through vigil as an application role and sends
every statement as a simple Query (psycopg's ClientCursor, no parameters).

  /item?id=1        numeric context:  SELECT name, price FROM items WHERE id = <id>
  /search?q=apple   string context:   SELECT id, price FROM items WHERE name = '<q>'
  /sort?by=price    ORDER BY context: SELECT id, name, price FROM items ORDER BY <by>
  /_phase?name=X    (control) label the following statements in the SQL log

Rows come back as text lines; a database error comes back as HTTP 500 with
PostgreSQL's message in the body (so error-based techniques work).

Usage: app.py --port PORT --dsn DSN --sql-log FILE
"""
import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg

ENDPOINTS = {
    "/item": ("id", "SELECT name, price FROM items WHERE id = {}"),
    "/search": ("q", "SELECT id, price FROM items WHERE name = '{}'"),
    "/sort": ("by", "SELECT id, name, price FROM items ORDER BY {}"),
}


class App:
    def __init__(self, dsn, sql_log):
        self.dsn = dsn
        self.idle = []  # a small connection pool, as web applications have
        self.phase = "startup"
        self.lock = threading.Lock()
        self.log = open(sql_log, "a", buffering=1, encoding="utf-8")
        self.counts = {}

    def take(self):
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return psycopg.connect(self.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor)

    def give_back(self, conn):
        if conn.closed:
            return
        with self.lock:
            self.idle.append(conn)

    def run(self, sql):
        with self.lock:
            phase = self.phase
            self.counts[phase] = self.counts.get(phase, 0) + 1
            self.log.write("%.6f\t%s\t%s\n" % (time.time(), phase, sql.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")))
        conn = self.take()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)  # no parameters: a simple Query with this exact text
                rows = []
                while True:
                    if cur.description is not None:
                        rows.extend(cur.fetchall())
                    if not cur.nextset():
                        break
                return rows
        finally:
            self.give_back(conn)


def make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def reply(self, code, body):
            data = body.encode("utf-8", "replace")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            qs = parse_qs(url.query, keep_blank_values=True)
            if url.path == "/_phase":
                with app.lock:
                    app.phase = qs.get("name", ["?"])[0]
                return self.reply(200, "phase %s\n" % app.phase)
            if url.path == "/_counts":
                with app.lock:
                    return self.reply(200, "".join("%s\t%d\n" % kv for kv in sorted(app.counts.items())))
            if url.path not in ENDPOINTS:
                return self.reply(404, "not found\n")
            param, template = ENDPOINTS[url.path]
            value = qs.get(param, [""])[0]
            sql = template.format(value)
            try:
                rows = app.run(sql)
            except psycopg.Error as e:
                return self.reply(500, "database error: %s\n" % (str(e).strip(),))
            except Exception as e:  # noqa: BLE001 - the app reports everything
                return self.reply(500, "error: %s\n" % (e,))
            body = "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
            return self.reply(200, "<html><body><pre>\n%s</pre></body></html>\n" % body)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--sql-log", required=True)
    a = ap.parse_args()
    app = App(a.dsn, a.sql_log)
    app.give_back(app.take())  # fail early when the database is unreachable
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(app))
    srv.daemon_threads = True
    print("app listening on 127.0.0.1:%d" % a.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
