#!/usr/bin/env python3
"""Checks of what the Kafka sink wrote, from kcat output.

Input on stdin: every message as kcat prints it with
    -f '%p\\t%o\\t%k\\t%h\\t%R%s\\n'
(partition, offset, key, headers "dts_lsn=X/X,dts_seq=N" or nothing, then
the value's length as 4 bytes big-endian and the value itself).

A change's position is (commit LSN, 1-based sequence number in its
transaction): the headers dts_lsn and dts_seq when the message has them
(the sink's lsn_headers), else the record's own (DTS Avro
safeSourcePosition and tag dts_seq, read here by a small decoder of our
own; SharePlex JSON meta.scn and meta.seq).  docs/kafka.md, "Durability,
order, duplicates".

Usage:
  kafka_check.py murmur2 KEY...              print Kafka's murmur2 of each key
  kafka_check.py partitions POLICY NPARTS    every message is in the partition
                                             the policy gives (docs/kafka.md)
  kafka_check.py order                       per partition, (dts_lsn, dts_seq)
                                             never goes backwards except for a
                                             replay (duplicates), counted
  kafka_check.py dups [LSN]                  messages with the same
                                             (dts_lsn, dts_seq); with LSN: fail
                                             if one is at or before LSN
  kafka_check.py keys PREFIX FIRST LAST      every key PREFIX<i> for i in
                                             FIRST..LAST is there
  kafka_check.py positions HEADERS           every message has a position;
                                             HEADERS "with": each has both
                                             headers, and the record (if it
                                             has a position) agrees; "without":
                                             none has a header

Each prints one line saying what it found and exits 0 (pass) or 1 (fail).

tests/kafka/kafka_check.py
"""

