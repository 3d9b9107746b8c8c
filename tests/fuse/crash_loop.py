#!/usr/bin/env python3
"""Crash loop: kill -9 the mount daemon under load, remount, check everything.

Each iteration makes a session, mounts it with a `strata mount` daemon and
runs the workload (this file's `workload` mode, a separate process) on the
mount: small files (some fsync'd), large appends to a few big files, renames,
unlinks, fsyncs of files and directories, and live snapshots through
`strata snapshot`. Every operation is logged before it starts and when it
ends, to a file outside the mount. At a random moment the daemon gets
SIGKILL. The daemon and the workload must then exit by themselves (no
process may stay stuck on the dead connection); the mount is cleaned up
with `strata umount`, and:

  * `strata fsck` is clean (before the remount and after the final unmount);
  * after remounting, every file whose fsync returned success holds its
    fsync'd bytes (at the path it had, or one a later rename gave it);
  * every name change made before the last successful fsync started is
    there (the documented contract: fsync commits every earlier change);
  * no file holds bytes that were never written there (each page is either
    what was written or zero) or is longer than was written;
  * every snapshot the CLI reported created is readable, and one created
    while the daemon lived holds exactly the tree as it was when the command
    started (every write had returned: the workload is sequential); a fork
    of the last one equals it.

The loop runs with fusectl (/sys/fs/fuse/connections) unmounted, as on a
fresh machine, and mounts it again afterwards if it was mounted.

Usage: crash_loop.py --strata BIN --state DIR [--iterations N] [--seed S]
Environment: STRATA_CRASH_ITERATIONS, STRATA_CRASH_SEED override the defaults.
Prints the seed, one line per iteration, and "survived N of M".
"""

import argparse
import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mount_harness import (Failure, Strata, alive, exit_on_signals, kill9, proc_state,  # noqa: E402
                           unmount, wait_gone)

PAGE = 4096
SMALL_MAX = 8192
APPEND_MIN, APPEND_MAX = 16 << 10, 1 << 20
BIG_CAP = 8 << 20
NDIRS = 4


def data(seed, k, n):
    """The bytes written by operation k (deterministic, incompressible)."""
    return random.Random(f"{seed}/{k}").randbytes(n)


# ---------------------------------------------------------------- workload

class Log:
    def __init__(self, path):
        self.f = open(path, "w", buffering=1)

    def write(self, rec):
        rec["t"] = time.monotonic_ns()
        self.f.write(json.dumps(rec) + "\n")


