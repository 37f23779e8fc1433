"""Hostile peers of the plugin's control port, written from the specs rather
than with libzmq (which refuses to send what an attacker would):

- CurvePeer: a CurveZMQ client (RFC 26 over ZMTP 3.0, RFC 23) over a plain TCP
  socket, with libsodium through ctypes for the boxes. It holds a device's
  real CURVE key pair, so it gets past authentication, and then presents any
  ZMTP `Identity` (libzmq caps its own at 255 bytes but accepts any length
  from a peer) and sends any message.
- announce_huge_frame: a peer that sends a ZMTP greeting and then a frame
  header declaring a frame of `size` bytes, before any handshake.

Only for tests: no retries, every failure raises."""
import ctypes
import ctypes.util
import os
import socket
import struct

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_INDEX = {c: i for i, c in enumerate(_Z85)}

_sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if _sodium.sodium_init() < 0:
    raise OSError("libsodium would not initialise")
BOX_MAC = 16  # crypto_box_MACBYTES: a box is MAC || ciphertext


def z85_decode(text):
    """Z85 (ZeroMQ RFC 32) text -> bytes; len(text) must be a multiple of 5."""
    assert len(text) % 5 == 0, text
    out = bytearray()
    for i in range(0, len(text), 5):
        v = 0
        for c in text[i:i + 5]:
            v = v * 85 + _Z85_INDEX[c]
        out += struct.pack("!I", v)
    return bytes(out)


def _box(plain, nonce, their_public, my_secret):
    out = ctypes.create_string_buffer(len(plain) + BOX_MAC)
    rc = _sodium.crypto_box_easy(out, plain, ctypes.c_ulonglong(len(plain)), nonce, their_public,
                                 my_secret)
    assert rc == 0, "crypto_box_easy failed"
    return out.raw


def _unbox(boxed, nonce, their_public, my_secret):
    out = ctypes.create_string_buffer(max(len(boxed) - BOX_MAC, 1))
    rc = _sodium.crypto_box_open_easy(out, boxed, ctypes.c_ulonglong(len(boxed)), nonce,
                                      their_public, my_secret)
    if rc != 0:
        raise ConnectionError("a box from the server did not open")
    return out.raw[:len(boxed) - BOX_MAC]


def _keypair():
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    _sodium.crypto_box_keypair(pk, sk)
    return pk.raw, sk.raw


def greeting(mechanism=b"CURVE"):
    """The 64-byte ZMTP 3.0 greeting of a client."""
    return (b"\xff" + b"\0" * 8 + b"\x7f" + bytes([3, 0]) + mechanism.ljust(20, b"\0") + b"\0"
            + b"\0" * 31)


def frame(body, command=False, more=False):
    """One ZMTP 3.0 frame: flags (MORE 1, LONG 2, COMMAND 4), size, body."""
    flags = (4 if command else 0) | (1 if more else 0)
    if len(body) <= 255:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 2]) + struct.pack("!Q", len(body)) + body


def _metadata(props):
    out = b""
    for name, value in props:
        out += bytes([len(name)]) + name + struct.pack("!I", len(value)) + value
    return out


