#!/usr/bin/env bash
# The console on a terminal: lkvm puts it in raw mode while the guest
# runs, keys reach the guest unchanged, Ctrl-A x leaves, and the terminal
# settings come back on every exit path (escape, timeout, guest exit).
. "$(dirname "$0")/common.bash"
need_kvm
need_tool python3 python3
python3 - "$LKVM" "$GUESTS" <<'PY'
import os, pty, select, subprocess, sys, termios, time

lkvm, guests = sys.argv[1], sys.argv[2]
passed = failed = 0

def check(name, ok):
    global passed, failed
    print(("PASS " if ok else "FAIL ") + name)
    if ok:
        passed += 1
    else:
        failed += 1

def read_until(fd, want, secs):
    buf = b""
    end = time.time() + secs
    while want not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf

def session(args, send=None, want=b"", timeout=20):
    m, s = pty.openpty()
    before = termios.tcgetattr(s)
    p = subprocess.Popen([lkvm, "run"] + args, stdin=s, stdout=s,
                         stderr=s, close_fds=True)
    out = read_until(m, want, 10) if want else b""
    during = termios.tcgetattr(s)
    if send:
        os.write(m, send)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = -1
    out += read_until(m, b"\0never", 0.3)
    after = termios.tcgetattr(s)
    os.close(m)
    os.close(s)
    return rc, out, before, during, after

rc, out, before, during, after = session(
    ["-k", guests + "/spin.bin"], b"\x01x", b"spin: waiting forever\r\n")
check("guest output reaches the terminal", b"spin: waiting forever" in out)
check("raw mode while running (no echo, no line editing)",
      not (during[3] & (termios.ECHO | termios.ICANON | termios.ISIG)))
check("Ctrl-A x ends the run with status 0", rc == 0)
check("terminal restored after Ctrl-A x", after == before)

rc, out, before, during, after = session(
    ["-k", guests + "/echo.bin"], b"abc\rQuit\r", b"echo: ready")
check("typed keys reach the guest", b"echo: ABC" in out)
check("guest exit status 0", rc == 0)
check("terminal restored after guest exit", after == before)

rc, out, before, during, after = session(
    ["-k", guests + "/spin.bin", "--timeout", "1"], None, b"")
check("timeout status 124 on a terminal", rc == 124)
check("terminal restored after timeout", after == before)

rc, out, before, during, after = session(
    ["-k", guests + "/echo.bin"], b"\x03\x01\x01quit\rquit\r", b"echo: ready")
check("Ctrl-C does not stop lkvm on a terminal", rc == 0)
check("Ctrl-C and one Ctrl-A (sent as Ctrl-A Ctrl-A) reach the guest",
      b"echo: \x03\x01QUIT" in out)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
