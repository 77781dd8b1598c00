#!/usr/bin/env python3
"""Records the bytes of real PostgreSQL sessions, for the fixtures in this
folder. Not run by the tests: they read the committed captures.

    python3 capture.py NAME [LISTEN_PORT] [UPSTREAM_PORT]

listens on 127.0.0.1:LISTEN_PORT (55432), relays each connection to
127.0.0.1:UPSTREAM_PORT (5432) and writes what the client sent to
NAME.<n>.fe.bin and what the server sent to NAME.<n>.be.bin, n counting
connections from 0. It stops after 30 s without a new connection. See
README.md for the sessions recorded.
"""

import select
import socket
import sys


def relay(client, upstream_port, name, n):
    server = socket.create_connection(("127.0.0.1", upstream_port))
    streams = {client: bytearray(), server: bytearray()}
    peer = {client: server, server: client}
    open_ends = [client, server]
    while open_ends:
        ready, _, _ = select.select(open_ends, [], [], 10)
        if not ready:
            break
        for s in ready:
            data = s.recv(65536)
            if not data:
                open_ends = []
                break
            streams[s] += data
            peer[s].sendall(data)
    client.close()
    server.close()
    with open(f"{name}.{n}.fe.bin", "wb") as f:
        f.write(streams[client])
    with open(f"{name}.{n}.be.bin", "wb") as f:
        f.write(streams[server])
    print(f"{name}.{n}: {len(streams[client])} bytes from the client, "
          f"{len(streams[server])} from the server", file=sys.stderr)


def main():
    name = sys.argv[1]
    listen_port = int(sys.argv[2]) if len(sys.argv) > 2 else 55432
    upstream_port = int(sys.argv[3]) if len(sys.argv) > 3 else 5432
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen()
    lsock.settimeout(30)
    n = 0
    while True:
        try:
            client, _ = lsock.accept()
        except socket.timeout:
            break
        relay(client, upstream_port, name, n)
        n += 1


if __name__ == "__main__":
    main()
