#!/usr/bin/python3
"""Medians (min–max) of bench/edge's raw.tsv for every peer, and the issue-4 bar as ratios.

usage: edge_report.py RAW_TSV   (bench-peers' report.sh only knows its own peers)"""
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
peers = [p for p in ['direct', 'nginx', 'ssh', 'inkwire-http', 'inkwire-https'] if any(r['peer'] == p for r in rows)]


def values(peer, key):
    return [float(r[key]) for r in rows if r['peer'] == peer and r[key] not in ('NA', '')]


def med(peer, key):
    v = values(peer, key)
    return statistics.median(v) if v else float('nan')


def cell(peer, key, fmt='{:.0f}'):
    v = values(peer, key)
    if not v:
        return '-'
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def mem(peer, key):
    v = [float(r[key]) for r in rows if r['peer'] == peer and r[key] not in ('NA', '', '0')]
    return '{:.1f}'.format(statistics.median(v) / 1024) if v else '-'


print('| peer | c1 req/s | c1 p50 µs | c1 p99 µs | c32 req/s | c32 p50 µs | c32 p99 µs | bulk MB/s | server RSS load MiB | agent RSS load MiB |')
print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for p in peers:
    print(f"| {p} | {cell(p, 'c1_rps')} | {cell(p, 'c1_p50us')} | {cell(p, 'c1_p99us')} | {cell(p, 'c32_rps')} | "
          f"{cell(p, 'c32_p50us')} | {cell(p, 'c32_p99us')} | {cell(p, 'bulk_MBps', '{:.1f}')} | "
          f"{mem(p, 'srv_rss_load_kB')} | {mem(p, 'agt_rss_load_kB')} |")
print()
for p in ['inkwire-http', 'inkwire-https']:
    if p not in peers:
        continue
    c32 = med(p, 'c32_rps')
    print(f"* {p}: c32 = **{c32 / med('ssh', 'c32_rps'):.2f}× ssh** (bar ≥ 2), **{c32 / med('nginx', 'c32_rps'):.2f}× nginx** "
          f"(bar ≥ 1); c1 p50 = **{med(p, 'c1_p50us') / med('nginx', 'c1_p50us'):.2f}× nginx's** (bar ≤ 1); "
          f"c32 p99 = **{med(p, 'c32_p99us') / med('direct', 'c32_p99us'):.2f}× direct's** (bar ≤ 2)")
