#!/usr/bin/env python3
"""Picks the most interesting inputs of each fuzz target's corpus and writes them into
Tests/HeraldProtocolsTests/FuzzRegressionTests.swift (between the GENERATED-CORPUS markers), so
CI replays them through the same invariants without libFuzzer.

"Most interesting": libFuzzer's merge pass (-merge=1 -merge_control_file) records the coverage
features of every input; the script then picks greedily the input that adds the most features
not yet covered, PER_TARGET times (inputs up to MAX_SIZE bytes, to keep the file readable).

Run after scripts/fuzz.sh (it needs the built targets in .build-fuzz/release and the grown
corpora in Fuzz/Work):  python3 Fuzz/corpus-to-swift.py
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_FILE = os.path.join(ROOT, "Tests/HeraldProtocolsTests/FuzzRegressionTests.swift")
BIN = os.path.join(ROOT, ".build-fuzz", os.environ.get("FUZZ_CONFIGURATION", "release"))
PER_TARGET = 8
MAX_SIZE = 300

# Inputs the tests cannot replay: FuzzWebSocketFrame's mode 0 (first byte % 4 == 0) runs NIO's
# frame decoder, which the test target does not depend on.
FILTERS = {
    "FuzzWebSocketFrame": lambda data: len(data) > 0 and data[0] % 4 != 0,
}

# target -> the FuzzCorpus property the tests read (FuzzRESP is not replayed: see the test file).
TARGETS = {
    "FuzzJSON": "json",
    "FuzzEngineIOv4": "engineIOv4",
    "FuzzEngineIOv3": "engineIOv3",
    "FuzzSocketIO": "socketIO",
    "FuzzWebSocketFrame": "webSocketFrame",
    "FuzzPusherMessage": "pusherMessage",
    "FuzzPusherChannelName": "pusherChannelName",
    "FuzzPusherHTTPAPI": "pusherHTTPAPI",
    "FuzzLaravelPayload": "laravelPayload",
}


def features(target):
    """{path: set(features)} for every input of the target's corpora."""
    dirs = [d for d in (os.path.join(ROOT, "Fuzz/Work", target), os.path.join(ROOT, "Fuzz/Corpus", target)) if os.path.isdir(d)]
    with tempfile.TemporaryDirectory() as out:
        control = os.path.join(out, "control")
        merged = os.path.join(out, "merged")
        os.mkdir(merged)
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
        subprocess.run([os.path.join(BIN, target), "-merge=1", f"-merge_control_file={control}", merged, *dirs],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(control) as f:
            lines = f.read().splitlines()
    count = int(lines[0])
    paths = lines[2:2 + count]
    result = {}
    for line in lines[2 + count:]:
        parts = line.split()
        if parts and parts[0] == "FT":
            result[paths[int(parts[1])]] = set(parts[2:])
    return result


def pick(target):
    keep = FILTERS.get(target, lambda data: True)
    candidates = {}
    for path, ft in features(target).items():
        with open(path, "rb") as f:
            data = f.read()
        if len(data) <= MAX_SIZE and keep(data):
            candidates[path] = ft
    chosen, covered = [], set()
    # Seeds first when they add anything (they are readable), then by features added.
    while len(chosen) < PER_TARGET and candidates:
        path, gain = max(((p, len(ft - covered)) for p, ft in candidates.items()),
                         key=lambda item: (item[1], "/Corpus/" in item[0], -os.path.getsize(item[0])))
        if gain == 0:
            break
        chosen.append(path)
        covered |= candidates.pop(path)
    return chosen


def swift_literal(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        else:
            out.append("\\u{%X}" % code)
    return '"' + "".join(out) + '"'


def case(target, path):
    with open(path, "rb") as f:
        data = f.read()
    base = os.path.basename(path)
    name = f"{target}/{base[:12]} ({len(data)} bytes)"
    literal = swift_literal(data)
    if literal is not None:
        return f'        FuzzCase("{name}", {literal}),'
    rows = [", ".join("0x%02X" % b for b in data[i:i + 16]) for i in range(0, len(data), 16)]
    body = ",\n".join("            " + row for row in rows)
    return f'        FuzzCase("{name}", bytes: [\n{body},\n        ]),'


def main():
    blocks = []
    for target, prop in TARGETS.items():
        paths = pick(target)
        print(f"{target}: {len(paths)} input(s)", file=sys.stderr)
        lines = [case(target, p) for p in paths]
        blocks.append(f"    static let {prop}: [FuzzCase] = [\n" + "\n".join(lines) + "\n    ]")
    generated = "\n\n".join(blocks)
    with open(TEST_FILE) as f:
        source = f.read()
    begin = "    // GENERATED-CORPUS-BEGIN\n"
    end = "    // GENERATED-CORPUS-END\n"
    head, rest = source.split(begin)
    _, tail = rest.split(end)
    with open(TEST_FILE, "w") as f:
        f.write(head + begin + generated + "\n" + end + tail)


if __name__ == "__main__":
    main()
