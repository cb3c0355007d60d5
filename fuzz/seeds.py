#!/usr/bin/env python3
"""Writes each fuzz target's seed corpus, fuzz/corpus/<target>/, from the real Fabric
fixtures (testdata/fabric, and ../shared/fabric beside the repository when present).

Deterministic: the same fixtures give the same files, named by their SHA-1. Seeds are
added to what the corpus holds already (libFuzzer's finds stay). Usage:
fuzz/seeds.py [TARGET...] (default: every target).
"""
import hashlib
import os
import re
import struct
import sys

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
FIXTURES = [os.path.join(ROOT, "testdata", "fabric"), os.path.join(ROOT, "..", "shared", "fabric")]


# Protobuf, as far as the seeds need it.
def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(num, value):
    """A length-delimited field, or a varint field for an int."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def fields(buf):
    """(number, value) of each field: bytes for length-delimited, int for varints."""
    pos, out = 0, []
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError(f"wire type {wire}")
        out.append((num, value))
    return out


def read_varint(buf, pos):
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def get(buf, num):
    return next((v for n, v in fields(buf) if n == num), b"")


def block_envelopes(block):
    return [v for n, v in fields(get(block, 2)) if n == 1]


def payload_data(envelope):
    return get(get(envelope, 1), 2)


# Fixtures.
def fixture_files(*patterns):
    """Every fixture file whose path (relative to a fixture folder) matches a pattern."""
    seen, out = set(), []
    for base in FIXTURES:
        for folder, _, names in os.walk(base):
            for name in sorted(names):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, base)
                if not any(re.fullmatch(p, rel) for p in patterns):
                    continue
                data = open(path, "rb").read()
                if hashlib.sha1(data).digest() not in seen:
                    seen.add(hashlib.sha1(data).digest())
                    out.append((rel, data))
    return out


def fixture(rel):
    for base in FIXTURES:
        path = os.path.join(base, rel)
        if os.path.exists(path):
            return open(path, "rb").read()
    raise FileNotFoundError(rel)


BLOCKS = r".*\.block"
ENVELOPES = r".*\.(env|tx)"
APP_CHAIN = [f"blocks/mychannel-etcdraft-block-{n}.block" for n in range(4)]
GENESIS = ["blocks/mychannel-etcdraft-genesis.block", "blocks/mychannel-solo-genesis.block",
           "syschannel/system-solo-genesis.block", "syschannel/system-etcdraft-genesis.block"]


def all_envelopes():
    out = [data for _, data in fixture_files(ENVELOPES)]
    for _, block in fixture_files(BLOCKS):
        out += block_envelopes(block)
    return out


# The targets' seeds: each a list of byte strings.
def envelope():
    return all_envelopes()


def seekinfo():
    positions = [field(1, b""), field(2, b""), field(3, field(3, field(1, 0))),
                 field(3, field(1, 2)), field(3, field(1, 1 << 40)), field(4, b"")]
    seeds = []
    for height in (1, 4, 1 << 63):
        for start in positions:
            for stop in positions:
                seek = field(1, start) + field(2, stop)
                seeds.append(struct.pack("<Q", height) + seek)
        seeds.append(struct.pack("<Q", height) + field(1, positions[0]) + field(2, positions[0])
                     + field(3, 1) + field(4, 1))
    return seeds


def config_update():
    app_updates = [d for rel, d in fixture_files(r"updates/.*\.env")]
    creations = [d for rel, d in fixture_files(r"syschannel/envelopes/create-.*\.env",
                                               r"syschannel/appchannel-create.*\.tx")]
    config_envs = [block_envelopes(fixture(r))[0] for r in
                   ("updates/config-block-1.block", "syschannel/appchannel-block-1.block")]
    update_of = lambda env: get(payload_data(env), 1)
    return ([b"\x00" + e for e in app_updates]
            + [b"\x01" + update_of(e) for e in app_updates]
            + [b"\x02" + e for e in creations]
            + [b"\x03" + update_of(e) for e in creations]
            + [b"\x04" + e for e in config_envs])


LEDGER_SEP = b"\xf0BLKFILE"
INDEX_MAGIC = b"OLIDX\x00\x00\x01"


def ledger_files(blocks, per_file):
    """Block files of `per_file` blocks each, and the index the ledger writes for them."""
    files, index = [], bytearray(INDEX_MAGIC)
    for i, block in enumerate(blocks):
        if i % per_file == 0:
            files.append(bytearray())
        prefix = varint(len(block))
        offset = len(files[-1]) + len(prefix)
        index += struct.pack("<IQI", len(files) - 1, offset, len(block))
        files[-1] += prefix + block
    return bytes(index), [bytes(f) for f in files]


def ledger():
    blocks = [fixture(r) for r in APP_CHAIN]
    seeds = []
    for per_file, size_flag in ((4, 0), (2, 0), (1, 3 << 1)):
        index, files = ledger_files(blocks, per_file)
        for flags, idx, fs in (
            (1, index, files),                                   # as written
            (0, b"", files),                                     # no index
            (1, index[:-5], files),                              # torn index record
            (1, index, files[:-1] + [files[-1][:-700]]),         # torn last block
            (1, index, files[:-1] + [files[-1] + b"\0" * 300]),  # zero-filled tail
            (1, index[:20] + b"\x7f" + index[21:], files),       # flipped index
            (1, index, [files[0][:100] + b"\x01" + files[0][101:]] + files[1:]),  # flipped body
        ):
            seeds.append(bytes([flags | size_flag]) + idx + b"".join(LEDGER_SEP + f for f in fs))
    return seeds


def multipart():
    boundary = b"7b9c5f3e0a1d2c4b6e8f00112233445566778899aabbccddeeff0011"
    def body(block, nl=b"\r\n", extra=b""):
        part = (b"--" + boundary + nl
                + b'Content-Disposition: form-data; name="config-block"; filename="config.block"' + nl
                + b"Content-Type: application/octet-stream" + nl + nl + block + nl)
        return part + extra + b"--" + boundary + b"--" + nl
    content_type = b"multipart/form-data; boundary=" + boundary + b"\n"
    quoted = b'multipart/form-data; boundary="' + boundary + b'"\n'
    seeds = []
    for rel in GENESIS:
        block = fixture(rel)
        seeds += [b"\x00" + content_type + body(block), b"\x00" + quoted + body(block, b"\n")]
    block = fixture(GENESIS[0])
    field_part = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n')
    seeds += [b"\x00" + content_type + body(block, extra=field_part),
              b"\x01" + content_type + body(block)[:5000]]
    return seeds


def localconfig():
    tests = open(os.path.join(ROOT, "host", "src", "localconfig", "tests.rs")).read()
    sample = re.search(r'const SAMPLE_LIKE: &str = "(.*?)";', tests, re.S).group(1)
    env = "".join(f"{k}={v}\n" for k, v in re.findall(
        r'\(\s*"(ORDERER_[A-Z_]+)",\s*"([^"]*)",?\s*\)', tests))
    seeds = [sample.encode(), (sample + "\0" + env).encode()]
    seeds += [data for _, data in fixture_files(r".*\.yaml")]
    return seeds


def component():
    def call(op, arg=b""):
        return bytes([op]) + struct.pack("<H", len(arg)) + arg
    seeds = []
    for env in [block_envelopes(fixture(r))[0] for r in APP_CHAIN[1:]]:
        seeds.append(b"\x00" + call(0, env) + call(6, env) + call(8) + call(9) + call(7))
        seeds.append(b"\x00" + call(1, env))
    update = fixture("updates/update-batchsize-signed-by-orderer-admin.env")
    config_env = block_envelopes(fixture("updates/config-block-1.block"))[0]
    seeds.append(b"\x00" + call(0, update) + call(2, update) + call(3, config_env) + call(6, config_env))
    for rel in ("syschannel/appchannel-create-signed.tx",
                "syschannel/envelopes/sys-orderer-transaction-by-ord-admin.env"):
        env = fixture(rel)
        seeds.append(b"\x01" + call(4, env) + call(5, env) + call(6, env))
    genesis = fixture(GENESIS[0])
    header = get(genesis, 1)
    seeds.append(b"\x00" + call(10, genesis) + call(11, header) + call(8))
    return seeds


TARGETS = [envelope, seekinfo, config_update, ledger, multipart, localconfig, component]


def main(names):
    targets = {t.__name__: t for t in TARGETS}
    for name in names or targets:
        if name not in targets:
            sys.exit(f"unknown target {name}; targets: {' '.join(targets)}")
        folder = os.path.join(FUZZ, "corpus", name)
        os.makedirs(folder, exist_ok=True)
        seeds = targets[name]()
        for seed in seeds:
            path = os.path.join(folder, hashlib.sha1(seed).hexdigest())
            with open(path, "wb") as f:
                f.write(seed)
        print(f"{name}: {len(seeds)} seeds in {os.path.relpath(folder, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
