#!/usr/bin/env python3
"""Import cycles between the files of each crate: exits 1 and names them.

Builds each crate's file-level graph from its non-test code: an edge a -> b
when a file names an item of b (`use crate::x::y`, `super::`, `self::`, a
child module by name, or a full path in code). A path to an item that a
module only re-exports (`pub use child::Item`) leads to the file that
defines it, so a `mod.rs` that re-exports its children's items is not
thereby in a cycle with them; a `mod.rs` that defines items its children
use, and uses theirs, is. `#[cfg(test)] mod` blocks are left out.

Usage: import-cycles.py CRATE_SRC_DIR...   (or --self-test)
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


def self_test():
    """The checker finds the cycles it is for, and only those."""
    import tempfile

    cases = {
        # a mod.rs defining what its child uses, and using the child: a cycle
        "parent_child": ({"lib.rs": "mod a;", "a/mod.rs": "mod b;\npub struct X;\nfn f() { b::g(); }",
                          "a/b.rs": "use super::X;\npub fn g() {}"}, 1),
        # re-exports are followed to the defining file: no cycle
        "reexport": ({"lib.rs": "mod a;", "a/mod.rs": "mod b;\nmod c;\npub use c::X;\nfn f() { b::g(); }",
                      "a/b.rs": "use super::X;\npub fn g() {}", "a/c.rs": "pub struct X;"}, 0),
        # siblings through crate:: paths, round three files
        "three": ({"lib.rs": "mod a;\nmod b;\nmod c;", "a.rs": "use crate::b::B;\npub struct A;",
                   "b.rs": "use crate::c::C;\npub struct B;", "c.rs": "fn f(_: crate::a::A) {}\npub struct C;"}, 1),
        # a use inside #[cfg(test)] mod tests does not count
        "tests": ({"lib.rs": "mod a;\nmod b;", "a.rs": "use crate::b::B;\npub struct A;",
                   "b.rs": "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}"}, 0),
    }
    failed = 0
    for name, (files, expected) in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            for rel, text in files.items():
                path = Path(tmp, rel)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            found = len(cycles(graph(tmp)))
            if found != expected:
                print(f"self-test {name}: {found} cycles, expected {expected}")
                failed += 1
    print(f"import-cycles self-test: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main(sys.argv[1:]))