class CurvePeer:
    """A DEALER speaking CurveZMQ by hand. keys are Z85 texts."""

    def __init__(self, host, port, server_public, client_public, client_secret, timeout=5):
        self.S = z85_decode(server_public)
        self.C = z85_decode(client_public)
        self.c = z85_decode(client_secret)
        self.Cp, self.cp = _keypair()  # the short-term pair of this connection
        self.Sp = None
        self.nonce = 0
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"the server closed the connection ({len(buf)}/{n} bytes)")
            buf += chunk
        return buf

    def recv_frame(self):
        """(flags, body) of the next frame."""
        flags = self._recv_exact(1)[0]
        size = struct.unpack("!Q", self._recv_exact(8))[0] if flags & 2 else self._recv_exact(1)[0]
        return flags, self._recv_exact(size)

    def _short_nonce(self):
        self.nonce += 1
        return struct.pack("!Q", self.nonce)

    def handshake(self, identity=b""):
        """Greeting, HELLO, WELCOME, INITIATE (with Identity), READY. Raises
        ConnectionError if the server refuses (an ERROR command, or closing)."""
        self.sock.sendall(greeting())
        theirs = self._recv_exact(64)
        if theirs[0] != 0xff or theirs[9] != 0x7f or theirs[12:17] != b"CURVE":
            raise ConnectionError(f"not a CURVE ZMTP 3 server: {theirs[:20]!r}")
        # HELLO: version 1.0, 72 bytes of padding (anti-amplification), C', nonce, Box[64 zeros]
        n = self._short_nonce()
        hello_box = _box(b"\0" * 64, b"CurveZMQHELLO---" + n, self.S, self.cp)
        self.sock.sendall(frame(b"\x05HELLO" + b"\x01\x00" + b"\0" * 72 + self.Cp + n + hello_box,
                                command=True))
        _, body = self.recv_frame()
        if not body.startswith(b"\x07WELCOME") or len(body) != 168:
            raise ConnectionError(f"no WELCOME: {body[:24]!r}")
        plain = _unbox(body[24:], b"WELCOME-" + body[8:24], self.S, self.cp)
        self.Sp, cookie = plain[:32], plain[32:128]
        # INITIATE: cookie, nonce, Box[C, vouch nonce, vouch, metadata](C'->S')
        vouch_nonce = os.urandom(16)
        vouch = _box(self.Cp + self.S, b"VOUCH---" + vouch_nonce, self.Sp, self.c)
        meta = _metadata([(b"Socket-Type", b"DEALER"), (b"Identity", identity)])
        n = self._short_nonce()
        init_box = _box(self.C + vouch_nonce + vouch + meta, b"CurveZMQINITIATE" + n, self.Sp,
                        self.cp)
        self.sock.sendall(frame(b"\x08INITIATE" + cookie + n + init_box, command=True))
        _, body = self.recv_frame()
        if body.startswith(b"\x05ERROR"):
            raise ConnectionError(f"refused: {body[7:7 + body[6]].decode(errors='replace')}")
        if not body.startswith(b"\x05READY"):
            raise ConnectionError(f"no READY: {body[:16]!r}")
        _unbox(body[14:], b"CurveZMQREADY---" + body[6:14], self.Sp, self.cp)

    def send(self, data, more=False):
        """One message part, boxed as a MESSAGE (flags byte: MORE)."""
        n = self._short_nonce()
        boxed = _box(bytes([1 if more else 0]) + data, b"CurveZMQMESSAGEC" + n, self.Sp, self.cp)
        self.sock.sendall(frame(b"\x07MESSAGE" + n + boxed))

    def recv(self, timeout=2.0):
        """The next message part from the server (skipping its heartbeats), or None."""
        self.sock.settimeout(timeout)
        try:
            while True:
                _, body = self.recv_frame()
                if not body.startswith(b"\x07MESSAGE"):
                    continue
                plain = _unbox(body[16:], b"CurveZMQMESSAGES" + body[8:16], self.Sp, self.cp)
                if plain[0] & 2:  # a command (PING) inside the box: not a message
                    continue
                return plain[1:]
        except socket.timeout:
            return None


def announce_huge_frame(host, port, size=1 << 30, mechanism=b"CURVE", hold=None):
    """Greets, then declares a `size`-byte command frame and sends a few bytes
    of it. Returns the socket (left open: the caller holds or closes it)."""
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(greeting(mechanism))
    s.sendall(bytes([0x06]) + struct.pack("!Q", size) + b"\x05HELLO" + b"\0" * 64)
    return s


def closed_by_peer(sock, timeout=2.0):
    """Whether the server closed (or reset) the connection within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except ConnectionError:
        return True
