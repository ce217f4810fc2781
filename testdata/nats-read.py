#!/usr/bin/env python3
"""nats-read.py URL STREAM: print the messages of a JetStream stream, one a
line: its sequence, its Nats-Msg-Id, dstream-batch-id and dstream-batch-time
headers, and its body. For the script tests (testdata/ssink-nats.ct): there
is no NATS command-line client on the machine, and the protocol is text, so
a few requests over a socket do ($JS.API.STREAM.INFO and MSG.GET)."""

import base64
import json
import socket
import sys
from urllib.parse import urlparse


class Conn:
    def __init__(self, url):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port or 4222), timeout=10)
        self.buf = b""
        self.line()  # INFO
        opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True}
        if u.username:
            if u.password is None:
                opts["auth_token"] = u.username
            else:
                opts["user"], opts["pass"] = u.username, u.password
        self.send(b"CONNECT " + json.dumps(opts).encode() + b"\r\nSUB _INBOX.read 1\r\n")

    def send(self, b):
        self.sock.sendall(b)

    def fill(self):
        b = self.sock.recv(65536)
        if not b:
            sys.exit("nats-read: the server closed the connection")
        self.buf += b

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode()

    def take(self, n):
        while len(self.buf) < n + 2:
            self.fill()
        b, self.buf = self.buf[:n], self.buf[n + 2:]
        return b

    def request(self, subject, body):
        self.send(b"PUB %s _INBOX.read %d\r\n%s\r\n" % (subject.encode(), len(body), body))
        while True:
            l = self.line()
            if l == "PING":
                self.send(b"PONG\r\n")
            elif l.startswith("-ERR"):
                sys.exit("nats-read: " + l)
            elif l.startswith("MSG "):
                return json.loads(self.take(int(l.split()[-1])))
            elif l.startswith("HMSG "):
                hdr = int(l.split()[-2])
                b = self.take(int(l.split()[-1]))
                sys.exit("nats-read: %s: %s" % (subject, b[:hdr].decode().strip()))


def headers(raw):
    h = {}
    for l in raw.decode().split("\r\n")[1:]:
        if ": " in l:
            k, v = l.split(": ", 1)
            h[k] = v
    return h


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: nats-read.py URL STREAM")
    c = Conn(sys.argv[1])
    stream = sys.argv[2]
    info = c.request("$JS.API.STREAM.INFO." + stream, b"")
    if "error" in info:
        sys.exit("nats-read: stream %s: %s" % (stream, info["error"]["description"]))
    state = info["state"]
    if state["messages"] == 0:
        return
    for seq in range(state["first_seq"], state["last_seq"] + 1):
        r = c.request("$JS.API.STREAM.MSG.GET." + stream, json.dumps({"seq": seq}).encode())
        if "error" in r:
            continue  # deleted
        m = r["message"]
        h = headers(base64.b64decode(m.get("hdrs", "")))
        print(m["seq"], h.get("Nats-Msg-Id"), "batch=%s" % h.get("dstream-batch-id"),
              "time=%s" % h.get("dstream-batch-time"), base64.b64decode(m.get("data", "")).decode())


main()