import json
import struct
import sys


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)."""
    length = len(data)
    seed = 0x9747b28c
    m = 0x5bd1e995
    r = 24
    mask = 0xFFFFFFFF
    h = (seed ^ length) & mask
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest = length % 4
    base = n4 * 4
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def partition_of(key, nparts):
    return (murmur2(key) & 0x7FFFFFFF) % nparts


def lsn_value(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def avro_long(data, pos):
    """A zigzag varint (Avro int, long, enum, union branch, count)."""
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (value >> 1) ^ -(value & 1), pos


def avro_string(data, pos):
    n, pos = avro_long(data, pos)
    return data[pos:pos + n], pos + n


def avro_blocks(value, pos, read_item):
    """An Avro array or map: blocks of items until a zero count (a negative
    count is followed by the block's size in bytes).  Returns the items read
    by read_item(value, pos) and the position after the array."""
    items = []
    while True:
        n, pos = avro_long(value, pos)
        if n == 0:
            return items, pos
        if n < 0:
            _, pos = avro_long(value, pos)
            n = -n
        for _ in range(n):
            item, pos = read_item(value, pos)
            items.append(item)


def avro_tag(value, pos):
    """One entry of a map of strings: (key, value) as text."""
    k, pos = avro_string(value, pos)
    v, pos = avro_string(value, pos)
    return (k.decode(), v.decode()), pos



def avro_position(value):
    """(safeSourcePosition, tags["dts_seq"]) of a DTS Avro Record: its
    fields up to tags, in the schema's order (version, id,
    sourceTimestamp, sourcePosition, safeSourcePosition, sourceTxid,
    source{sourceType, version}, operation, objectName, processTimestamps,
    tags)."""
    pos = 0
    for _ in range(3):                       # version, id, sourceTimestamp
        _, pos = avro_long(value, pos)
    _, pos = avro_string(value, pos)         # sourcePosition
    safe, pos = avro_string(value, pos)      # safeSourcePosition
    _, pos = avro_string(value, pos)         # sourceTxid
    _, pos = avro_long(value, pos)           # source.sourceType
    _, pos = avro_string(value, pos)         # source.version
    _, pos = avro_long(value, pos)           # operation
    branch, pos = avro_long(value, pos)      # objectName ["null", "string"]
    if branch == 1:
        _, pos = avro_string(value, pos)
    branch, pos = avro_long(value, pos)      # processTimestamps
    if branch == 1:
        _, pos = avro_blocks(value, pos, avro_long)
    pairs, pos = avro_blocks(value, pos, avro_tag)  # tags
    tags = dict(pairs)
    seq = tags.get("dts_seq")
    return (lsn_value(safe.decode()) if safe else None,
            int(seq) if seq is not None else None)


def record_position(value):
    """(commit LSN, seq) the record states, (None, None) when it has none
    (Canal JSON)."""
    if value[:1] == b"{":
        meta = json.loads(value).get("meta")
        if isinstance(meta, dict) and "scn" in meta and "seq" in meta:
            return int(meta["scn"]), int(meta["seq"])
        return None, None
    return avro_position(value)


def read_raw():
    """(partition, offset, key, headers dict, value) of every message."""
    data = sys.stdin.buffer.read()
    out = []
    pos = 0
    while pos < len(data):
        fields = []
        for _ in range(4):
            tab = data.index(b"\t", pos)
            fields.append(data[pos:tab])
            pos = tab + 1
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        value = data[pos + 4:pos + 4 + n]
        pos += 4 + n
        if data[pos:pos + 1] != b"\n":
            raise SystemExit("kafka_check: input is not kcat -f '%p\\t%o\\t%k\\t%h\\t%R%s\\n'")
        pos += 1
        hdr = {}
        for item in fields[3].decode().split(","):
            if "=" in item:
                name, v = item.split("=", 1)
                hdr[name] = v
        out.append((int(fields[0]), int(fields[1]), fields[2], hdr, value))
    return out


def read_messages():
    """(partition, offset, key, commit LSN, seq) of every message: the
    position from the headers, else from the record (0, 0 if none)."""
    out = []
    for p, o, k, hdr, value in read_raw():
        if "dts_lsn" in hdr:
            lsn, seq = lsn_value(hdr["dts_lsn"]), int(hdr.get("dts_seq", "0"))
        else:
            lsn, seq = record_position(value)
        out.append((p, o, k, lsn or 0, seq or 0))
    return out


def check_positions(headers):
    msgs = read_raw()
    bad = []
    for p, o, k, hdr, value in msgs:
        lsn, seq = record_position(value)
        has = "dts_lsn" in hdr, "dts_seq" in hdr
        if headers == "with":
            if has != (True, True):
                bad.append("offset %d of partition %d lacks a header" % (o, p))
            elif lsn is not None and (lsn, seq) != (lsn_value(hdr["dts_lsn"]), int(hdr["dts_seq"])):
                bad.append("offset %d of partition %d: headers %s/%s, record %X/%X/%s"
                           % (o, p, hdr["dts_lsn"], hdr["dts_seq"], lsn >> 32, lsn & 0xFFFFFFFF, seq))
        else:
            if any(has):
                bad.append("offset %d of partition %d has headers %r" % (o, p, hdr))
            elif lsn is None or seq is None or seq < 1:
                bad.append("offset %d of partition %d: no position in the record" % (o, p))
    if bad:
        print("positions: %d of %d messages wrong, e.g. %s" % (len(bad), len(msgs), bad[0]))
        return 1
    if headers == "with":
        print("positions: all %d messages have headers dts_lsn and dts_seq%s"
              % (len(msgs), "" if not msgs or record_position(msgs[0][4])[0] is None
                 else ", equal to the record's position"))
    else:
        print("positions: no headers on %d messages; each record has its commit LSN and dts_seq"
              % len(msgs))
    return 0


def check_partitions(policy, nparts):
    msgs = read_messages()
    bad = []
    for p, o, k, lsn, seq in msgs:
        if policy == "partition0":
            want = 0
        elif policy == "table":
            # DML and TRUNCATE: database.schema.table; DDL, heartbeats: the
            # database alone, partition 0
            want = partition_of(k, nparts) if k.count(b".") >= 2 else 0
        else:
            # a key with values hashes; without (no key, DDL) partition 0
            want = partition_of(k, nparts) if b":" in k else 0
        if p != want:
            bad.append((k, p, want))
    if bad:
        print("partitions: %d of %d messages in the wrong partition, e.g. key %r in %d, expected %d"
              % (len(bad), len(msgs), bad[0][0], bad[0][1], bad[0][2]))
        return 1
    hashed = sum(1 for m in msgs if m[0] != 0)
    print("partitions: %d messages, all where policy %s puts them (%d outside partition 0)"
          % (len(msgs), policy, hashed))
    return 0


def check_order():
    msgs = read_messages()
    by_part = {}
    for p, o, k, lsn, seq in msgs:
        by_part.setdefault(p, []).append((o, lsn, seq))
    backwards = 0
    for p, lst in by_part.items():
        lst.sort()
        seen = set()
        last = (0, 0)
        for o, lsn, seq in lst:
            if (lsn, seq) < last and (lsn, seq) not in seen:
                backwards += 1
            seen.add((lsn, seq))
            last = max(last, (lsn, seq))
    if backwards:
        print("order: %d messages out of order (not replays) in %d partitions"
              % (backwards, len(by_part)))
        return 1
    print("order: %d messages in %d partitions, each in commit order"
          % (len(msgs), len(by_part)))
    return 0


def check_dups(limit):
    msgs = read_messages()
    count = {}
    for p, o, k, lsn, seq in msgs:
        count[(lsn, seq)] = count.get((lsn, seq), 0) + 1
    dups = [key for key, n in count.items() if n > 1]
    early = [key for key in dups if limit is not None and key[0] <= limit]
    if early:
        print("dups: %d changes written twice at or before the durable LSN (first at %X/%X)"
              % (len(early), early[0][0] >> 32, early[0][0] & 0xFFFFFFFF))
        return 1
    print("dups: %d messages, %d changes written more than once%s"
          % (len(msgs), len(dups),
             "" if limit is None else ", all after the durable LSN"))
    return 0


def check_keys(prefix, first, last):
    keys = {m[2] for m in read_messages()}
    missing = [i for i in range(first, last + 1)
               if (prefix + str(i)).encode() not in keys]
    if missing:
        print("keys: %d of %d keys missing, e.g. %s%d"
              % (len(missing), last - first + 1, prefix, missing[0]))
        return 1
    print("keys: all %d keys %s%d..%d present" % (last - first + 1, prefix,
                                                  first, last))
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd = argv[1]
    if cmd == "murmur2":
        for key in argv[2:]:
            print(murmur2(key.encode()))
        return 0
    if cmd == "partitions":
        return check_partitions(argv[2], int(argv[3]))
    if cmd == "order":
        return check_order()
    if cmd == "dups":
        return check_dups(lsn_value(argv[2]) if len(argv) > 2 else None)
    if cmd == "keys":
        return check_keys(argv[2], int(argv[3]), int(argv[4]))
    if cmd == "positions" and len(argv) > 2 and argv[2] in ("with", "without"):
        return check_positions(argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
