"""Driving real `strata mount` daemons from Python test scripts.

Used by crash_loop.py and concurrency_check.py. Everything goes through the
`strata` binary: a daemon is a separate process (never FUSE served in the
test's own process), killed with real signals; dead mounts are cleaned with
`strata umount`, `umount -l`, and, if a process is stuck on the dead
connection, /sys/fs/fuse/connections/N/abort.
"""

import io
import os
import re
import signal
import subprocess
import tarfile
import time


class Failure(Exception):
    """A check failed: the test fails with this message."""


class Strata:
    def __init__(self, binary, store):
        self.binary = binary
        self.store = store

    def run(self, *args, check=True, timeout=120, stdout=subprocess.PIPE):
        cmd = [self.binary, *(["--store", self.store] if self.store else []), *args]
        try:
            r = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"'strata {' '.join(args)}' hung for {timeout} s")
        if check and r.returncode != 0:
            raise Failure(f"'strata {' '.join(args)}' exited {r.returncode}: "
                          f"{r.stderr.decode(errors='replace').strip()}")
        return r

    def mount(self, session, mountpoint, timeout=60):
        """Mounts with a new daemon; returns the daemon's pid."""
        os.makedirs(mountpoint, exist_ok=True)
        out = self.run("mount", session, mountpoint, timeout=timeout).stdout.decode()
        m = re.search(r"\(pid (\d+)\)", out)
        if not m:
            raise Failure(f"no daemon pid in {out!r}")
        return int(m.group(1))

    def fsck(self):
        r = self.run("fsck", check=False, timeout=600)
        if r.returncode != 0:
            raise Failure("fsck failed: " + (r.stdout + r.stderr).decode(errors="replace"))
        return r.stdout.decode()

    def tar_members(self, address, scratch):
        """Every entry of ADDRESS (a session or SESSION@SNAP), read through
        `strata export --tar`: {path: bytes for files, None for dirs}."""
        if os.path.exists(scratch):
            os.unlink(scratch)
        self.run("export", "--tar", address, scratch, timeout=300)
        tree = {}
        with tarfile.open(scratch) as tar:
            for m in tar.getmembers():
                path = "/" + m.name.lstrip("./").rstrip("/")
                if path == "/":
                    continue
                if m.isdir():
                    tree[path] = None
                elif m.isfile():
                    tree[path] = tar.extractfile(m).read()
                else:
                    tree[path] = ("other", m.type)
        os.unlink(scratch)
        return tree


def alive(pid):
    """True while some thread of `pid` runs: a killed daemon whose main
    thread is a zombie but another thread waits on its own mount is alive
    (and stuck)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return False
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    return True
        except (FileNotFoundError, ProcessLookupError):
            pass
    return False


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def peak_kib(pid):
    """The process's VmHWM in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def fuse_connections(mountpoint):
    """The FUSE connection numbers (device minors) of mounts at mountpoint."""
    # Resolve the parent only: stat of the mount point waits for its daemon.
    absolute = os.path.abspath(mountpoint)
    target = os.path.join(os.path.realpath(os.path.dirname(absolute)),
                          os.path.basename(absolute))
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            sep = fields.index("-")
            if point == target and fields[sep + 1].startswith("fuse"):
                found.append(int(fields[2].split(":")[1]))
    return found


def is_mounted(mountpoint):
    return bool(fuse_connections(mountpoint))


def abort_connection(mountpoint):
    """Aborts the FUSE connections of mountpoint: every request waiting on
    them fails with ENOTCONN, so processes stuck on a dead daemon return."""
    aborted = []
    for n in fuse_connections(mountpoint):
        try:
            with open(f"/sys/fs/fuse/connections/{n}/abort", "w") as f:
                f.write("1")
            aborted.append(n)
        except OSError:
            pass
    return aborted


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.01)
    return not any(alive(p) for p in pids)


def unmount(strata, mountpoint, pids=(), quiet=True):
    """Unmounts whatever is at mountpoint, whatever state it is in; returns
    a list of what had to be forced (empty if a plain unmount sufficed)."""
    forced = []
    if pids and not wait_gone(pids, 3):
        # Some wait on the dead mount: `strata umount` must free them (it
        # aborts the connection of a killed daemon).
        stuck = ", ".join(f"{p}:{proc_state(p)}" for p in pids if alive(p))
        strata.run("umount", mountpoint, check=False, timeout=60)
        if not wait_gone(pids, 10):
            forced.append(f"abort by hand (stuck after strata umount: {stuck})")
            abort_connection(mountpoint)
            if not wait_gone(pids, 10):
                raise Failure("processes still stuck after aborting the FUSE connection: " +
                              ", ".join(f"{p}:{proc_state(p)}" for p in pids if alive(p)))
    for _ in range(5):
        if not is_mounted(mountpoint):
            return forced
        r = strata.run("umount", mountpoint, check=False, timeout=300)
        if r.returncode == 0 and not is_mounted(mountpoint):
            return forced
        forced.append("umount -l")
        subprocess.run(["umount", "-l", mountpoint], stderr=subprocess.DEVNULL)
        if not is_mounted(mountpoint):
            return forced
        abort_connection(mountpoint)
        time.sleep(0.1)
    raise Failure(f"cannot unmount {mountpoint}")


def exit_on_signals():
    """SIGTERM and SIGHUP (a timeout, a closed terminal) raise SystemExit, so
    the callers' cleanup (unmounting) runs."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def kill9(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
