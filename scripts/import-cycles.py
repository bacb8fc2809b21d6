#!/usr/bin/env python3
"""Prints the import graph of src/ between modules and its cycles (strongly
connected components); exits 1 when there is one. `-v` prints every edge.

Reads `use crate::…`, `super::…` and inline `crate::…` paths as text: an
import of a parent by its child is not counted (a module and its parts are one).
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs') or dp.endswith('/bin') : continue
        p = os.path.relpath(os.path.join(dp, f), root)[:-3]
        parts = p.split('/')
        if parts[-1] in ('mod', 'lib', 'main'): parts = parts[:-1]
        mods['::'.join(parts)] = open(os.path.join(dp, f)).read()
names = set(mods)
def resolve(path):
    # longest known module prefix of a crate:: path
    segs = path.split('::')
    for i in range(len(segs), 0, -1):
        m = '::'.join(segs[:i])
        if m in names: return m
    return None
edges = {m: set() for m in names}
for m, src in mods.items():
    src = re.sub(r'//[^\n]*', '', src)
    # expand `use crate::{a, b::c}` groups one level
    for g in re.finditer(r'crate::\{([^}]*)\}', src):
        for item in g.group(1).split(','):
            item = item.strip().split(' ')[0]
            t = resolve(item.split('::{')[0])
            if t and t != m and not m.startswith(t + '::') : edges[m].add(t)
    for r in re.finditer(r'crate::((?:\w+::)*\w+)', src):
        t = resolve(r.group(1))
        if t and t != m and not m.startswith(t + '::'): edges[m].add(t)
    for r in re.finditer(r'super::((?:\w+::)*\w+)', src):
        parent = '::'.join(m.split('::')[:-1]) if m.count('::') or '/' else ''
        base = m.split('::')[:-1]
        t = resolve('::'.join(base + r.group(1).split('::'))) if base else resolve(r.group(1))
        if t and t != m and not m.startswith(t + '::'): edges[m].add(t)
# Tarjan
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(names):
    if v not in idx: sc(v)
print(f"{len(out)} import cycle(s) among {len(names)} modules")
for comp in out: print("  cycle:", " <-> ".join(comp))
if '-v' in sys.argv:
    for m in sorted(edges): print(m, '->', ', '.join(sorted(edges[m])))
sys.exit(1 if out else 0)
