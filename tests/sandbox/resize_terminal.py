"""Runs a command on a pseudo-terminal of 24x80, resizes it to 40x120 once
the command prints "ready", and prints everything the command wrote.
Exits with the command's exit status. Used by run_test: `strata run -t`
must pass window size changes on to the sandbox's terminal."""
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])


def set_size(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


set_size(24, 80)
out = b""
resized = False
deadline = time.time() + 30
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if not resized and b"ready" in out:
        set_size(40, 120)
        os.kill(pid, signal.SIGWINCH)
        resized = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
