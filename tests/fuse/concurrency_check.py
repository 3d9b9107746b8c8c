#!/usr/bin/env python3
"""Concurrent writers, live snapshots and forks on one mount, checked exactly.

A `strata mount` daemon serves one session. WRITERS writer processes (this
file's `writer` mode) each own a directory /wN and make OPS changes, each one
system call that changes one file or name: create, append (pwrite at the
end), overwrite (pwrite inside), truncate, rename (to a new name or over
another file of the writer), unlink; some fsyncs between. Each writer logs
every change with the monotonic time before it started and after it
returned, to a file outside the mount. Meanwhile this process runs
`strata snapshot` every SNAP_MS (100) ms and `strata fork SESSION@SNAP` of
the latest snapshot every FORK_MS (1000) ms, timing each command.

Afterwards, for every snapshot and every path any writer used: the path's
content in the snapshot (read with `strata export --tar`), or its absence,
must equal its state after some change i of its writer, where i is at least
the last change that returned before the snapshot command started and at
most the last change that started before it returned. Every fork must equal
its snapshot; `strata fsck` must be clean.

Prints: operations, operations/s, snapshots and forks made and checked, the
daemon's peak memory (VmHWM) and RSS samples, and every failure.

Usage: concurrency_check.py --strata BIN --state DIR [--writers 8]
       [--ops 1500] [--pace-ms 2] [--seed S]
"""

import argparse
import bisect
import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mount_harness import Failure, Strata, alive, exit_on_signals, peak_kib, unmount  # noqa: E402

MAX_FILES = 6
MAX_SIZE = 128 << 10


def data(seed, w, k, n):
    return random.Random(f"{seed}/{w}/{k}").randbytes(n)


# ---------------------------------------------------------------- writer

