#!/usr/bin/env python3
"""Clients for bench/detect/anomaly/run.sh that psql cannot play.

  clients.py from-source HOST PORT SOURCE USER DATABASE
      connects from the address SOURCE (e.g. 127.0.0.2), logs in (trust),
      runs SELECT 1 and leaves: a login from a new source address
  clients.py tls-probe HOST PORT CAFILE COUNT
      COUNT times: asks for TLS and verifies the server's certificate
      against CAFILE, which did not sign it, so the handshake fails
"""
import socket
import ssl
import struct
import sys


def read_message(sock):
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            raise SystemExit("the server closed the connection")
        head += chunk
    kind, length = head[:1], struct.unpack("!i", head[1:])[0]
    body = b""
    while len(body) < length - 4:
        chunk = sock.recv(length - 4 - len(body))
        if not chunk:
            raise SystemExit("the server closed the connection")
        body += chunk
    return kind, body


def until_ready(sock):
    while True:
        kind, body = read_message(sock)
        if kind == b"E":
            raise SystemExit("server error: " + body.decode("utf-8", "replace"))
        if kind == b"Z":
            return


def from_source(host, port, source, user, database):
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    params = b"".join(
        k.encode() + b"\0" + v.encode() + b"\0"
        for k, v in (("user", user), ("database", database), ("application_name", "psql"))
    ) + b"\0"
    sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    until_ready(sock)
    query = b"SELECT 1\0"
    sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
    until_ready(sock)
    sock.sendall(b"X" + struct.pack("!i", 4))
    sock.close()


def tls_probe(host, port, cafile, count):
    failed = 0
    for _ in range(int(count)):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(struct.pack("!ii", 8, 80877103))
        if sock.recv(1) != b"S":
            raise SystemExit("the server does not offer TLS")
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        try:
            ctx.wrap_socket(sock, server_hostname="localhost").close()
        except ssl.SSLError:
            failed += 1
        sock.close()
    if failed != int(count):
        raise SystemExit(f"only {failed} of {count} handshakes failed")


if __name__ == "__main__":
    commands = {"from-source": from_source, "tls-probe": tls_probe}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
