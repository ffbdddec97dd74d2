#!/usr/bin/env python3
"""Converts the peer job's events to intent's event contract.

    python3 convert.py IN OUT

IN is the peer workload (`gen_events.py` in the shared peer-job folder):
one JSON object a line, {"id","account","ts","kind":"web|email|transcript",
"url" (web),"text"}. OUT gets one intent event a line, in the same order:

- web        -> {"kind":"web","url":url,"action":"view"} plus "title": text
                when the text is not empty (the peer's page title);
- email      -> {"kind":"email","direction":"inbound","body":text};
- transcript -> {"kind":"transcript","speaker_role":"customer","text":text}.

Ids, accounts and timestamps (integer ms) are kept as they are. A line that
is not a peer event stops the conversion with its line number.
"""
import json
import sys


def convert(event):
    kind = event["kind"]
    out = {"id": event["id"], "ts": event["ts"], "account": event["account"], "kind": kind}
    text = event.get("text", "")
    if kind == "web":
        out["url"] = event.get("url", "")
        out["action"] = "view"
        if text:
            out["title"] = text
    elif kind == "email":
        out["direction"] = "inbound"
        out["body"] = text
    elif kind == "transcript":
        out["speaker_role"] = "customer"
        out["text"] = text
    else:
        raise ValueError(f"kind: '{kind}' is not web, email or transcript")
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    src, dst = sys.argv[1], sys.argv[2]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    n = 0
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for n, line in enumerate(fin, 1):
            try:
                fout.write(dumps(convert(json.loads(line))))
            except (ValueError, KeyError) as e:
                sys.exit(f"{src}:{n}: {e}")
            fout.write("\n")
    print(f"converted {n} events to {dst}", file=sys.stderr)


if __name__ == "__main__":
    main()
