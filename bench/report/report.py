#!/usr/bin/env python3
"""report.py - turns the CSV files written by shmbench into bench/RESULTS.md
and gnuplot PNG plots (standard library only; gnuplot is optional).

Inputs: results.csv (one summary row per experiment), results_dist.csv
(latency percentiles per experiment) and the `shmbench --list` output.
Every figure is shown with two ratios: against the hardware limit
(limit-line for latency, limit-memcpy for throughput) and against the Unix
socket, taken from the same workload, size, width and PM-QoS configuration.
"""
import argparse
import csv
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import tempfile

TP_LIMIT = "limit-memcpy"
UNIX = "unix"
QOS_LABEL = {"held": "PM-QoS held (0 us request)", "off": "PM-QoS not held"}
COLORS = ["#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
          "#f781bf", "#999999", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
          "#e6ab02", "#17becf", "#bcbd22", "#8c564b"]


# ---------------------------------------------------------------- loading --

def read_csv(path):
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_transports(path):
    """name -> (group, caps, summary), in display order."""
    out = {TP_LIMIT: ("0", "stream", "hardware limit: memcpy in one process, one copy per message")}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 5:
                    out[parts[0]] = (parts[1], parts[2], parts[4])
    return out


# ------------------------------------------------------------------ rounds --

LATENCY_WORKLOADS = ("pingpong", "wakeup", "fanout")


def row_key(r):
    return (r["transport"], r["workload"], r["pmqos"], r["msg_size"], r["writers"], r["readers"])


