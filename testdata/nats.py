#!/usr/bin/env python3
"""A JetStream client for the script tests, in NATS's text protocol over a
socket (no nats CLI needed):

  nats.py stream NAME SUBJECT...   make stream NAME of the SUBJECTs (anew)
  nats.py pub SUBJECT < LINES      publish each line as a message, and
                                   wait until the stream has each
  nats.py rm NAME                  delete stream NAME

The server is $NATS_URL's HOST:PORT, 127.0.0.1:4222 by default. Exits 1
with the server's error."""
import json
import os
import socket
import sys


class Conn:
    def __init__(self):
        url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
        host, port = url.split("://")[-1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""
        self.line()  # INFO
        self.send(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n')
        self.send(b"SUB _INBOX.t.* 1\r\n")

    def send(self, b):
        self.sock.sendall(b)

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            sys.exit("nats.py: the server closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def payload(self, n):
        while len(self.buf) < n + 2:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        """The next reply to a request: its payload, or its status line."""
        while True:
            line = self.line()
            if line == "PING":
                self.send(b"PONG\r\n")
            elif line.startswith("MSG "):
                return self.payload(int(line.split()[-1]))
            elif line.startswith("HMSG "):
                f = line.split()
                data = self.payload(int(f[-1]))
                hdr, body = data[: int(f[-2])], data[int(f[-2]):]
                return body or hdr.split(b"\r\n")[0]
            elif line.startswith("-ERR"):
                sys.exit("nats.py: " + line)

    def request(self, subject, data, i=0):
        self.send(b"PUB %s _INBOX.t.%d %d\r\n%s\r\n" % (subject.encode(), i, len(data), data))


def check(reply):
    if not reply.startswith(b"{"):
        sys.exit("nats.py: " + reply.decode(errors="replace"))
    r = json.loads(reply)
    if "error" in r:
        sys.exit("nats.py: " + r["error"].get("description", str(r["error"])))
    return r


def main(args):
    c = Conn()
    if args[:1] == ["stream"] and len(args) > 2:
        # One left by a test that failed before its end goes first.
        c.request("$JS.API.STREAM.DELETE." + args[1], b"")
        c.reply()
        cfg = {"name": args[1], "subjects": args[2:], "storage": "file"}
        c.request("$JS.API.STREAM.CREATE." + args[1], json.dumps(cfg).encode())
        check(c.reply())
    elif args[:1] == ["rm"] and len(args) == 2:
        c.request("$JS.API.STREAM.DELETE." + args[1], b"")
        check(c.reply())
    elif args[:1] == ["pub"] and len(args) == 2:
        n = 0
        for i, line in enumerate(sys.stdin.buffer):
            c.request(args[1], line.rstrip(b"\n"), i)
            n += 1
        for _ in range(n):
            check(c.reply())  # the stream's ack of each message
    else:
        sys.exit(__doc__)


main(sys.argv[1:])
