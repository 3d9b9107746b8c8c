"""Digest of `perf script` output for benchmarks/e2e/profile.sh.

usage: perf script -i DATA -F comm,tid,time,event,ip,sym,dso,trace | profile_report.py DAEMON_COMM
Reads samples of cpu-clock (with call chains), fuse:fuse_request_send/_end and
syscalls:sys_enter_f*sync, prints: FUSE requests by opcode; fsync calls by
process; CPU samples by process; the daemon's samples split into user space
(by library) and kernel (by the system call or fault that led there); the
daemon's top symbols.
"""
import collections
import re
import sys

daemon = sys.argv[1]
HEADER = re.compile(r"^\s*(.+?)\s+(\d+)\s+(?:(\d+\.\d+):\s+)?([\w:\-/=]+):\s*(.*)$")
FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")

ops = collections.Counter()
op_time = collections.Counter()  # seconds from send to end, by opcode
pending = {}  # (connection, unique) -> (opcode, time)
op_bytes = collections.Counter()
syncs = collections.Counter()
by_comm = collections.Counter()
user_dso = collections.Counter()
kernel_entry = collections.Counter()
self_sym = collections.Counter()
daemon_total = 0
perf_overhead = 0  # the daemon's samples in perf's own tracepoint handling
total = 0


def short(sym):
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    sym = re.sub(r"\(.*\)$", "", sym) if "(" in sym else sym
    return sym[:90]


def flush(sample):
    global daemon_total, total, perf_overhead
    if sample is None:
        return
    comm, when, event, rest, frames = sample
    if event.startswith("fuse:fuse_request_send"):
        m = re.search(r"connection (\d+) req (\d+) opcode \d+ \((FUSE_\w+)\) len (\d+)", rest)
        if m:
            ops[m.group(3)] += 1
            op_bytes[m.group(3)] += int(m.group(4))
            pending[(m.group(1), m.group(2))] = (m.group(3), when)
        return
    if event.startswith("fuse:fuse_request_end"):
        m = re.search(r"connection (\d+) req (\d+)", rest)
        if m and (m.group(1), m.group(2)) in pending:
            op, t0 = pending.pop((m.group(1), m.group(2)))
            op_time[op] += when - t0
        return
    if "sys_enter_f" in event:
        syncs[(comm, event.split(":")[-1])] += 1
        return
    if not event.startswith("cpu-clock"):
        return
    total += 1
    by_comm[comm] += 1
    if comm != daemon or not frames:
        return
    leaf_sym, leaf_dso = frames[0]
    if leaf_sym.startswith("perf_"):
        perf_overhead += 1
        return
    daemon_total += 1
    self_sym[(short(leaf_sym), leaf_dso.split("/")[-1])] += 1
    if "kernel" not in leaf_dso:
        user_dso[leaf_dso.split("/")[-1]] += 1
        return
    # Kernel time is charged to the call that entered the kernel: the first
    # user-space frame (the libc wrapper: pwrite, pread, fdatasync, read and
    # writev on /dev/fuse, ...), or a page fault, or else "other".
    entry = "kernel: other (interrupts, softirq)"
    for sym, dso in frames:
        if sym.startswith("asm_exc_page_fault") or sym.startswith("exc_page_fault"):
            entry = "kernel: page faults"
            break
        if "kernel" not in dso:
            name = re.sub(r"^(__GI___|__GI_|__libc_|__)", "", short(sym))
            name = {"read": "read (/dev/fuse: next request)",
                    "writev": "writev (/dev/fuse: reply)",
                    "pwrite64": "pwrite", "pread64": "pread"}.get(name, name)
            if name.startswith("fcntl"):
                name = "fcntl (SQLite file locks)"
            entry = "kernel: in " + name
            break
    kernel_entry[entry] += 1


sample = None
for line in sys.stdin:
    if not line.strip():
        continue
    if line.startswith("\t"):
        m = FRAME.match(line)
        if m and sample is not None:
            sample[4].append((m.group(2), m.group(3)))
        continue
    m = HEADER.match(line)
    if not m:
        continue
    flush(sample)
    comm, _, when, event, rest = m.groups()
    sample = (comm, float(when or 0), event, rest, [])
    # Without a call chain the leaf frame is on the header line itself.
    f = re.match(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", rest)
    if f and event.startswith("cpu-clock"):
        sample[4].append((f.group(2), f.group(3)))
flush(sample)


def pct(n, d):
    return f"{100.0 * n / d:5.1f}%" if d else "   - "


print("-- FUSE requests: count, bytes sent, total and mean time from send to reply")
for op, n in ops.most_common():
    t = op_time[op]
    print(f"  {op:<22} {n:>9,} {op_bytes[op]:>15,} {t:9.3f} s {t / n * 1e6:9.1f} us")
print(f"  {'total':<22} {sum(ops.values()):>9,}")
print()
print("-- fsync / fdatasync calls by process")
for (comm, ev), n in syncs.most_common():
    print(f"  {comm:<20} {ev:<24} {n:>8,}")
print()
print(f"-- CPU samples by process, all CPUs ({total:,} samples at 499 Hz per CPU)")
for comm, n in by_comm.most_common(8):
    print(f"  {comm:<20} {pct(n, total)}")
print()
print(f"-- {daemon}: where its CPU goes ({daemon_total:,} samples; {perf_overhead:,} more were"
      " perf's own tracepoint overhead, left out)")
for k, n in (kernel_entry + user_dso).most_common(14):
    name = k if k.startswith("kernel") else "user: " + k
    print(f"  {name:<50} {pct(n, daemon_total)}")
print()
print(f"-- {daemon}: top symbols (self)")
for (sym, dso), n in self_sym.most_common(25):
    print(f"  {pct(n, daemon_total)}  {sym}  [{dso}]")