def workload(a):
    rng = random.Random(a.seed)
    log = Log(a.log)
    mnt = a.mnt
    small = {}   # path -> id
    big = {}     # id -> [path, fd, size]
    next_id = 0
    k = 0
    snap_no = 0
    next_snap = time.monotonic() + rng.uniform(0.05, 0.3)
    deadline = time.monotonic() + a.seconds

    def path_of(rel):
        return os.path.join(mnt, rel.lstrip("/"))

    try:
        log.write({"k": 0, "op": "dirs", "n": NDIRS, "seed": a.seed})
        for d in range(NDIRS):
            os.mkdir(path_of(f"/d{d}"))
        log.write({"k": 0, "end": True, "ok": True})
        while time.monotonic() < deadline:
            k += 1
            if time.monotonic() >= next_snap:
                name = f"s{snap_no}"
                snap_no += 1
                log.write({"k": k, "op": "snapshot", "name": name})
                r = subprocess.run([a.strata, "--store", a.store, "snapshot", a.session, name],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   timeout=60)
                log.write({"k": k, "end": True, "ok": r.returncode == 0})
                next_snap = time.monotonic() + rng.uniform(0.05, 0.3)
                continue
            x = rng.random()
            if x < 0.40 or not small:
                path = f"/d{rng.randrange(NDIRS)}/f{k}"
                n = rng.randint(1, SMALL_MAX)
                sync = rng.random() < 0.25
                log.write({"k": k, "op": "create", "id": next_id, "path": path, "n": n,
                           "fsync": sync})
                fd = os.open(path_of(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                try:
                    os.write(fd, data(a.seed, k, n))
                    if sync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                small[path] = next_id
                next_id += 1
            elif x < 0.62:
                live = [i for i, b in big.items() if b[2] < BIG_CAP]
                if len(live) < 2 and len(big) < 6:
                    path = f"/big{next_id}"
                    log.write({"k": k, "op": "mkbig", "id": next_id, "path": path})
                    fd = os.open(path_of(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                    big[next_id] = [path, fd, 0]
                    next_id += 1
                elif live:
                    i = rng.choice(live)
                    n = rng.randint(APPEND_MIN, APPEND_MAX)
                    sync = rng.random() < 0.3
                    log.write({"k": k, "op": "append", "id": i, "n": n, "fsync": sync})
                    buf = data(a.seed, k, n)
                    off = 0
                    while off < n:
                        off += os.write(big[i][1], buf[off:])
                    big[i][2] += n
                    if sync:
                        os.fsync(big[i][1])
                else:
                    continue
            elif x < 0.74:
                src = rng.choice(sorted(small))
                if rng.random() < 0.3 and len(small) > 1:
                    dst = rng.choice(sorted(set(small) - {src}))   # replaces dst
                else:
                    dst = f"/d{rng.randrange(NDIRS)}/r{k}"
                log.write({"k": k, "op": "rename", "src": src, "dst": dst})
                os.rename(path_of(src), path_of(dst))
                small[dst] = small.pop(src)
            elif x < 0.78 and big:
                i = rng.choice(sorted(big))
                dst = f"/d{rng.randrange(NDIRS)}/big{i}r{k}"
                log.write({"k": k, "op": "rename", "src": big[i][0], "dst": dst})
                os.rename(path_of(big[i][0]), path_of(dst))
                big[i][0] = dst
            elif x < 0.83:
                path = rng.choice(sorted(small))
                log.write({"k": k, "op": "unlink", "path": path})
                os.unlink(path_of(path))
                del small[path]
            elif x < 0.93:
                if big and rng.random() < 0.6:
                    i = rng.choice(sorted(big))
                    log.write({"k": k, "op": "fsync", "path": big[i][0]})
                    os.fsync(big[i][1])
                else:
                    path = rng.choice(sorted(small))
                    log.write({"k": k, "op": "fsync", "path": path})
                    fd = os.open(path_of(path), os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            else:
                d = f"/d{rng.randrange(NDIRS)}"
                log.write({"k": k, "op": "fsyncdir", "path": d})
                fd = os.open(path_of(d), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            log.write({"k": k, "end": True, "ok": True})
    except OSError as e:
        # The daemon is gone (ENOTCONN, ECONNABORTED, EIO...): the operation
        # in flight may or may not have happened.
        log.write({"k": k, "end": True, "ok": False, "errno": errno.errorcode.get(e.errno)})
        return 0
    except subprocess.TimeoutExpired:
        log.write({"k": k, "end": True, "ok": False, "errno": "snapshot timeout"})
        return 0
    log.write({"k": k, "op": "finished"})
    return 0


# ---------------------------------------------------------------- model

class Replay:
    """The workload's log replayed: what each file should hold, and what was
    made durable. Operations that started are applied at their start (the
    last one may have failed half-way; checks treat it as optional)."""

    def __init__(self, seed, log_path):
        self.seed = seed
        self.recs = []
        with open(log_path) as f:
            for line in f:
                try:
                    self.recs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a torn last line

    def run(self, upto=None):
        """Replays operations that started before record index `upto`
        (every one if None). Returns the state."""
        st = State()
        ends = {}
        for r in self.recs:
            if r.get("end"):
                ends[r["k"]] = r
        recs = self.recs if upto is None else self.recs[:upto]
        for r in recs:
            op = r.get("op")
            if op is None or op in ("finished",):
                continue
            ok = ends.get(r["k"], {}).get("ok", False)
            st.apply(self.seed, r, ok)
        return st

    def snapshots(self):
        """(record index, name, start t, end t, ok) of every snapshot."""
        out = []
        ends = {r["k"]: r for r in self.recs if r.get("end")}
        for i, r in enumerate(self.recs):
            if r.get("op") == "snapshot":
                e = ends.get(r["k"])
                out.append((i, r["name"], r["t"], e["t"] if e else None, bool(e and e["ok"])))
        return out


class State:
    def __init__(self):
        self.ns = {}          # path -> id
        self.content = {}     # id -> bytearray (everything written, in order)
        self.ever = {}        # path -> set of ids that were ever there
        self.synced = {}      # id -> bytes fsync'd (a prefix length)
        self.cands = {}       # id -> paths it had since its last successful fsync
        self.destroyed = set()  # ids unlinked or replaced (by any started op)
        self.dirs = set()
        self.barrier = None   # ns and dirs after the last op whose fsync succeeded
        self.touched_after_barrier = set()

    def _place(self, path, i):
        old = self.ns.get(path)
        if old is not None and old != i:
            self.destroyed.add(old)
        self.ns[path] = i
        self.ever.setdefault(path, set()).add(i)
        if i in self.cands:
            self.cands[i].add(path)

    def _touch(self, *paths):
        self.touched_after_barrier.update(paths)

    def _sync(self, i):
        self.synced[i] = len(self.content[i])
        self.cands[i] = {p for p, j in self.ns.items() if j == i}

    def _barrier(self):
        self.barrier = (dict(self.ns), set(self.dirs))
        self.touched_after_barrier = set()

    def apply(self, seed, r, ok):
        op, k = r["op"], r["k"]
        if op == "dirs":
            self.dirs.update(f"/d{d}" for d in range(r["n"]))
        elif op == "create":
            self._touch(r["path"])
            self.content[r["id"]] = bytearray(data(seed, k, r["n"]))
            self._place(r["path"], r["id"])
            if ok and r["fsync"]:
                self._sync(r["id"])
                self._barrier()
        elif op == "mkbig":
            self._touch(r["path"])
            self.content[r["id"]] = bytearray()
            self._place(r["path"], r["id"])
        elif op == "append":
            self.content[r["id"]] += data(seed, k, r["n"])
            if ok and r["fsync"]:
                self._sync(r["id"])
                self._barrier()
        elif op == "rename":
            self._touch(r["src"], r["dst"])
            i = self.ns.pop(r["src"])
            self._place(r["dst"], i)
        elif op == "unlink":
            self._touch(r["path"])
            self.destroyed.add(self.ns.pop(r["path"]))
        elif op == "fsync":
            if ok:
                self._sync(self.ns[r["path"]])
                self._barrier()
        elif op == "fsyncdir":
            if ok:
                self._barrier()

    def tree(self):
        """The tree as the workload sees it: {path: bytes, dir: None}."""
        t = {d: None for d in self.dirs}
        for p, i in self.ns.items():
            t[p] = bytes(self.content[i])
        return t


def explainable(got, want):
    """got may be what a crash left of want: no longer, and every page
    either what was written or zeros (a page not written back)."""
    if len(got) > len(want):
        return False
    zero = bytes(PAGE)
    for off in range(0, len(got), PAGE):
        g = got[off:off + PAGE]
        if g != want[off:off + len(g)] and g != zero[:len(g)]:
            return False
    return True


def check_crash_state(st, tree, what):
    """Checks a tree read after the crash (head or a snapshot made without
    the daemon) against the replayed state: durability and no garbage."""
    problems = []
    for i, n in st.synced.items():
        if i in st.destroyed or n == 0:
            continue
        want = st.content[i]
        ok = False
        for p in st.cands[i]:
            got = tree.get(p)
            if isinstance(got, bytes) and len(got) >= n and got[:n] == want[:n] and \
                    explainable(got, want):
                ok = True
                break
        if not ok:
            seen = {p: (len(tree[p]) if isinstance(tree.get(p), bytes) else tree.get(p))
                    for p in st.cands[i] if p in tree}
            problems.append(f"{what}: file {i} lost fsync'd bytes: want {n} of {len(want)} "
                            f"bytes at one of {sorted(st.cands[i])}, found {seen}")
    if st.barrier is not None:
        ns, dirs = st.barrier
        for p in ns:
            if p not in st.touched_after_barrier and p not in tree:
                problems.append(f"{what}: {p} existed before a successful fsync and is gone")
        for p in st.ever:
            if p not in ns and p not in st.touched_after_barrier and p in tree:
                problems.append(f"{what}: {p} was removed before a successful fsync and is back")
        for d in dirs:
            if tree.get(d, b"") is not None:
                problems.append(f"{what}: directory {d} is missing")
    for p, got in tree.items():
        if got is None:
            if p not in st.dirs:
                problems.append(f"{what}: unexpected directory {p}")
            continue
        if not isinstance(got, bytes):
            problems.append(f"{what}: unexpected entry {p}: {got}")
            continue
        if not any(explainable(got, st.content[i]) for i in st.ever.get(p, ())):
            problems.append(f"{what}: {p} ({len(got)} bytes) holds bytes never written there")
    return problems


def check_exact(want, got, what):
    problems = []
    for p in sorted(set(want) | set(got)):
        if p not in got:
            problems.append(f"{what}: {p} missing")
        elif p not in want:
            problems.append(f"{what}: unexpected {p}")
        elif want[p] != got[p]:
            w, g = want[p], got[p]
            if w is None or g is None or not isinstance(g, bytes):
                problems.append(f"{what}: {p} has the wrong type")
            else:
                first = next((j for j in range(min(len(w), len(g))) if w[j] != g[j]),
                             min(len(w), len(g)))
                problems.append(f"{what}: {p} differs: {len(g)} bytes, want {len(w)}; "
                                f"first difference at {first}")
    return problems


def read_tree(root):
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root).lstrip(".")
        rel = rel.rstrip("/") if rel != "/" else ""
        for d in dirnames:
            tree[f"{rel}/{d}"] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                tree[f"{rel}/{f}"] = fh.read()
    return tree


# ---------------------------------------------------------------- harness

def iteration(a, strata, n, seed, state_dir):
    rng = random.Random(f"{seed}/{n}")  # so that each iteration replays alone
    session = f"c{n}"
    mnt = os.path.join(state_dir, "mnt")
    log = os.path.join(state_dir, f"ops-{n}.log")
    scratch = os.path.join(state_dir, "scratch.tar")
    wseed = rng.randrange(1 << 30)
    kill_after = rng.uniform(0.05, a.max_kill_delay)
    t_start = time.monotonic()
    strata.run("init", "--base", "empty", session)
    daemon = strata.mount(session, mnt)
    worker = subprocess.Popen([sys.executable, os.path.abspath(__file__), "workload",
                               "--strata", a.strata, "--store", strata.store, "--session",
                               session, "--mnt", mnt, "--log", log, "--seed", str(wseed),
                               "--seconds", str(a.max_kill_delay + 5)])
    forced = []
    try:
        time.sleep(kill_after)
        kill_t = time.monotonic_ns()
        kill9(daemon)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        # The kernel aborts the connection when the daemon's last /dev/fuse
        # descriptor closes: nothing may stay stuck on it (in D state),
        # without any help from `strata umount` or fusectl.
        if not wait_gone([daemon, worker.pid], 20):
            stuck = ", ".join(f"{p}:{proc_state(p)}" for p in (daemon, worker.pid) if alive(p))
            kill9(worker.pid)
            unmount(strata, mnt, [daemon])
            raise Failure(f"still there 20 s after the daemon was killed: {stuck}")
        forced = unmount(strata, mnt, [daemon, worker.pid])
        worker.wait(timeout=10)
    except BaseException:
        kill9(worker.pid)
        unmount(strata, mnt, [daemon])
        raise
    if worker.returncode != 0:
        raise Failure(f"workload exited {worker.returncode}")

    t_clean = time.monotonic()
    strata.fsck()
    t_fsck = time.monotonic()
    replay = Replay(wseed, log)
    final = replay.run()
    ops = sum(1 for r in replay.recs if "op" in r and r["op"] != "snapshot")

    daemon = strata.mount(session, mnt)
    problems = []
    try:
        problems += check_crash_state(final, read_tree(mnt), "head after remount")
    finally:
        unmount(strata, mnt, [])
    strata.fsck()
    t_head = time.monotonic()

    snaps = [s for s in replay.snapshots() if s[4]]
    strict = 0
    for idx, name, t0, t1, _ in snaps:
        st = replay.run(upto=idx)
        got = strata.tar_members(f"{session}@{name}", scratch)
        if t1 < kill_t:
            strict += 1
            problems += check_exact(st.tree(), got, f"snapshot {name}")
        else:
            problems += check_crash_state(st, got, f"snapshot {name} (after the kill)")
    if snaps:
        idx, name = snaps[-1][0], snaps[-1][1]
        files = sorted(p for p, c in replay.run(upto=idx).tree().items() if c is not None)
        if files:
            p = rng.choice(files)
            r = strata.run("cat", f"{session}@{name}:{p}")
            want = strata.tar_members(f"{session}@{name}", scratch)[p]
            if r.stdout != want:
                problems.append(f"strata cat {session}@{name}:{p} differs from its export")
        listed = strata.run("ls", f"{session}@{name}:/").stdout.decode().split()
        if not all(f"d{d}" in listed for d in range(NDIRS)):
            problems.append(f"strata ls {session}@{name}:/ lists {listed}")
        strata.run("fork", f"{session}@{name}", f"{session}-fork")
        problems += check_exact(strata.tar_members(f"{session}@{name}", scratch),
                                strata.tar_members(f"{session}-fork", scratch),
                                f"fork of {name}")
    if any(f.startswith("abort by hand") for f in forced):
        problems.append("strata umount did not free the processes stuck on the dead mount")
    line = (f"iteration {n}: kill after {kill_after:.2f} s, {ops} ops, {len(snaps)} snapshots "
            f"({strict} before the kill); {t_clean - t_start:.1f} s load+cleanup, "
            f"fsck {t_fsck - t_clean:.1f} s, head {t_head - t_fsck:.1f} s, "
            f"snapshots {time.monotonic() - t_head:.1f} s")
    if forced:
        line += "; cleanup needed " + ", ".join(forced)
    if problems:
        raise Failure(line + "\n  " + "\n  ".join(problems[:20]))
    print(line, flush=True)
    # Keep the store small: the next iterations still see the store gc'd.
    strata.run("rm", session)
    strata.run("rm", f"{session}-fork", check=False)
    if n % 5 == 4:
        strata.run("gc", timeout=300)
    os.unlink(log)


FUSECTL = "/sys/fs/fuse/connections"


def fusectl_mounted():
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == FUSECTL for line in f)


def harness(a):
    """Runs without fusectl (as on a fresh machine), restoring it after."""
    restore = fusectl_mounted()
    if restore:
        subprocess.run(["umount", FUSECTL], check=True)
    try:
        return run_iterations(a)
    finally:
        if restore:
            subprocess.run(["mount", "-t", "fusectl", "fusectl", FUSECTL], check=False)


def run_iterations(a):
    seed = a.seed if a.seed is not None else int(os.environ.get(
        "STRATA_CRASH_SEED", random.SystemRandom().randrange(1 << 31)))
    iterations = int(os.environ.get("STRATA_CRASH_ITERATIONS", a.iterations))
    print(f"crash loop: seed {seed}, {iterations} iterations "
          f"(rerun: STRATA_CRASH_SEED={seed})", flush=True)
    state_dir = os.path.abspath(a.state)
    if os.path.isdir(state_dir):
        unmount(Strata(a.strata, ""), os.path.join(state_dir, "mnt"), [])
        shutil.rmtree(state_dir)
    os.makedirs(state_dir)
    strata = Strata(a.strata, os.path.join(state_dir, "store.db"))
    survived = 0
    start = time.monotonic()
    try:
        for n in range(a.first, a.first + iterations):
            try:
                iteration(a, strata, n, seed, state_dir)
                survived += 1
            except Failure as e:
                print(f"FAILED iteration {n} (seed {seed}): {e}", flush=True)
                if not a.keep_going:
                    break
    finally:
        unmount(strata, os.path.join(state_dir, "mnt"), [])
    print(f"survived {survived} of {iterations} iterations in "
          f"{time.monotonic() - start:.0f} s (seed {seed})", flush=True)
    if survived == iterations and not a.keep:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0 if survived == iterations else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", nargs="?", default="harness", choices=["harness", "workload"])
    p.add_argument("--strata", required=True)
    p.add_argument("--state", help="directory for the store, mount point and logs")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--first", type=int, default=0, help="first iteration (to replay one)")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-kill-delay", type=float, default=1.5)
    p.add_argument("--keep-going", action="store_true", help="run every iteration")
    p.add_argument("--keep", action="store_true", help="keep the state directory")
    # workload mode
    p.add_argument("--store")
    p.add_argument("--session")
    p.add_argument("--mnt")
    p.add_argument("--log")
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    if a.mode == "workload":
        return workload(a)
    if not a.state:
        p.error("--state is required")
    if not os.path.exists("/dev/fuse"):
        print("skipped: no /dev/fuse")
        return 77
    exit_on_signals()
    return harness(a)


if __name__ == "__main__":
    sys.exit(main())
