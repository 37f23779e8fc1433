"""A bulk TCP transfer for the link lab: the loss-based flow that shares a
modem with the camera (tests/link/test_cc.py). One process per end:

    bulk.py sink PORT          accept, read everything (the upload's far end)
    bulk.py source PORT        accept, write forever (a download's far end)
    bulk.py upload HOST PORT   connect, write forever
    bulk.py download HOST PORT connect, read everything

Each runs until killed; nothing is printed (the lab's bill counts the bytes)."""
import socket
import sys

CHUNK = b"\0" * 65536


def serve(port, write):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4)
    while True:
        c, _ = s.accept()
        pump(c, write)


def pump(c, write):
    try:
        while True:
            if write:
                c.sendall(CHUNK)
            elif not c.recv(65536):
                break
    except OSError:
        pass
    c.close()


def main(argv):
    mode = argv[1]
    if mode in ("sink", "source"):
        serve(int(argv[2]), mode == "source")
    elif mode in ("upload", "download"):
        pump(socket.create_connection((argv[2], int(argv[3])), timeout=30), mode == "upload")
    else:
        raise SystemExit(f"bulk.py: unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv)
