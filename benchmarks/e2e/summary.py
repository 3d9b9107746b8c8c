"""Summary of benchmarks/e2e/run.sh: medians, ratios and budget verdicts.

usage: summary.py OUTDIR RANDREADS COLDREADS NFILES
Reads OUTDIR/raw.tsv (rep, metric, target, seconds) and OUTDIR/machine.txt,
prints Markdown on stdout.
"""
import os
import statistics
import sys

out, randreads, coldreads, nfiles = sys.argv[1], *map(int, sys.argv[2:5])
TARGETS = ["tmpfs", "ext4", "ptll", "strata"]
NAMES = {"tmpfs": "tmpfs", "ext4": "ext4", "ptll": "passthrough_ll", "strata": "Strata"}
MIB = 1024  # the sequential file is 1 GiB

# metric, label, unit, work (figure = work / seconds; None: the figure is seconds)
ROWS = [
    ("seq_write", "seq write 1 GiB, 1 MiB blocks, fsync at end", "MiB/s", MIB),
    ("seq_read_cold", "seq read 1 GiB, cold", "MiB/s", MIB),
    ("seq_read_warm", "seq read 1 GiB, warm", "MiB/s", MIB),
    ("rand_read_warm", f"random 4 KiB reads, warm ({randreads:,})", "reads/s", randreads),
    ("rand_read_cold", f"random 4 KiB reads, cold ({coldreads:,})", "reads/s", coldreads),
    ("small_create", f"{nfiles:,} x 4 KiB files: create", "files/s", nfiles),
    ("small_stat_warm", "  stat, warm", "files/s", nfiles),
    ("small_read_warm", "  read, warm", "files/s", nfiles),
    ("small_stat_cold", "  stat, cold", "files/s", nfiles),
    ("small_read_cold", "  read, cold", "files/s", nfiles),
    ("small_delete", "  delete", "files/s", nfiles),
    ("tar_x", "`tar -xf` /usr/include", "s", None),
    ("rm_rf", "`rm -rf` of that tree", "s", None),
    ("git_clone", "`git clone` of /usr/include repo", "s", None),
]
# name, metric, required ratio Strata/passthrough_ll, higher ratio is better
BUDGETS = [
    ("seq write with fsync", "seq_write", 0.8, True),
    ("cold seq read", "seq_read_cold", 0.5, True),
    ("small-file create", "small_create", 1.0, True),
    ("warm stat", "small_stat_warm", 1.0, True),
    ("warm read", "small_read_warm", 1.0, True),
    ("tar -xf time", "tar_x", 1.0, False),
    ("rm -rf time", "rm_rf", 1.0, False),
]

samples = {}
with open(os.path.join(out, "raw.tsv")) as f:
    next(f)
    for line in f:
        rep, metric, target, sec = line.rstrip("\n").split("\t")
        samples.setdefault((metric, target), []).append(float(sec))

work = {m: w for m, _, _, w in ROWS}


def figure(metric, target):
    """Median figure (rate, or seconds for time rows), or None."""
    s = samples.get((metric, target))
    if not s:
        return None
    med = statistics.median(s)
    w = work[metric]
    return med if w is None else w / med


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "MiB/s":
        return f"{v:,.0f}"
    return f"{v:,.0f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fr(r):
    return "-" if r is None else f"{r:.2f}x"


with open(os.path.join(out, "machine.txt")) as f:
    print("```")
    print(f.read().rstrip())
    print("```")
print()
print("Medians. Rates: higher is better, ratios are rate ratios. Rows in s:"
      " lower is better, ratios are time ratios.")
print()
print("| workload | unit | tmpfs | ext4 | passthrough_ll | Strata"
      " | tmpfs/ext4 | ptll/ext4 | Strata/ext4 | **Strata/ptll** |")
print("|---|---|---|---|---|---|---|---|---|---|")
for metric, label, unit, _ in ROWS:
    v = {t: figure(metric, t) for t in TARGETS}
    if all(x is None for x in v.values()):
        continue
    cells = [fmt(v[t], unit) for t in TARGETS]
    if metric.endswith("_cold") and v["tmpfs"] is not None:
        cells[0] += " (warm)"
    rs = [fr(ratio(v[t], v["ext4"])) for t in ("tmpfs", "ptll", "strata")]
    rs.append("**" + fr(ratio(v["strata"], v["ptll"])) + "**")
    print(f"| {label} | {unit} | " + " | ".join(cells) + " | " + " | ".join(rs) + " |")

print()
print("Budgets (Strata / passthrough_ll, same run):")
print()
print("| budget | Strata | passthrough_ll | ratio | required | verdict |")
print("|---|---|---|---|---|---|")
unit_of = {m: u for m, _, u, _ in ROWS}
for name, metric, need, higher in BUDGETS:
    s, p = figure(metric, "strata"), figure(metric, "ptll")
    r = ratio(s, p)
    if r is None:
        verdict = "not run"
    else:
        ok = r >= need if higher else r <= need
        verdict = "PASS" if ok else "FAIL"
    req = (">= " if higher else "<= ") + f"{need:.1f}x"
    u = unit_of[metric]
    suffix = "" if u == "s" else " " + u
    print(f"| {name} | {fmt(s, u)}{suffix} | {fmt(p, u)}{suffix} | {fr(r)} | {req} | **{verdict}** |")

print()
n = max((len(v) for v in samples.values()), default=0)
print(f"Spread of the {n} repetitions, (max - min) / median of the seconds:")
print()
print("| metric | " + " | ".join(NAMES[t] for t in TARGETS) + " |")
print("|---|" + "---|" * len(TARGETS))
for metric, _, _, _ in ROWS:
    cells = []
    for t in TARGETS:
        s = samples.get((metric, t))
        if not s:
            cells.append("-")
        else:
            cells.append(f"{(max(s) - min(s)) / statistics.median(s) * 100:.0f}%")
    if any(c != "-" for c in cells):
        print(f"| {metric} | " + " | ".join(cells) + " |")
