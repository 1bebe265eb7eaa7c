"""What the Python halves of the serve tests share (tests/serve_client_test.py,
tests/serve_attack_test.py, tests/serve_page_check.py). The shell half
(tests/cli_lib.sh: serve_start, serve_port, serve_wait) starts the server on
a free port, waits for it and stops it; these helpers keep the verdicts and
talk to it over raw sockets on loopback.

    check(cond, what)   prints "ok: what" or "FAIL: what" (and counts it)
    finish()            prints "N failed" and exits 1 when N > 0, else 0
"""
import socket, sys, threading, time

fails = 0


def check(cond, what):
    global fails
    if cond:
        print(f"ok: {what}")
    else:
        fails += 1
        print(f"FAIL: {what}")


def finish():
    print(f"{fails} failed")
    sys.exit(1 if fails else 0)


def run_threads(target, args_list, stagger_s=0.0, join_timeout=None):
    """Runs target(*args) for each args tuple, each in its own thread started
    stagger_s apart, and waits for them all; returns the wall time."""
    t0 = time.time()
    ths = [threading.Thread(target=target, args=args) for args in args_list]
    for th in ths:
        th.start()
        if stagger_s:
            time.sleep(stagger_s)
    for th in ths:
        th.join(join_timeout)
    return time.time() - t0


def connect(port, src="127.0.0.1", timeout=30):
    """A TCP connection to 127.0.0.1:port from the loopback address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def recv_until(s, done, limit_s=60, bufsize=65536):
    """Reads from s until done(bytes so far) holds, EOF, a reset or limit_s
    seconds; returns the bytes."""
    out, t_end = b"", time.time() + limit_s
    try:
        while not done(out) and time.time() < t_end:
            c = s.recv(bufsize)
            if not c:
                break
            out += c
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def read_all(s, limit_s=60):
    """Reads until EOF (or limit_s, or a reset); returns the bytes."""
    return recv_until(s, lambda _: False, limit_s)