def writer(a):
    rng = random.Random(f"{a.seed}/{a.id}/ops")
    root = os.path.join(a.mnt, f"w{a.id}")
    files = {}   # name -> [fd, size]
    log = []
    next_name = 0
    for k in range(1, a.ops + 1):
        if a.pace_ms:
            time.sleep(rng.uniform(0, 2 * a.pace_ms) / 1000)
        names = sorted(files)
        x = rng.random()
        if not files or (x < 0.12 and len(files) < MAX_FILES):
            name = f"f{next_name}"
            next_name += 1
            t0 = time.monotonic_ns()
            fd = os.open(os.path.join(root, name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            t1 = time.monotonic_ns()
            files[name] = [fd, 0]
            rec = (k, t0, t1, "create", name)
        elif x < 0.55:
            name = rng.choice(names)
            fd, size = files[name]
            if size > MAX_SIZE:
                n = rng.randint(0, size // 4)
                t0 = time.monotonic_ns()
                os.ftruncate(fd, n)
                t1 = time.monotonic_ns()
                files[name][1] = n
                rec = (k, t0, t1, "truncate", name, n)
            else:
                n = rng.randint(1, 16 << 10)
                buf = data(a.seed, a.id, k, n)
                t0 = time.monotonic_ns()
                wrote = os.pwrite(fd, buf, size)
                t1 = time.monotonic_ns()
                if wrote != n:
                    raise OSError(f"short write {wrote} of {n}")
                files[name][1] += n
                rec = (k, t0, t1, "write", name, size, n)
        elif x < 0.75:
            name = rng.choice(names)
            fd, size = files[name]
            n = rng.randint(1, 8 << 10)
            off = rng.randint(0, size)
            buf = data(a.seed, a.id, k, n)
            t0 = time.monotonic_ns()
            os.pwrite(fd, buf, off)
            t1 = time.monotonic_ns()
            files[name][1] = max(size, off + n)
            rec = (k, t0, t1, "write", name, off, n)
        elif x < 0.85:
            src = rng.choice(names)
            if rng.random() < 0.3 and len(names) > 1:
                dst = rng.choice([n for n in names if n != src])
            else:
                dst = f"f{next_name}"
                next_name += 1
            t0 = time.monotonic_ns()
            os.rename(os.path.join(root, src), os.path.join(root, dst))
            t1 = time.monotonic_ns()
            if dst in files:
                os.close(files[dst][0])
            files[dst] = files.pop(src)
            rec = (k, t0, t1, "rename", src, dst)
        elif x < 0.9:
            name = rng.choice(names)
            t0 = time.monotonic_ns()
            os.unlink(os.path.join(root, name))
            t1 = time.monotonic_ns()
            os.close(files.pop(name)[0])
            rec = (k, t0, t1, "unlink", name)
        else:
            # Not a change: an fsync (the daemon's durable commit) between them.
            os.fsync(files[rng.choice(names)][0])
            continue
        log.append(rec)
    for fd, _ in files.values():
        os.close(fd)
    with open(a.log, "w") as f:
        for rec in log:
            f.write(" ".join(str(x) for x in rec) + "\n")
    return 0


# ---------------------------------------------------------------- checking

def read_log(path):
    ops = []
    with open(path) as f:
        for line in f:
            p = line.split()
            rec = [int(p[0]), int(p[1]), int(p[2]), p[3]] + \
                [int(x) if x.isdigit() else x for x in p[4:]]
            ops.append(rec)
    return ops


def replay(seed, w, ops):
    """Yields (i, names, contents) for the writer's directory before its
    first change (i = 0) and after each change i: {name: file} and
    {file: bytearray}, a file numbered by the change that created it. The
    dicts are reused: copy what must outlive the step."""
    names, content = {}, {}
    yield 0, names, content
    for idx, rec in enumerate(ops, start=1):
        k, op = rec[0], rec[3]
        if op == "create":
            names[rec[4]] = idx
            content[idx] = bytearray()
        elif op == "truncate":
            del content[names[rec[4]]][rec[5]:]
        elif op == "write":
            name, off, n = rec[4], rec[5], rec[6]
            buf = content[names[name]]
            if len(buf) < off:
                buf.extend(bytes(off - len(buf)))
            buf[off:off + n] = data(seed, w, k, n)
        elif op == "rename":
            names[rec[5]] = names.pop(rec[4])
        elif op == "unlink":
            content.pop(names.pop(rec[4]))
        yield idx, names, content


def replay_hashes(seed, w, ops, needed):
    """{i: (names, {file: "sha1:size"})} for each i in needed."""
    out = {}
    for idx, names, content in replay(seed, w, ops):
        if idx in needed:
            live = set(names.values())
            out[idx] = (dict(names), {f: f"{hashlib.sha1(c).hexdigest()}:{len(c)}"
                                      for f, c in content.items() if f in live})
    return out


def torn_explains(seed, w, ops, lo, hi, path, got):
    """Whether `got` (bytes at path, None if absent) is what the snapshot
    would hold if it saw a name or size change made during it without some
    writes made before that change (still in the kernel's page cache): the
    bytes some file that had this name in the window held at one point of
    the window, cut or zero-extended to a size it had at another, or the
    name absent while it existed at some point of the window but was
    created, renamed or unlinked within it."""
    files, contents, sizes, absent = set(), [], set(), False
    for idx, names, content in replay(seed, w, ops):
        if lo <= idx <= hi:
            if path in names:
                files.add(names[path])
            else:
                absent = True
    for idx, names, content in replay(seed, w, ops):
        if idx > hi:
            break
        if idx >= lo:
            for f in files:
                if f in content:
                    contents.append(bytes(content[f]))
                    sizes.add(len(content[f]))
    if got is None:
        return absent
    n = len(got)
    if n in sizes and any(c[:n] + bytes(max(0, n - len(c))) == got for c in contents):
        return True
    return mid_write_explains(contents, got)


def mid_write_explains(contents, got, page=4096):
    """Whether `got` is a write caught half-way: the snapshot's drain flushed
    some of the pages a write(2) still in progress had copied into the
    kernel's page cache. Then each page of `got` is that page before or after
    the write (two consecutive states of the file), and its size lies
    between theirs."""
    n = len(got)
    for before, after in zip(contents, contents[1:]):
        if not min(len(before), len(after)) <= n <= max(len(before), len(after)):
            continue
        b = before[:n] + bytes(max(0, n - len(before)))
        a = after[:n] + bytes(max(0, n - len(after)))
        if all(got[i:i + page] in (b[i:i + page], a[i:i + page]) for i in range(0, n, page)):
            return True
    return False


def window(ops, t_start, t_end):
    """(lo, hi): lo = changes that returned before t_start (a prefix, since a
    writer is sequential), hi = changes that started before t_end."""
    lo = bisect.bisect_left([r[2] for r in ops], t_start)
    hi = bisect.bisect_left([r[1] for r in ops], t_end)
    return lo, hi


def check(a, strata, seed, logs, snaps, forks, scratch):
    problems = []
    ops = [read_log(p) for p in logs]
    windows = {}  # (snap, w) -> (lo, hi)
    needed = [set() for _ in ops]
    for name, t0, t1, _ in snaps:
        for w, o in enumerate(ops):
            lo, hi = window(o, t0, t1)
            windows[(name, w)] = (lo, hi)
            needed[w].update(range(lo, hi + 1))
    states = [replay_hashes(seed, w, o, needed[w]) for w, o in enumerate(ops)]
    paths = [set() for _ in ops]
    for w, o in enumerate(ops):
        for rec in o:
            paths[w].update(x for x in rec[4:] if isinstance(x, str))
    consistent = torn = 0
    trees = {}
    for name, t0, t1, addr in snaps:
        tree = strata.tar_members(addr, scratch)
        if name in forks.values():
            trees[name] = tree
        all_consistent = True
        for w in range(len(ops)):
            prefix = f"/w{w}/"
            got = {p[len(prefix):]: f"{hashlib.sha1(c).hexdigest()}:{len(c)}"
                   for p, c in tree.items() if p.startswith(prefix) and isinstance(c, bytes)}
            lo, hi = windows[(name, w)]
            cands = [states[w][i] for i in range(lo, hi + 1)]
            for path in sorted(paths[w] | set(got)):
                # Strict: the path as it was after one change in the window.
                per_path = [c[1][c[0][path]] if path in c[0] else None for c in cands]
                if got.get(path) in per_path:
                    continue
                where = (f"snapshot {name}: /w{w}/{path} is "
                         f"{'absent' if path not in got else got[path][:8] + got[path][40:]}")
                raw = tree.get(prefix + path) if path in got else None
                if torn_explains(seed, w, ops[w], lo, hi, path, raw):
                    torn += 1
                    if a.strict:
                        problems.append(f"{where}: no single change {lo}..{hi} of writer {w} "
                                        f"left it so (a rename or truncate seen without an "
                                        f"earlier write to the file)")
                else:
                    problems.append(
                        f"{where}, not its state after any change {lo}..{hi} of writer {w} "
                        f"(sha1:size there: {sorted(set(str(x)[:8] + str(x)[40:] for x in per_path))})")
                    if raw is not None:
                        with open(f"{scratch}.{name}.w{w}.{path}", "wb") as f:
                            f.write(raw)
            if not any({n: c[1][f] for n, f in c[0].items()} == got for c in cands):
                all_consistent = False
                if a.strict:
                    # Across files: a writer's changes are ordered, so the
                    # snapshot must hold all of its files as they were after
                    # one single change of the window (a later file's write
                    # never without an earlier file's).
                    problems.append(f"snapshot {name}: the files of writer {w} are not all as "
                                    f"they were after any one change {lo}..{hi} (a cut across "
                                    f"files that no instant had)")
        extra = [p for p in tree if not any(p == f"/w{w}" or p.startswith(f"/w{w}/")
                                            for w in range(len(ops)))]
        if extra:
            problems.append(f"snapshot {name}: unexpected entries {extra[:5]}")
        consistent += all_consistent
    for fork, snap in forks.items():
        got = strata.tar_members(fork, scratch)
        if got != trees[snap]:
            diff = sorted(p for p in set(got) | set(trees[snap]) if got.get(p) != trees[snap].get(p))
            problems.append(f"fork {fork} differs from {a.session}@{snap}: {diff[:5]}")
    return problems, consistent, torn, sum(len(o) for o in ops)


# ---------------------------------------------------------------- harness

def harness(a):
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"concurrency: seed {seed}, {a.writers} writers x {a.ops} changes, snapshot every "
          f"{a.snap_ms} ms, fork every {a.fork_ms} ms", flush=True)
    state = os.path.abspath(a.state)
    mnt = os.path.join(state, "mnt")
    if os.path.isdir(state):
        unmount(Strata(a.strata, ""), mnt, [])
        shutil.rmtree(state)
    os.makedirs(state)
    strata = Strata(a.strata, os.path.join(state, "store.db"))
    strata.run("init", "--base", "empty", a.session)
    daemon = strata.mount(a.session, mnt)
    writers = []
    snaps, forks, failures, forks_ms = [], {}, [], []
    rss = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                with open(f"/proc/{daemon}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss.append(int(line.split()[1]))
            except OSError:
                pass
            stop.wait(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for w in range(a.writers):
            os.mkdir(os.path.join(mnt, f"w{w}"))
        logs = [os.path.join(state, f"writer-{w}.log") for w in range(a.writers)]
        start = time.monotonic()
        for w in range(a.writers):
            writers.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "writer", "--strata", a.strata,
                 "--mnt", mnt, "--id", str(w), "--ops", str(a.ops), "--seed", str(seed),
                 "--pace-ms", str(a.pace_ms), "--log", logs[w]]))
        next_snap = next_fork = time.monotonic()
        n = 0
        while any(p.poll() is None for p in writers):
            now = time.monotonic()
            if now >= next_fork and a.fork_head:
                # A fork of the live session is a cut too: checked like a
                # snapshot, against the window of its command.
                name = f"h{len(forks_ms)}"
                t0 = time.monotonic_ns()
                r = strata.run("fork", a.session, name, check=False)
                t1 = time.monotonic_ns()
                forks_ms.append((t1 - t0) / 1e6)
                if r.returncode != 0:
                    failures.append(f"fork {name} failed: {r.stderr.decode().strip()}")
                else:
                    snaps.append((name, t0, t1, name))
                next_fork = max(now + a.fork_ms / 1000, time.monotonic())
            elif now >= next_fork and snaps:
                name = f"f{len(forks)}"
                f0 = time.monotonic()
                strata.run("fork", f"{a.session}@{snaps[-1][0]}", name)
                forks_ms.append((time.monotonic() - f0) * 1000)
                forks[name] = snaps[-1][0]
                next_fork = now + a.fork_ms / 1000
            if now >= next_snap:
                name = f"s{n}"
                n += 1
                t0 = time.monotonic_ns()
                r = strata.run("snapshot", a.session, name, check=False)
                t1 = time.monotonic_ns()
                if r.returncode != 0:
                    failures.append(f"snapshot {name} failed: {r.stderr.decode().strip()}")
                else:
                    snaps.append((name, t0, t1, f"{a.session}@{name}"))
                next_snap = max(now + a.snap_ms / 1000, time.monotonic())
            time.sleep(max(0, min(next_snap, next_fork) - time.monotonic()))
        elapsed = time.monotonic() - start
        for p in writers:
            if p.wait() != 0:
                failures.append(f"a writer exited {p.returncode}")
        peak = peak_kib(daemon)
    finally:
        stop.set()
        sampler.join()
        for p in writers:
            if p.poll() is None:
                p.kill()
        unmount(strata, mnt, [p.pid for p in writers])
    if alive(daemon):
        failures.append("the daemon did not exit after the unmount")
    strata.fsck()
    if failures:
        raise Failure("; ".join(failures))
    t_check = time.monotonic()
    forks_ms.sort()
    problems, consistent, torn, nops = check(a, strata, seed, logs, snaps, forks,
                                       os.path.join(state, "scratch.tar"))
    print(f"{nops} changes by {a.writers} writers in {elapsed:.1f} s: {nops / elapsed:.0f} "
          f"changes/s (pace {a.pace_ms} ms); {len(snaps)} cuts ({len(forks_ms)} forks), all "
          f"checked in {time.monotonic() - t_check:.1f} s; {consistent} of {len(snaps)} "
          f"snapshots also one cut per writer; {torn} paths torn (a rename or truncate seen "
          f"without an earlier write to the file{': failures' if a.strict else ': allowed, see --strict'})",
          flush=True)
    def spread(ms):
        ms = sorted(ms)
        if not ms:
            return "none"
        at = lambda q: ms[min(len(ms) - 1, int(len(ms) * q))]  # noqa: E731
        return (f"p50 {at(0.5):.0f} ms, p90 {at(0.9):.0f} ms, p99 {at(0.99):.0f} ms, "
                f"max {ms[-1]:.0f} ms ({len(ms)} runs)")
    snap_ms = [(t1 - t0) / 1e6 for name, t0, t1, addr in snaps if addr != name]
    print(f"strata snapshot: {spread(snap_ms)}", flush=True)
    print(f"strata fork {'SESSION' if a.fork_head else 'SESSION@SNAP'}: {spread(forks_ms)}",
          flush=True)
    print(f"daemon peak memory (VmHWM) {peak / 1024:.1f} MiB; RSS samples: first "
          f"{rss[0] / 1024 if rss else 0:.1f} MiB, max {max(rss, default=0) / 1024:.1f} MiB, "
          f"last {rss[-1] / 1024 if rss else 0:.1f} MiB", flush=True)
    if problems:
        print(f"FAILED (seed {seed}): {len(problems)} problems", flush=True)
        for p in problems[:30]:
            print("  " + p, flush=True)
        return 1
    print("OK", flush=True)
    if not a.keep:
        shutil.rmtree(state, ignore_errors=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", nargs="?", default="harness", choices=["harness", "writer"])
    p.add_argument("--strata", required=True)
    p.add_argument("--state")
    p.add_argument("--session", default="conc")
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--ops", type=int, default=1500, help="changes per writer")
    p.add_argument("--pace-ms", type=float, default=2.0,
                   help="mean pause between a writer's changes (0: none)")
    p.add_argument("--snap-ms", type=float, default=100)
    p.add_argument("--fork-ms", type=float, default=1000)
    p.add_argument("--seed", type=int)
    p.add_argument("--fork-head", action="store_true",
                   help="fork the live session (each fork checked like a snapshot) instead of "
                        "the latest snapshot")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--strict", action="store_true",
                   default=os.environ.get("STRATA_CONC_STRICT") == "1",
                   help="fail when a path holds no single state of the window (a rename or "
                        "truncate seen without the writes before it), not only on lost writes "
                        "or bytes never written")
    # writer mode
    p.add_argument("--mnt")
    p.add_argument("--id", type=int)
    p.add_argument("--log")
    a = p.parse_args()
    if a.mode == "writer":
        return writer(a)
    if not a.state:
        p.error("--state is required")
    if not os.path.exists("/dev/fuse"):
        print("skipped: no /dev/fuse")
        return 77
    exit_on_signals()
    try:
        return harness(a)
    except Failure as e:
        print(f"FAILED: {e}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
