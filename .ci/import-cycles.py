#!/usr/bin/env python3
"""Import cycles between the files of each crate: exits 1 and names them.

Builds each crate's file-level graph from its non-test code: an edge a -> b
when a file names an item of b (`use crate::x::y`, `super::`, `self::`, a
child module by name, or a full path in code). A path to an item that a
module only re-exports (`pub use child::Item`) leads to the file that
defines it, so a `mod.rs` that re-exports its children's items is not
thereby in a cycle with them; a `mod.rs` that defines items its children
use, and uses theirs, is. `#[cfg(test)] mod` blocks are left out.

Usage: import-cycles.py CRATE_SRC_DIR...
"""
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_files(src):
    files = {}
    for p in Path(src).rglob("*.rs"):
        parts = list(p.relative_to(src).with_suffix("").parts)
        if parts[0] == "bin":
            continue
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        files[tuple(parts)] = p
    return files


def strip_tests_and_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i:m.start()])
        j, depth = m.end(), 1
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    return "".join(out)


def split_top(body):
    items, depth, cur = [], 0, ""
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [i.strip() for i in items if i.strip()]


def expand_use(tree):
    """`a::{b, c::{d}}` -> ["a::b", "a::c::d"]."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree.split("as")[0] if "::" in tree else tree]
    head, rest = tree.split("{", 1)
    rest = rest.rsplit("}", 1)[0]
    out = []
    for item in split_top(rest):
        for tail in expand_use(item):
            out.append(head + tail if tail != "self" else head.rstrip(":"))
    return out


USE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")


def parse(files):
    """Per module: the paths it names, and the items it re-exports."""
    uses, reexports = {}, {}
    for mod, path in files.items():
        text = strip_tests_and_comments(path.read_text())
        paths, rex = [], {}
        for m in USE.finditer(text):
            for p in expand_use(m.group(2)):
                p = re.sub(r"\bas\b.*$", "", p)
                paths.append(p)
                if m.group(1):
                    rex[p.rsplit("::", 1)[-1]] = p
        code = USE.sub("", text)
        paths += re.findall(r"\b(?:crate|super|self)(?:::%s)+" % IDENT, code)
        paths += [m.group(0) for m in re.finditer(r"(?<![:\w])%s(?:::%s)+" % (IDENT, IDENT), code)]
        uses[mod], reexports[mod] = paths, rex
    return uses, reexports


def resolve(mod, path, files, reexports, depth=0):
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] == "self":
        base, segs = list(mod), segs[1:]
    elif segs[0] == "super":
        base = list(mod)
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    elif tuple(mod) + (segs[0],) in files:
        base = list(mod)  # a child module by name
    else:
        return None  # another crate, std, or a local name
    cur = tuple(base)
    for i, s in enumerate(segs):
        if cur + (s,) in files:
            cur = cur + (s,)
            continue
        target = reexports.get(cur, {}).get(s)
        if target and depth < 8:
            via = resolve(cur, target, files, reexports, depth + 1)
            if via is not None:
                return via
        break
    return cur


def graph(src):
    files = module_files(src)
    uses, reexports = parse(files)
    g = {m: set() for m in files}
    for mod, paths in uses.items():
        for p in paths:
            t = resolve(mod, p, files, reexports)
            if t is not None and t != mod:
                g[mod].add(t)
    return g


def cycles(g):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in g:
        if v not in index:
            visit(v)
    return out


def name(m):
    return "/".join(m) or "lib"


def main(dirs):
    found = 0
    for src in dirs:
        g = graph(src)
        for comp in cycles(g):
            found += 1
            print(f"{src}: import cycle among {', '.join(sorted(map(name, comp)))}")
            for m in sorted(comp):
                inside = sorted(name(t) for t in g[m] if t in comp)
                print(f"    {name(m)} -> {', '.join(inside)}")
        print(f"{src}: {len(g)} files, {sum(map(len, g.values()))} imports between them")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
