"""Refuses network connections beyond this machine, in the test process and (through
PYTHONPATH, set by conftest.py) in every Python subprocess the tests start.

A refused attempt raises OSError, as no network would, and is appended to the file named
by $TIMEFLIES_TEST_NETLOG when set, so a test can assert that nothing was even tried.
"""
import os
import socket

LOCAL = {"127.0.0.1", "::1", "localhost", "", None}


def _local(host) -> bool:
    return host in LOCAL or (isinstance(host, str) and host.startswith("127."))


def _refuse(what: str):
    log = os.environ.get("TIMEFLIES_TEST_NETLOG")
    if log:
        with open(log, "a") as f:
            f.write(what + "\n")
    raise OSError(f"network access refused by the tests: {what}")


def install() -> None:
    if getattr(socket, "_timeflies_guard", False):
        return
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def checked(address, family):
        if family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            _refuse(f"connect {address[0]}:{address[1]}")

    def guarded_connect(self, address):
        checked(address, self.family)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        checked(address, self.family)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _local(host.decode() if isinstance(host, bytes) else host):
            _refuse(f"resolve {host}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
    socket._timeflies_guard = True


if os.environ.get("TIMEFLIES_TEST_NETGUARD"):
    install()