def median_round(cands):
    """(round, row) of the round whose main figure is the median of the rounds
    that reported one; a failed experiment's last row when none did."""
    ok = [(i, r) for i, r in cands if r["status"] == "ok"]
    if not ok:
        return cands[-1]
    metric = "median_ns" if ok[0][1]["workload"] in LATENCY_WORKLOADS else "msgs_per_s"
    ok.sort(key=lambda ir: number(ir[1][metric]) or 0.0)
    i, r = ok[len(ok) // 2]
    r = dict(r)
    if len(ok) > 1:
        r["note"] = "median of %d rounds" % len(ok)
    return i, r


def merge_rounds(result_files, dist_files):
    """Rows of interleaved rounds -> one row per experiment (the median round's,
    with its latency percentiles), in first-seen order."""
    rounds = [read_csv(f) for f in result_files]
    dists = [read_csv(f) for f in dist_files]
    by_key, order = {}, []
    for i, rows in enumerate(rounds):
        for r in rows:
            k = row_key(r)
            if k not in by_key:
                by_key[k] = []
                order.append(k)
            by_key[k].append((i, r))
    rows, dist = [], []
    for k in order:
        i, r = median_round(by_key[k])
        rows.append(r)
        if i < len(dists):
            dist += [d for d in dists[i] if row_key(d) == k]
    return rows, dist


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


class Results:
    def __init__(self, rows, dist, transports):
        self.rows = rows
        self.dist = dist
        self.transports = transports
        self.order = list(transports)
        for r in rows:
            if r["transport"] not in self.order:
                self.order.append(r["transport"])

    def find(self, transport, workload, qos, size=None, writers=1, readers=1):
        for r in self.rows:
            if (r["transport"] == transport and r["workload"] == workload and r["pmqos"] == qos
                    and (size is None or int(r["msg_size"]) == size)
                    and int(r["writers"]) == writers and int(r["readers"]) == readers):
                return r
        return None

    def ok(self, transport, workload, qos, size=None, writers=1, readers=1):
        r = self.find(transport, workload, qos, size, writers, readers)
        return r if r and r["status"] == "ok" else None

    def configs(self, workload):
        return [q for q in ("held", "off") if any(r["workload"] == workload and r["pmqos"] == q
                                                 for r in self.rows)]

    def values(self, key, workload):
        return sorted({int(r[key]) for r in self.rows if r["workload"] == workload})

    def kind(self, transport):
        group, caps, _ = self.transports.get(transport, ("", "", ""))
        if group == "0":
            return "limit"
        caps = caps.split(",")
        return "blocking" if "blocking" in caps else "busy-poll"


# ------------------------------------------------------------- formatting --

def fmt_us(ns):
    v = number(ns)
    if v is None:
        return "–"
    us = v / 1000.0
    if us < 10:
        return "%.2f" % us
    return "%.1f" % us if us < 100 else "%.0f" % us


def fmt_rate(v):
    v = number(v)
    if v is None or v <= 0:
        return "–"
    for div, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if v >= div:
            return "%.3g%s" % (v / div, unit)
    return "%.3g" % v


def fmt_bytes(v):
    v = number(v)
    if v is None or v <= 0:
        return "–"
    for div, unit in ((1e9, " GB/s"), (1e6, " MB/s"), (1e3, " kB/s")):
        if v >= div:
            return "%.3g%s" % (v / div, unit)
    return "%.3g B/s" % v


def fmt_ratio(a, b):
    a, b = number(a), number(b)
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return "%.2g" % r if r < 10 else "%.0f" % r


def fmt_size(n):
    n = int(n)
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return "%d MiB" % (n >> 20)
    if n >= 1024 and n % 1024 == 0:
        return "%d KiB" % (n >> 10)
    return "%d B" % n


def table(header, rows, text_columns=1):
    """Markdown table; columns from text_columns on are right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < text_columns else "---:"
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- machine --

def read_first(path, default="unknown"):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def virtualization():
    found = []
    if shutil.which("systemd-detect-virt"):
        for kind in ("vm", "container"):
            p = subprocess.run(["systemd-detect-virt", "--" + kind], capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip():
                found.append("%s (%s)" % (p.stdout.strip(), kind))
    if not found and "hypervisor" in read_first("/proc/cpuinfo", ""):
        found.append("a hypervisor (cpuinfo flag)")
    return ", ".join(found) or "none detected"


def machine_section(res, args):
    qos_values = {r["qos_us"] for r in res.rows if r["pmqos"] == "off" and r["qos_us"]}
    held_missing = any(r["status"] == "unavailable" and r["pmqos"] == "held" and
                       "PM-QoS" in r["note"] for r in res.rows)
    qos_note = "held = this process wrote 0 to /dev/cpu_dma_latency and kept it open"
    if held_missing:
        qos_note = "**held: unavailable** (/dev/cpu_dma_latency could not be opened)"
    if qos_values:
        shown = ["none (kernel default)" if v == "2000000000" else "%s us held by another process" % v
                 for v in sorted(qos_values)]
        qos_note += "; not held: effective request %s" % ", ".join(shown)
    rows = [
        ("CPU", cpu_model()),
        ("Cores", "%d online (%s)" % (os.cpu_count() or 0,
                                      read_first("/sys/devices/system/cpu/online"))),
        ("Kernel", "%s %s" % (platform.system(), platform.release())),
        ("Virtualization", virtualization()),
        ("Clock source", read_first(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource")),
        ("PM-QoS", qos_note),
        ("Date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("Mode", "%s, %d interleaved round%s (suite took %s s)" % (
            args.mode, args.round_count, "s" if args.round_count > 1 else "",
            args.seconds or "?")),
        ("Load average at report time", "%.2f %.2f %.2f" % os.getloadavg()),
    ]
    return "## Machine\n\n" + table(["", ""], rows, text_columns=2)


def transports_section(res):
    rows = []
    for name in res.order:
        if name in res.transports and any(r["transport"] == name for r in res.rows):
            rows.append(["`%s`" % name, res.kind(name), res.transports[name][2]])
    return "## Transports\n\n" + table(["transport", "waiting", "what"], rows, text_columns=3)


# ----------------------------------------------------------------- tables --

def oversubscribed(res, transport, readers):
    """More spinning processes (writer + readers) than cores."""
    return res.kind(transport) != "blocking" and readers + 1 > (os.cpu_count() or 1)


def best_limit(res, workload, qos, readers=1):
    """The lowest median among the latency limits (limit-line, spin-seq) for
    this configuration, skipping oversubscribed runs; None if there is none."""
    rows = [res.ok(t, workload, qos, readers=readers) for t in res.order
            if res.kind(t) == "limit" and t != TP_LIMIT and not oversubscribed(res, t, readers)]
    rows = [r for r in rows if r and number(r["median_ns"])]
    return min(rows, key=lambda r: number(r["median_ns"])) if rows else None


def limit_note(lim):
    if not lim:
        return "_x limit: no hardware-limit figure for this configuration._"
    return "_x limit relative to `%s` (median %s µs)._" % (lim["transport"], fmt_us(lim["median_ns"]))


def latency_table(res, workload, qos, readers=1):
    ref_lim = best_limit(res, workload, qos, readers)
    ref_unix = res.ok(UNIX, workload, qos, readers=readers)
    rows = []
    for t in res.order:
        r = res.ok(t, workload, qos, readers=readers)
        if not r:
            continue
        rows.append([t, res.kind(t), fmt_us(r["median_ns"]), fmt_us(r["p99_ns"]),
                     fmt_us(r["p999_ns"]),
                     fmt_us(r["max_ns"]),
                     fmt_ratio(r["median_ns"], ref_lim and ref_lim["median_ns"]),
                     fmt_ratio(r["median_ns"], ref_unix and ref_unix["median_ns"]),
                     r["samples"]])
    header = ["transport", "waiting", "median µs", "p99 µs", "p99.9 µs", "max µs", "x limit",
              "vs unix socket", "samples"]
    if not rows:
        return "_no results_"
    return table(header, rows, text_columns=2) + "\n\n" + limit_note(ref_lim)


def throughput_table(res, qos):
    rows = []
    for size in res.values("msg_size", "throughput"):
        lim = res.ok(TP_LIMIT, "throughput", qos, size)
        ux = res.ok(UNIX, "throughput", qos, size)
        for t in res.order:
            r = res.ok(t, "throughput", qos, size)
            if not r:
                continue
            rows.append([fmt_size(size), t, fmt_rate(r["msgs_per_s"]), fmt_bytes(r["bytes_per_s"]),
                         fmt_ratio(r["msgs_per_s"], lim and lim["msgs_per_s"]),
                         fmt_ratio(r["msgs_per_s"], ux and ux["msgs_per_s"]),
                         r["lost"]])
    header = ["size", "transport", "msgs/s", "bytes/s", "x limit", "vs unix socket", "lost"]
    return table(header, rows, text_columns=2) if rows else "_no results_"


def fanout_table(res, qos):
    rows = []
    for n in res.values("readers", "fanout"):
        lim = best_limit(res, "fanout", qos, n)
        ux = res.ok(UNIX, "fanout", qos, readers=n)
        for t in res.order:
            r = res.ok(t, "fanout", qos, readers=n)
            if not r:
                continue
            mark = " *" if oversubscribed(res, t, n) else ""
            rows.append([n, t, r["mode"], fmt_us(r["median_ns"]) + mark, fmt_us(r["p99_ns"]),
                         fmt_us(r["p999_ns"]), fmt_rate(r["msgs_per_s"]),
                         fmt_ratio(r["median_ns"], lim and lim["median_ns"]),
                         fmt_ratio(r["median_ns"], ux and ux["median_ns"]), r["samples"]])
    header = ["readers", "transport", "mode", "median µs", "p99 µs", "p99.9 µs", "deliveries/s",
              "x limit", "vs unix socket", "samples"]
    return table(header, rows, text_columns=3) if rows else "_no results_"


def fanin_table(res, qos):
    lim = res.ok(TP_LIMIT, "throughput", qos, 64)
    ux = res.ok(UNIX, "throughput", qos, 64)
    rows = []
    for m in res.values("writers", "fanin"):
        for t in res.order:
            r = res.ok(t, "fanin", qos, 64, writers=m)
            if not r:
                continue
            one = res.ok(t, "throughput", qos, 64)
            rows.append([m, t, fmt_rate(r["msgs_per_s"]),
                         fmt_ratio(r["msgs_per_s"], lim and lim["msgs_per_s"]),
                         fmt_ratio(r["msgs_per_s"], ux and ux["msgs_per_s"]),
                         fmt_ratio(r["msgs_per_s"], one and one["msgs_per_s"])])
    header = ["writers", "transport", "msgs/s (all writers)", "x limit", "vs unix socket",
              "vs 1 writer"]
    return table(header, rows, text_columns=2) if rows else "_no results_"


# ------------------------------------------------- request/response (issue 16) --

SERVICE_POLL = ("shmchan-service-poll",)
SERVICE_WAIT = ("shmchan-service-wait",)
SERVICE_ANY = SERVICE_POLL + SERVICE_WAIT
RPC_OTHERS = ("unix-rpc", "zmq-rpc", "iceoryx-rpc-poll", "iceoryx-rpc-wait")


def queue_pingpong_for(res, transport, qos):
    """Our queue ping-pong of the same waiting kind, beside a service."""
    names = ("shmchan-queue-wait",) if res.kind(transport) == "blocking" else QUEUE_POLL
    return best(res, names, "pingpong", qos, "median_ns")


def rpc_table(res, qos):
    ux = res.ok("unix-rpc", "rpc", qos)
    rows = []
    for t in res.order:
        r = res.ok(t, "rpc", qos)
        if not r:
            continue
        q = queue_pingpong_for(res, t, qos) if t in SERVICE_ANY else None
        rows.append([t, res.kind(t), fmt_us(r["median_ns"]), fmt_us(r["p99_ns"]),
                     fmt_us(r["p999_ns"]), fmt_us(r["max_ns"]),
                     fmt_ratio(r["median_ns"], q and q[1]),
                     fmt_ratio(r["median_ns"], ux and ux["median_ns"]), r["samples"]])
    header = ["transport", "waiting", "median µs", "p99 µs", "p99.9 µs", "max µs",
              "x queue ping-pong", "vs unix-rpc", "samples"]
    return table(header, rows, text_columns=2) if rows else "_no results_"


def rpcload_rows(res, qos):
    """(clients, servers, transport, row) of every ok rpcload run."""
    out = []
    for r in res.rows:
        if r["workload"] == "rpcload" and r["pmqos"] == qos and r["status"] == "ok":
            out.append((int(r["writers"]), int(r["readers"]), r["transport"], r))
    order = {t: i for i, t in enumerate(res.order)}
    return sorted(out, key=lambda x: (x[0], x[1], order.get(x[2], 0)))


def rpcload_table(res, qos):
    rows = []
    runs = rpcload_rows(res, qos)
    for m, n, t, r in runs:
        ux = next((u for mm, nn, tt, u in runs if (mm, nn, tt) == (m, n, "unix-rpc")), None)
        rows.append(["%d x %d" % (m, n), t, fmt_rate(r["msgs_per_s"]), fmt_us(r["median_ns"]),
                     fmt_us(r["p99_ns"]),
                     fmt_ratio(r["msgs_per_s"], ux and ux["msgs_per_s"])])
    header = ["clients x servers", "transport", "calls/s (all clients)", "median µs",
              "p99 µs", "vs unix-rpc"]
    return table(header, rows, text_columns=2) if rows else "_no results_"


def best_rpcload(res, transports, qos="held", clients=4, servers=2):
    runs = [(t, number(r["msgs_per_s"])) for m, n, t, r in rpcload_rows(res, qos)
            if t in transports and (m, n) == (clients, servers) and number(r["msgs_per_s"])]
    return max(runs, key=lambda tv: tv[1]) if runs else None


def rpc_target_rows(res, qos="held"):
    others = best(res, RPC_OTHERS, "rpc", qos, "median_ns")
    return [
        target_row("busy-poll request/response vs queue ping-pong (ns)",
                   best(res, SERVICE_POLL, "rpc", qos, "median_ns"),
                   best(res, QUEUE_POLL, "pingpong", qos, "median_ns"), 1.5, True),
        target_row("blocking request/response vs queue ping-pong (ns)",
                   best(res, SERVICE_WAIT, "rpc", qos, "median_ns"),
                   best(res, ("shmchan-queue-wait",), "pingpong", qos, "median_ns"), 1.5, True),
        target_row("request/response vs fastest other (ns; 5 x faster)",
                   best(res, SERVICE_ANY, "rpc", qos, "median_ns"), others, 0.2, True),
        target_row("blocking request/response vs fastest other blocking (ns)",
                   best(res, SERVICE_WAIT, "rpc", qos, "median_ns"),
                   best(res, [t for t in RPC_OTHERS if res.kind(t) == "blocking"], "rpc", qos,
                        "median_ns"), 0.2, True),
        target_row("4 clients x 2 servers vs unix-rpc (calls/s)",
                   best_rpcload(res, SERVICE_ANY), best_rpcload(res, ("unix-rpc",)), 5.0, False),
        target_row("4 clients x 2 servers vs fastest other (calls/s)",
                   best_rpcload(res, SERVICE_ANY), best_rpcload(res, RPC_OTHERS), 5.0, False),
    ]


def problems_table(res):
    rows = []
    for r in res.rows:
        if r["status"] == "ok":
            continue
        width = r["writers"] if r["workload"] == "fanin" else r["readers"]
        rows.append([r["transport"], r["workload"], r["pmqos"], fmt_size(r["msg_size"]), width,
                     r["status"], r["note"]])
    if not rows:
        return "Every experiment produced a figure."
    return table(["transport", "workload", "PM-QoS", "size", "width", "status", "note"], rows,
                 text_columns=7)


# ------------------------------------------------------------------ plots --

class Plotter:
    """Writes data files and one gnuplot script per PNG."""

    def __init__(self, res, outdir):
        self.res = res
        self.outdir = outdir
        self.tmp = tempfile.mkdtemp(prefix="shmbench-plots-")
        self.made = []
        self.files = 0
        self.error = None if shutil.which("gnuplot") else "gnuplot is not installed"

    def style(self, transport):
        i = self.res.order.index(transport) if transport in self.res.order else 0
        dash = 2 if self.res.kind(transport) == "blocking" else 1
        return "lc rgb '%s' dt %d lw 2" % (COLORS[i % len(COLORS)], dash)

    def datafile(self, name, points):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            for p in points:
                f.write("%s %s\n" % p)
        return path

    def panel(self, title, series, extra):
        """series: list of (transport, [(x, y)]) -> gnuplot commands for one panel."""
        cmds = ["set title '%s'" % title] + extra
        parts = []
        for t, pts in series:
            if pts:
                self.files += 1
                f = self.datafile("series-%d.dat" % self.files, pts)
                parts.append("'%s' using 1:2 with linespoints pt 7 ps 0.5 %s title '%s'" %
                             (f, self.style(t), t))
        if not parts:
            return cmds + ["unset logscale", "set xrange [0:1]", "set yrange [0:1]",
                           "set label 1 'no data' at graph 0.5,0.5 center",
                           "plot -1 notitle", "unset label 1", "set autoscale"]
        return cmds + ["plot " + ", \\\n     ".join(parts)]

    def render(self, png, panels, width=1500, height=620):
        if self.error:
            return
        script = ["set terminal pngcairo size %d,%d font 'Sans,10'" % (width, height),
                  "set output '%s'" % os.path.join(self.outdir, png),
                  "set key outside right top", "set grid",
                  "set multiplot layout 1,%d" % len(panels)]
        for p in panels:
            script += p
        script.append("unset multiplot")
        proc = subprocess.run(["gnuplot"], input=("\n".join(script) + "\n").encode(),
                              capture_output=True)
        if proc.returncode != 0:
            self.error = proc.stderr.decode(errors="replace").strip()[:300]
        else:
            self.made.append(png)

    # -- the individual plots --

    def latency(self, workload, png, ylabel):
        panels = []
        xtics = "set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, " \
                "'99.99%%' 10000, '99.999%%' 100000)"
        for qos in self.res.configs(workload):
            series = []
            for t in self.res.order:
                pts = [(100.0 / (100.0 - float(d["percentile"])), float(d["value_ns"]) / 1000.0)
                       for d in self.res.dist
                       if d["transport"] == t and d["workload"] == workload and d["pmqos"] == qos
                       and d["readers"] == "1" and float(d["percentile"]) < 100]
                series.append((t, pts))
            extra = ["set logscale xy", xtics, "set xlabel 'percentile'", "set xrange [1:*]",
                     "set ylabel '%s'" % ylabel]
            panels.append(self.panel("%s, %s" % (workload, QOS_LABEL[qos]), series, extra))
        self.render(png, panels)

    def throughput(self, png):
        panels = []
        for qos in self.res.configs("throughput"):
            series = []
            for t in self.res.order:
                pts = [(int(r["msg_size"]), float(r["bytes_per_s"]) / 1e9) for r in self.res.rows
                       if r["transport"] == t and r["workload"] == "throughput"
                       and r["pmqos"] == qos and r["status"] == "ok"]
                series.append((t, sorted(pts)))
            extra = ["set logscale xy", "set xlabel 'message size'", "set ylabel 'GB/s'",
                     "set xtics ('64 B' 64, '4 KiB' 4096, '64 KiB' 65536, '1 MiB' 1048576)",
                     "set xrange [32:2097152]"]
            panels.append(self.panel("one-way throughput, " + QOS_LABEL[qos], series, extra))
        self.render(png, panels)

    def fanout(self, png):
        panels = []
        for qos in self.res.configs("fanout"):
            series = []
            for t in self.res.order:
                pts = [(int(r["readers"]), float(r["median_ns"]) / 1000.0) for r in self.res.rows
                       if r["transport"] == t and r["workload"] == "fanout"
                       and r["pmqos"] == qos and r["status"] == "ok"]
                series.append((t, sorted(pts)))
            extra = ["set logscale y", "set logscale x 2", "set xlabel 'readers'",
                     "set ylabel 'median latency to each reader, µs'", "set xtics (1, 2, 4, 8)",
                     "set xrange [0.8:10]"]
            panels.append(self.panel("fan-out 64 B, " + QOS_LABEL[qos], series, extra))
        self.render(png, panels)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def image(plotter, png, alt):
    return "![%s](%s)" % (alt, png) if png in plotter.made else ""


# ----------------------------------------------------------------- report --

INTRO = """\
How to read this: every process is pinned to its own core where there are
enough (process i on core i mod cores).  Latency figures are in
microseconds.  **x limit** is the transport's figure divided by the hardware
limit's figure for the same workload, size, width and PM-QoS configuration
(latency: the faster of `limit-line`, one 8-byte word bounced on one cache
line, and `spin-seq`, payload lines plus a sequence-word line, named under
each table; lower is better, 1 = as fast as bare cache lines; throughput:
`limit-memcpy`, the fraction of one in-cache memcpy per message).  **vs unix socket** is the same ratio against the AF_UNIX socket
(latency: below 1 is faster than a Unix socket; throughput: above 1 is
faster).  Latency ratios use the medians.  Busy-poll transports keep a core
spinning; blocking ones sleep in the kernel while waiting and pay a wake-up.
Failed, timed-out and not-applicable runs are listed at the end.
"""

PMQOS_TEXT = """\
These machines are KVM guests that halt idle vCPUs; without a PM-QoS request
each kernel wake-up of a halted vCPU costs tens of microseconds.  Latency
workloads run twice: with a PM-QoS request of 0 held (/dev/cpu_dma_latency
kept open) and without.
"""


def unavailable_note(res, workload, qos):
    """Why a configuration has no figures at all, e.g. PM-QoS not available."""
    notes = {r["note"] for r in res.rows
             if r["workload"] == workload and r["pmqos"] == qos and r["status"] == "unavailable"}
    if notes and not any(r["status"] == "ok" for r in res.rows
                         if r["workload"] == workload and r["pmqos"] == qos):
        return "**Unavailable:** " + "; ".join(sorted(notes))
    return None


def section_latency(res, plotter, workload, title, text, png):
    out = ["## %s" % title, "", text]
    for qos in res.configs(workload):
        body = unavailable_note(res, workload, qos) or latency_table(res, workload, qos)
        out += ["### %s" % QOS_LABEL[qos], "", body, ""]
    out += [image(plotter, png, title), ""]
    return "\n".join(out)


def section_simple(res, plotter, workload, title, text, make_table, png=None):
    out = ["## %s" % title, "", text]
    for qos in res.configs(workload):
        body = unavailable_note(res, workload, qos) or make_table(res, qos)
        out += ["### %s" % QOS_LABEL[qos], "", body, ""]
    if png:
        out += [image(plotter, png, title), ""]
    return "\n".join(out)


# ------------------------------------------------------- targets (issue 14) --

QUEUE_POLL = ("shmchan-queue-poll", "shmchan-queue-zc-poll")
QUEUE_COPYING = ("shmchan-queue-poll", "shmchan-queue-wait", "shmchan-queue-batch")
QUEUE_ANY = QUEUE_COPYING + ("shmchan-queue-zc", "shmchan-queue-zc-poll")
PEERS = {"iceoryx": ("iceoryx-poll", "iceoryx-wait"), "ZeroMQ": ("zmq",),
         "Boost.Interprocess": ("boost-mq",)}


def best(res, transports, workload, qos, key, size=None, low=True):
    """(transport, value) of the best ok run among transports, or None."""
    runs = [(t, number(r[key])) for t in transports
            for r in [res.ok(t, workload, qos, size)] if r and number(r[key])]
    if not runs:
        return None
    return (min if low else max)(runs, key=lambda tv: tv[1])


def target_row(name, ours, ref, bound, at_most):
    """One line of the targets table: ours / ref against the bound. Latency
    targets (at_most) compare medians in ns, the others rates."""
    if not ours or not ref:
        return [name, "–", "–", "–", "no figure"]
    ratio = ours[1] / ref[1]
    holds = ratio <= bound if at_most else ratio >= bound
    fmt = (lambda v: "%.0f" % v) if at_most else fmt_num
    return [name, "%s: %s" % (ours[0], fmt(ours[1])), "%s: %s" % (ref[0], fmt(ref[1])),
            "%.2f" % ratio, ("holds" if holds else "missed") + " (%s %g)" % (
                "≤" if at_most else "≥", bound)]


def fmt_num(v):
    for scale, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if v >= scale:
            return "%.3g%s" % (v / scale, unit)
    return "%.3g" % v


def targets_rows(res, qos="held"):
    lim = best_limit(res, "pingpong", qos)
    lim = (lim["transport"], number(lim["median_ns"])) if lim else None
    rows = [
        target_row("busy-poll round trip, queue (ns)",
                   best(res, QUEUE_POLL, "pingpong", qos, "median_ns"), lim, 1.5, True),
        target_row("busy-poll round trip, latest-value (ns)",
                   best(res, ("shmchan-latest-poll",), "pingpong", qos, "median_ns"), lim, 1.5,
                   True),
        target_row("spin-then-futex round trip, queue (ns)",
                   best(res, ("shmchan-queue-wait",), "pingpong", qos, "median_ns"),
                   best(res, ("spin-futex",), "pingpong", qos, "median_ns"), 1.2, True),
        target_row("spin-then-futex round trip, latest-value (ns)",
                   best(res, ("shmchan-latest-wait",), "pingpong", qos, "median_ns"),
                   best(res, ("spin-futex",), "pingpong", qos, "median_ns"), 1.2, True),
        target_row("sleeping reader woken, queue (ns)",
                   best(res, ("shmchan-queue-wait",), "wakeup", qos, "median_ns"),
                   best(res, ("futex",), "wakeup", qos, "median_ns"), 1.1, True),
    ]
    ours64 = best(res, QUEUE_ANY, "throughput", "held", "msgs_per_s", 64, low=False)
    rows.append(target_row("64 B one-way vs minimal ring (msgs/s)", ours64,
                           best(res, ("ring",), "throughput", "held", "msgs_per_s", 64, False),
                           1.0, False))
    rows.append(target_row("64 B one-way vs pipe (msgs/s)", ours64,
                           best(res, ("pipe",), "throughput", "held", "msgs_per_s", 64, False),
                           5.0, False))
    for size in res.values("msg_size", "throughput"):
        ours = best(res, QUEUE_ANY, "throughput", "held", "bytes_per_s", size, low=False)
        for peer, names in PEERS.items():
            ref = best(res, names, "throughput", "held", "bytes_per_s", size, low=False)
            if ref:
                rows.append(target_row("%s ahead of %s (B/s)" % (fmt_size(size), peer), ours, ref,
                                       1.0, False))
    rows += rpc_target_rows(res, qos)
    rows.append(target_row(
        "copying 1 MiB vs memcpy (B/s)",
        best(res, QUEUE_COPYING, "throughput", "held", "bytes_per_s", 1 << 20, low=False),
        best(res, (TP_LIMIT,), "throughput", "held", "bytes_per_s", 1 << 20, low=False),
        0.7, False))
    return rows


def targets_table(res):
    header = ["target (PM-QoS held)", "shmchan, best", "reference", "ratio", "verdict"]
    return table(header, targets_rows(res), text_columns=3)



# ------------------------------------------- paired targets (issue 14) --
# bench/pairs.csv (bench/run.sh, run_pairs): ours and the reference run back
# to back in short slices, PAIR_N times, so that both figures of a pair come
# from the same placement of the vCPUs on host cores.

PAIRED = [  # target, what, bound, at_most (latency: ours / reference <= bound)
    ("queue-poll-rtt", "busy-poll round trip, queue / one shared line", 1.5, True),
    ("latest-poll-rtt", "busy-poll round trip, latest-value / one shared line", 1.5, True),
    ("queue-wait-rtt", "spin-then-futex round trip, queue / raw spin-futex", 1.2, True),
    ("latest-wait-rtt", "spin-then-futex round trip, latest-value / raw spin-futex", 1.2, True),
    ("queue-wakeup", "sleeping queue reader woken / raw futex", 1.1, True),
    ("ring-64", "64 B one-way, queue send + recv, polling / minimal ring", 1.0, False),
    ("ring-64-batch", "64 B one-way, queue batches (runs) / minimal ring", 1.0, False),
    ("pipe-64", "64 B one-way, queue send + recv, polling / pipe", 5.0, False),
    ("pipe-64-wait", "64 B one-way, queue send + recv, reader blocking / pipe", 5.0, False),
    ("pipe-64-batch", "64 B one-way, queue batches (runs) / pipe", 5.0, False),
    ("memcpy-1M", "1 MiB one-way, copying queue send + recv / memcpy", 0.7, False),
    ("memcpy-1M-batch", "1 MiB one-way, copying queue batches / memcpy", 0.7, False),
    ("ring-1M", "1 MiB one-way, copying queue send + recv / minimal ring (same two cores)", 1.0,
     False),
    ("service-poll-rtt", "busy-poll request/response / queue ping-pong (issue 16)", 1.5, True),
    ("service-wait-rtt", "blocking request/response / queue ping-pong (issue 16)", 1.5, True),
    ("service-iceoryx", "request/response / iceoryx 2.0's, polling (issue 16: 5 x faster)",
     0.2, True),
]


def read_pairs(path):
    """{target: [(ours, ours_value, reference, reference_value)]}."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    for r in read_csv(path):
        a, b = number(r["ours_value"]), number(r["reference_value"])
        if a and b:
            out.setdefault(r["target"], []).append((r["ours"], a, r["reference"], b))
    return out


def paired_rows(pairs):
    rows = []
    for target, what, bound, at_most in PAIRED:
        got = pairs.get(target)
        if not got:
            rows.append([what, "–", "–", "–", "no figure"])
            continue
        ratios = sorted(a / b for _, a, _, b in got)
        med = statistics.median(ratios)
        holds = med <= bound if at_most else med >= bound
        fmt = (lambda v: "%.0f" % v) if at_most else fmt_num
        ours = statistics.median(a for _, a, _, _ in got)
        ref = statistics.median(b for _, _, _, b in got)
        rows.append([what, "%s: %s" % (got[0][0], fmt(ours)), "%s: %s" % (got[0][2], fmt(ref)),
                     "%.2f (%.2f-%.2f, %d pairs)" % (med, ratios[0], ratios[-1], len(ratios)),
                     ("holds" if holds else "missed") + " (%s %g)" % ("≤" if at_most else "≥",
                                                                      bound)])
    return rows


def paired_table(pairs):
    header = ["target (PM-QoS held)", "shmchan, median", "reference, median",
              "ratio: median of pairs (range)", "verdict"]
    return table(header, paired_rows(pairs), text_columns=3)


def paired_section(pairs):
    title = "## Targets of issues 14 and 16, paired"
    if not pairs:
        return [title, "", "_Not run: no paired figures (bench/pairs.csv)._", ""]
    return [title, "",
            "Each target's transport and its reference ran back to back in short slices, "
            "alternating which went first (`bench/pairs.csv`); the ratio is the median of the "
            "per-pair ratios. The vCPUs of these guests move between host cores, and the same "
            "binary's round trip moves 2-3 x with them, so figures of the suite taken minutes "
            "apart (the table above) can compare two placements; a pair compares one.", "",
            paired_table(pairs), ""]


# ---------------------------------------------- readiness handles (issue 13) --
# bench/readiness.csv (bench/run.sh: notify_bench and bench_asyncio.py append
# "bench,transport,pmqos,metric,value" lines): the targets of issue 13.

def read_readiness(path):
    """{(bench, transport, pmqos, metric): value} of the readiness benchmarks."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) == 5:
                out[tuple(parts[:4])] = number(parts[4])
    return out


def readiness_rows(rd):
    def fig(bench, transport, metric, qos="off"):
        v = rd.get((bench, transport, qos, metric))
        return (transport, v) if v else None

    def faster_row(name, ours, ref, bound):
        """ours at least bound times faster than ref (round-trip times)."""
        if not ours or not ref:
            return [name, "–", "–", "–", "no figure"]
        ratio = ref[1] / ours[1]
        return [name, "%s: %.0f" % ours, "%s: %.0f" % ref, "%.2f" % ratio,
                ("holds" if ratio >= bound else "missed") + " (≥ %g x faster)" % bound]

    rows = []
    for qos in ("off", "held"):
        if fig("rtt", "pipe", "p50_ns", qos):
            rows.append(target_row("epoll round trip, PM-QoS %s (p50 ns)" % qos,
                                   fig("rtt", "handle", "p50_ns", qos),
                                   fig("rtt", "pipe", "p50_ns", qos), 1.2, True))
    rows.append(faster_row("asyncio round trip vs Unix-socket streams (p50 ns)",
                           fig("asyncio", "shmchan", "rtt_p50_ns"),
                           fig("asyncio", "unix", "rtt_p50_ns"), 3))
    rows.append(faster_row("asyncio round trip vs zmq.asyncio (p50 ns)",
                           fig("asyncio", "shmchan", "rtt_p50_ns"),
                           fig("asyncio", "zmq", "rtt_p50_ns"), 2))
    rows.append(target_row("asyncio one-way vs Unix-socket streams (msgs/s)",
                           fig("asyncio", "shmchan", "msgs_per_s"),
                           fig("asyncio", "unix", "msgs_per_s"), 3.0, False))
    ours, ref = fig("fanin", "shmchan", "ns_per_msg"), fig("fanin", "unix", "ns_per_msg")
    if ("fanin", "shmchan", "off", "ns_per_msg") in rd:
        # no bound in the issue: every message seen once, the cost shown next to sockets
        row = target_row("1000-channel epoll loop vs 1000 Unix sockets (ns/msg)", ours, ref,
                         float("inf"), True)
        row[4] = "every message seen once" if ours else "messages missed or seen twice"
        rows.append(row)
    return rows


def readiness_table(rd):
    header = ["target (issue 13)", "shmchan", "reference", "ratio", "verdict"]
    return table(header, readiness_rows(rd), text_columns=3)


def readiness_section(rd):
    if not rd:
        return ["## Targets of issue 13 (readiness handles)", "",
                "_Not run: no readiness figures (bench/readiness.csv)._", ""]
    return ["## Targets of issue 13 (readiness handles)", "",
            "`bench/notify/notify_bench` (64 B round trip, each side waiting in epoll, the "
            "shmchan readiness handle next to a pipe; one epoll loop over 1000 queues next "
            "to 1000 Unix datagram sockets) and `bench/python/bench_asyncio.py` (two Python "
            "processes in asyncio: a shmchan queue next to asyncio streams over a Unix socket "
            "and zmq.asyncio), once in this run. Round-trip ratios are shmchan / reference "
            "(lower is better) or, for \"x faster\", reference / shmchan.", "",
            readiness_table(rd), ""]


def build_report(res, args, plotter):
    parts = ["# shmchan IPC benchmark results", "",
             "Written by `bench/run.sh%s`; raw data in `results.csv` (summary) and "
             "`results_dist.csv` (latency percentiles).%s" % (
                 " --quick" if args.mode == "quick" else "",
                 " The suite ran %d times, interleaved; each figure is the round with the "
                 "median result (its percentiles with it), so that a slow stretch of a shared "
                 "machine moves no transport alone." % args.round_count
                 if args.round_count > 1 else ""),
             "", INTRO, PMQOS_TEXT, machine_section(res, args), "", transports_section(res), ""]
    parts.append(section_latency(
        res, plotter, "pingpong", "Ping-pong round trip, 64 B",
        "Process A sends 64 bytes to B over one channel, B echoes them over a second "
        "channel; the figure is A's round-trip time (`limit-line` moves only its 8-byte "
        "word).\n", "latency_pingpong.png"))
    parts.append(section_latency(
        res, plotter, "wakeup", "Wake-up latency, one way, 64 B",
        "The writer waits until the reader has taken the previous message, sleeps 50-100 µs "
        "so that the reader is waiting again (asleep, for blocking transports), then stamps "
        "the time into the message; the reader records now - stamp. Busy-poll readers never "
        "sleep, so for them this is the one-way latency of a message that arrives while they "
        "spin.\n", "latency_wakeup.png"))
    parts.append(section_simple(
        res, plotter, "throughput", "One-way throughput",
        "One writer sends back to back, one reader checks the sequence number and check words "
        "of every message. Zero-copy writers copy the message body into the loaned buffer "
        "(so every transport's writer produces every byte); the `limit-memcpy` figure is one "
        "memcpy per message in a single process.\n", throughput_table, "throughput.png"))
    parts.append(section_simple(
        res, plotter, "fanout", "Fan-out to N readers, 64 B",
        "The writer stamps one message for N readers and waits until all have taken it. "
        "*native*: one channel that delivers every message to every reader; *emulated*: the "
        "writer sends on N one-to-one channels in turn (same stamp), as one would with sockets. "
        "\\* marks busy-polling runs with more spinning processes than cores: readers then wait "
        "for the scheduler's time slice, so the figure says nothing about the transport and is "
        "not used as the limit (x limit shows – there).\n",
        fanout_table, "fanout.png"))
    parts.append(section_simple(
        res, plotter, "fanin", "Fan-in: M writers into one queue, 64 B",
        "M writers send back to back into one channel; the reader checks every writer's "
        "sequence. Neither the hardware limit nor the Unix socket takes several writers, so "
        "the ratios compare with their one-writer 64 B throughput.\n", fanin_table))
    parts.append(section_simple(
        res, plotter, "rpc", "Request/response round trip, 64 B",
        "A client process sends a 64-byte request, a server process answers it with the same "
        "bytes; the figure is the client's round-trip time. *x queue ping-pong*: against "
        "`shmchan-queue-poll` (busy-poll transports) or `shmchan-queue-wait` (blocking) in "
        "the same run. `unix-rpc`: Unix datagram sockets; `zmq-rpc`: ZeroMQ REQ/REP; "
        "`iceoryx-rpc-*`: iceoryx 2.0's client/server ports.\n", rpc_table))
    parts.append(section_simple(
        res, plotter, "rpcload", "Request/response under load: M clients x N servers, 64 B",
        "M client processes call back to back into N competing server processes (one "
        "service; for ZeroMQ each client's REQ socket is connected to every server's REP). "
        "Every response is checked against its request. iceoryx 2.0 allows one server per "
        "service, so its runs with 2 servers are n/a.\n", rpcload_table))
    parts += ["## Targets of issues 14 and 16", "",
              "Ratios within this run (so on this machine's CPU, see Machine): the best "
              "shmchan way against the reference named; `bench/run.sh` prints the same "
              "table when it ends.", "", targets_table(res), ""]
    parts += paired_section(read_pairs(args.pairs))
    parts += readiness_section(read_readiness(args.readiness))
    parts += ["## Runs without a figure", "", problems_table(res), ""]
    if plotter.error:
        parts += ["_Plots not made: %s_" % plotter.error, ""]
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", required=True)
    ap.add_argument("--dist", default=None)
    ap.add_argument("--transports", default=None)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--seconds", default=None)
    ap.add_argument("--readiness", default=None, metavar="CSV",
                    help="readiness-handle figures (issue 13), from bench/run.sh")
    ap.add_argument("--pairs", default=None, metavar="CSV",
                    help="paired target runs (issue 14), from bench/run.sh")
    ap.add_argument("--rounds", nargs="*", default=None, metavar="CSV",
                    help="results of interleaved rounds (each with a -dist.csv beside it): "
                         "merged into --results and --dist first")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    if args.rounds:
        rows, dist = merge_rounds(args.rounds, [f[:-4] + "-dist.csv" for f in args.rounds])
        write_csv(args.results, rows, list(read_csv(args.rounds[0])[0].keys()))
        if args.dist:
            dist_fields = ["transport", "workload", "pmqos", "msg_size", "writers", "readers",
                           "percentile", "value_ns"]
            write_csv(args.dist, dist, dist_fields)
    args.round_count = len(args.rounds) if args.rounds else 1
    res = Results(read_csv(args.results), read_csv(args.dist), read_transports(args.transports))
    plotter = Plotter(res, args.outdir)
    try:
        plotter.latency("pingpong", "latency_pingpong.png", "round trip, µs")
        plotter.latency("wakeup", "latency_wakeup.png", "one-way latency, µs")
        plotter.throughput("throughput.png")
        plotter.fanout("fanout.png")
    finally:
        plotter.cleanup()
    with open(os.path.join(args.outdir, "RESULTS.md"), "w") as f:
        f.write(build_report(res, args, plotter))
    print(targets_table(res))
    pairs = read_pairs(args.pairs)
    if pairs:
        print("\n" + paired_table(pairs))
    rd = read_readiness(args.readiness)
    if rd:
        print("\n" + readiness_table(rd))


if __name__ == "__main__":
    main()
