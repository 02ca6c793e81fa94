#!/usr/bin/env python3
"""Module import graph of a crate's src/ and its cycles.

Node = top-level module (src/X.rs or src/X/), plus second level for the
modules named in the brief (metrics::*, transport::*).  Edges from
`use crate::a::b`, `crate::a::b::` paths anywhere, and `super::` in
submodules resolved to their parent.
"""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
level2 = set(sys.argv[2].split(',')) if len(sys.argv) > 2 else set()

def node_of(parts):
    if not parts: return None
    if parts[0] in level2 and len(parts) > 1:
        return parts[0] + '::' + parts[1]
    return parts[0]

files = []
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'): files.append(os.path.join(d, f))
mods = {}
for p in files:
    rel = os.path.relpath(p, root)[:-3].split(os.sep)
    if rel[-1] == 'mod': rel = rel[:-1]
    if rel in (['lib'], ['main']): continue
    mods[p] = rel
edges = {}
pat = re.compile(r'crate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)')
usegrp = re.compile(r'use crate::\{([^;]*)\}', re.S)
for p, rel in mods.items():
    src = open(p).read()
    # strip #[cfg(test)] mod tests { ... } at the end (tests may close cycles harmlessly)
    m = re.search(r'#\[cfg\(test\)\]\s*mod tests', src)
    if m: src = src[:m.start()]
    # comments (doc links are not imports)
    src = re.sub(r'//[^\n]*', '', src)
    me = node_of(rel) or rel[0]
    if len(rel) == 1 and rel[0] in level2: me = rel[0]
    targets = set()
    for m in pat.finditer(src):
        targets.add(tuple(m.group(1).split('::')))
    for m in usegrp.finditer(src):
        for item in re.split(r',(?![^{]*\})', m.group(1)):
            item = item.strip()
            if not item: continue
            head = re.split(r'::|\{| ', item)[0]
            rest = item[len(head):].lstrip(':')
            sub = re.match(r'([a-z_][a-z0-9_]*)', rest)
            targets.add((head,) + ((sub.group(1),) if sub else ()))
    parent = rel[:-1]
    for m in re.finditer(r'\bsuper::([a-z_][a-z0-9_]*)', src):
        targets.add(tuple(parent + [m.group(1)]))
    for m in re.finditer(r'use super::\{([^;]*)\}', src, re.S):
        for item in re.findall(r'(?:^|,)\s*([a-z_][a-z0-9_]*)::', m.group(1)):
            targets.add(tuple(parent + [item]))
    for t in targets:
        n = node_of(list(t))
        if n is None: continue
        if t[0] in level2 and len(t) == 1: n = t[0]
        # only keep modules that exist
        if n != me and not n.startswith(me + '::') and not me.startswith(n + '::'):
            edges.setdefault(me, set()).add(n)
nodes = sorted(set(edges) | {x for v in edges.values() for x in v})
# Tarjan SCC
index = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in nodes:
    if v not in index: strong(v)
cyc = [sorted(s) for s in sccs if len(s) > 1]
print(f'modules: {len(nodes)}  edges: {sum(len(v) for v in edges.values())}')
print(f'strongly connected groups (import cycles): {len(cyc)}')
for s in cyc:
    print('  cycle group:', ' <-> '.join(s))
    for a in s:
        print('     ', a, '->', ', '.join(sorted(b for b in edges.get(a, ()) if b in s)))
if '-v' in sys.argv:
    for a in sorted(edges): print(a, '->', ', '.join(sorted(edges[a])))
