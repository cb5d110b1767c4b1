#!/usr/bin/python3
"""The tables of bench/results/agent.md from a bench/agent run's raw files, and the issue-5 bar.

usage: agent_report.py RUN_DIR CLK_TCK BIG_MB   (RUN_DIR holds rss.tsv, bulk.tsv and cpu.tsv)"""
import csv
import os
import statistics
import sys

run, clk_tck, big_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def table(name):
    with open(os.path.join(run, name)) as f:
        return list(csv.DictReader(f, delimiter='\t'))


rss_rows = {(r['process'], r['when']): r for r in table('rss.tsv')}
rss = {k: int(r['rss_kB']) / 1024 for k, r in rss_rows.items()}
bulk = table('bulk.tsv')
cpu = table('cpu.tsv')
PATHS = {'inkwire': 'inkwire (HTTPS → edge → relay → agent)', 'inkwire-h1': 'inkwire-h1 (the same, curl --http1.1)',
         'ssh': 'ssh -R (chacha20, plain HTTP)', 'direct': 'direct (to the origin)'}
OURS = ('inkwire', 'inkwire-h1')
KINDS = {'down': 'download', 'up': 'upload, Content-Length', 'up-chunked': 'upload, chunked'}


def span(v, fmt='{:.1f}'):
    if not v:
        return '-'
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def speeds(path, kind):
    return [float(r['MBps']) for r in bulk if r['path'] == path and r['kind'] == kind and r['ok'] == '1']


def failures(path, kind):
    return [f"round {r['round']}: {r['ok']}" for r in bulk if r['path'] == path and r['kind'] == kind and r['ok'] != '1']


def growth(path, kind, proc, col):
    """MiB above the VmRSS before the transfer, per transfer of this kind through this path of ours."""
    out = []
    for r in bulk:
        if r['path'] == path and r['kind'] == kind and r[f'{proc}_{col}_kB'] not in ('NA', '', '0'):
            out.append((int(r[f'{proc}_{col}_kB']) - int(r[f'{proc}_before_kB'])) / 1024)
    return out


def mib(v):
    return f'{v:.1f}'


def peak(proc):
    """The largest RSS (MiB) seen during the bulk transfers through inkwire: before + the larger growth."""
    out = [int(r[f'{proc}_before_kB']) + max(int(r[f'{proc}_hwm_kB']) - int(r[f'{proc}_before_kB']),
                                             int(r[f'{proc}_max_kB'] or 0) - int(r[f'{proc}_before_kB']))
           for r in bulk if r['path'] in OURS and r[f'{proc}_hwm_kB'] not in ('NA', '', '0')]
    return max(out) / 1024 if out else float('nan')


def rss_cell(proc, when):
    r = rss_rows.get((proc, when))
    if not r:
        return '-'
    return f"{mib(int(r['rss_kB']) / 1024)} (anon {mib(int(r['anon_kB']) / 1024)}, file {mib(int(r['file_kB']) / 1024)})"


print('## Memory (VmRSS, MiB; RssAnon and RssFile in brackets)\n')
print('| process | idle (connected, 5 s, no request yet) | largest during the bulk transfers | after the load (5 s idle) |')
print('|---|---:|---:|---:|')
for proc, tag, label in (('agent', 'agt', 'agent (`inkwire connect`)'), ('inkwired', 'srv', 'inkwired (controlplane + relay + edge)')):
    print(f"| {label} | {rss_cell(proc, 'idle')} | {mib(peak(tag))} | {rss_cell(proc, 'after')} |")

print(f'\n## Bulk, {big_mb} MiB per transfer (MB/s = 10⁶ bytes / curl\'s time_total; median (min–max) of the rounds)\n')
print('| path | ' + ' | '.join(KINDS.values()) + ' | HTTP |')
print('|---|' + '---:|' * len(KINDS) + '---|')
for path, label in PATHS.items():
    if not any(r['path'] == path for r in bulk):
        continue
    protos = sorted({r['proto'] for r in bulk if r['path'] == path})
    print(f"| {label} | " + ' | '.join(span(speeds(path, k)) for k in KINDS) + f" | {', '.join(protos)} |")
