#!/usr/bin/env python3
"""Checks of what the Kafka sink wrote, from kcat output.

Input on stdin: one message a line as kcat prints it with
    -f '%p\\t%o\\t%k\\t%h\\n'
(partition, offset, key, headers "dts_lsn=X/X,dts_seq=N").

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

Each prints one line saying what it found and exits 0 (pass) or 1 (fail).

tests/kafka/kafka_check.py
"""

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


def read_messages():
    out = []
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\n")
        if not line:
            continue
        parts = line.split(b"\t")
        if len(parts) < 4:
            continue
        p, o, k, h = int(parts[0]), int(parts[1]), parts[2], parts[3]
        hdr = {}
        for item in h.decode().split(","):
            if "=" in item:
                name, value = item.split("=", 1)
                hdr[name] = value
        lsn = lsn_value(hdr["dts_lsn"]) if "dts_lsn" in hdr else 0
        seq = int(hdr.get("dts_seq", "0"))
        out.append((p, o, k, lsn, seq))
    return out


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
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