failed = [(p, k, f) for p in PATHS for k in KINDS for f in failures(p, k)]
if failed:
    print('\nFailed transfers (not in the medians):')
    for p, k, f in failed:
        print(f'* {p} {KINDS[k]}: {f}')

print(f'\n## RSS growth during each {big_mb} MiB transfer through inkwire (MiB above VmRSS just before it; '
      'median (min–max) of the rounds)\n')
print('| path | transfer | agent: VmHWM − before | agent: max sampled − before | inkwired: VmHWM − before | '
      'inkwired: max sampled − before |')
print('|---|---|---:|---:|---:|---:|')
for path in OURS:
    for k, label in KINDS.items():
        if growth(path, k, 'agt', 'hwm'):
            print(f"| {path} | {label} | {span(growth(path, k, 'agt', 'hwm'))} | {span(growth(path, k, 'agt', 'max'))} | "
                  f"{span(growth(path, k, 'srv', 'hwm'))} | {span(growth(path, k, 'srv', 'max'))} |")

print('\n## CPU per proxied request (wrk -t1 -c32 on /small, 13-byte body; (utime+stime) / requests; '
      'median (min–max))\n')
print('| path | req/s | errors | agent-side µs/request | server-side µs/request |')
print('|---|---:|---:|---:|---:|')
per_req = {}
for path, (agent_label, server_label) in (('inkwire', ('agent', 'inkwired')), ('ssh', ('ssh client', 'sshd session'))):
    rows = [r for r in cpu if r['path'] == path and int(r['requests']) > 0]
    rps = [int(r['requests']) / float(r['seconds']) for r in rows]
    a = [int(r['agt_ticks']) * 1e6 / clk_tck / int(r['requests']) for r in rows]
    s = [int(r['srv_ticks']) * 1e6 / clk_tck / int(r['requests']) for r in rows]
    per_req[path] = (a, s)
    errors = sum(int(r['errors']) for r in rows)
    print(f"| {PATHS[path]} | {span(rps, '{:.0f}')} | {errors} | {agent_label}: {span(a, '{:.0f}')} | "
          f"{server_label}: {span(s, '{:.0f}')} |")


def med(v):
    return statistics.median(v) if v else float('nan')


print('\n## The issue-5 bar\n')
print('| bar | measured | met? |')
print('|---|---|---|')
idle = rss[('agent', 'idle')]
print(f"| agent idle RSS ≤ 8 MiB | {mib(idle)} MiB | {'yes' if idle <= 8 else f'no, by {idle - 8:.1f} MiB ({idle / 8:.2f}×)'} |")
a, s = per_req.get('inkwire', ([], []))
print(f"| CPU µs per proxied request reported | agent {med(a):.0f} µs, inkwired {med(s):.0f} µs | yes |")
for path in OURS:
    for k, label in KINDS.items():
        n_all = len([r for r in bulk if r['path'] == path and r['kind'] == k])
        n_ok = len(speeds(path, k))
        if n_all:
            print(f"| {big_mb} MiB {label} passes through the agent ({path}) | {n_ok} of {n_all} | "
                  f"{'yes' if n_ok == n_all else 'no'} |")
for path in OURS:
    for proc, label in (('agt', 'the agent'), ('srv', 'inkwired')):
        worst = max((v for k in KINDS for col in ('hwm', 'max') for v in growth(path, k, proc, col)), default=None)
        if worst is None:
            continue
        verdict = 'yes' if worst < 16 else f'**no**, by {worst - 16:.1f} MiB ({worst / 16:.1f}×)'
        print(f"| RSS growth < 16 MiB in {label} ({path}, worst transfer) | {mib(worst)} MiB | {verdict} |")
for k, label in KINDS.items():
    for peer, want in (('ssh', 2.0), ('direct', 0.5)):
        theirs = med(speeds(peer, k))
        cells, met = [], []
        for path in OURS:
            ours = med(speeds(path, k))
            if ours == ours:  # not NaN
                cells.append(f"{path} {ours:.1f} / {theirs:.1f} MB/s = **{ours / theirs:.2f}×**")
                met.append(f"{path}: " + ('yes' if ours / theirs >= want else f'no ({ours / theirs / want * 100:.0f} % of the bar)'))
        print(f"| {label} ≥ {want:g}× {peer} | {'; '.join(cells)} | {'; '.join(met)} |")
