#!/usr/bin/env python3
"""Independent check of pg_dts_ship's DTS Avro records.

Usage: check_avro.py SCHEMA.avsc RECORDS [MANIFEST.jsonl] [-v]

RECORDS holds records as 4-byte big-endian length + raw Avro datum (what
the Kafka sink puts in a message value).  Each is decoded with python3-avro
(avro.io.DatumReader + BinaryDecoder) against the public DTS schema,
com.alibaba.dts.formats.avro.Record, and printed as one JSON line with -v.

With MANIFEST (one JSON object a line, the inputs of each record, written by
tests/unit/test_kafka_formats.c under DTS_AVRO_DUMP), every record is
compared with what this script derives from the inputs by its own
implementation of the mapping in docs/kafka.md: header fields, tags,
fields, and every before/after image item with its union branch.

Exit status 0 when every record decodes and matches, 1 otherwise.

tests/kafka/check_avro.py
"""

import io
import json
import math
import re
import struct
import sys

import avro.io
import avro.schema

RECORD = "com.alibaba.dts.formats.avro.Record"
PG_EPOCH = 946684800
VALUE_BRANCHES = ["null", "Integer", "Character", "Decimal", "Float",
                  "Timestamp", "DateTime", "TimestampWithTimeZone",
                  "BinaryGeometry", "TextGeometry", "BinaryObject",
                  "TextObject", "EmptyObject"]
OPERATIONS = {"INSERT", "UPDATE", "DELETE", "DDL", "BEGIN", "COMMIT",
              "HEARTBEAT"}


class BranchReader(avro.io.DatumReader):
    """A DatumReader that keeps the branch of every image item."""

    def read_union(self, writers_schema, readers_schema, decoder):
        index = int(decoder.read_long())
        if index >= len(writers_schema.schemas):
            raise ValueError("union branch %d out of range" % index)
        branch = writers_schema.schemas[index]
        datum = self.read_data(branch, branch, decoder)
        if len(writers_schema.schemas) == len(VALUE_BRANCHES):
            return {"@branch": index, "@value": datum}
        return datum


def load_record_schema(path):
    with open(path) as f:
        parsed = avro.schema.parse(f.read())
    # the file is a union of named types; the Record is the datum's schema
    for s in getattr(parsed, "schemas", [parsed]):
        if s.fullname == RECORD:
            return s
    raise SystemExit("%s: no %s" % (path, RECORD))


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise SystemExit("truncated length prefix at %d" % pos)
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
        if pos + n > len(data):
            raise SystemExit("truncated record at %d" % pos)
        yield data[pos:pos + n]
        pos += n


def to_json(x):
    if isinstance(x, bytes):
        return {"@bytes": x.hex()}
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return {"@double": repr(x)}
    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [to_json(v) for v in x]
    return x


# ----------------------------------------------------------------------
# The mapping, implemented again from docs/kafka.md
# ----------------------------------------------------------------------

def lsn_text(lsn):
    return "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)


def escape_name(name):
    return (name or "").replace(".", "\\u002E")


INTEGERS = {21: 2, 23: 4, 20: 8, 26: 4}
CHARACTERS = {25, 1043, 1042, 19, 18}
GEOMETRY = {600: "POINT", 601: "LSEG", 602: "PATH", 603: "BOX",
            604: "POLYGON", 628: "LINE", 718: "CIRCLE"}
TEXT_OBJECT_NAMES = {16: "BOOL", 114: "JSON", 142: "XML", 2950: "UUID"}

DATE_RE = r"(\d{4,})-(\d\d)-(\d\d)"
TIME_RE = r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
TZ_RE = r"([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?"


def datetime_parts(text, oid):
    """DateTime dict for date/time/timestamp texts, or None (-> TEXT)."""
    pats = {1082: DATE_RE, 1083: TIME_RE, 1114: DATE_RE + " " + TIME_RE,
            1184: DATE_RE + " " + TIME_RE + TZ_RE, 1266: TIME_RE + TZ_RE}
    m = re.fullmatch(pats[oid], text)
    if not m:
        return None, None
    g = list(m.groups())
    dt = dict.fromkeys(["year", "month", "day", "hour", "minute", "second",
                        "millis"])
    if oid in (1082, 1114, 1184):
        dt["year"], dt["month"], dt["day"] = (int(x) for x in g[:3])
        g = g[3:]
    tz = None
    if oid != 1082:
        dt["hour"], dt["minute"], dt["second"] = (int(x) for x in g[:3])
        frac = g[3] or ""
        dt["millis"] = int((frac + "000000")[:6])   # microseconds
        g = g[4:]
    if oid in (1184, 1266):
        sign, h, mi, s = g
        tz = "%s%s:%s" % (sign, h, mi or "00") + (":" + s if s else "")
    return dt, tz


def numeric_typmod(typmod):
    if typmod < 4:
        return None
    t = typmod - 4
    scale = ((t & 0x7FF) ^ 1024) - 1024
    return (t >> 16) & 0xFFFF, scale


def decode_bytea(text):
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode()
            i += 1
        elif text[i + 1] == "\\":
            out += b"\\"
            i += 2
        else:
            out.append(int(text[i + 1:i + 4], 8))
            i += 4
    return bytes(out)


def expected_value(col, v):
    """(branch index, value) the mapping gives for one manifest value."""
    if v is None:
        return 0, None
    if v in ("UNCHANGED", "ABSENT", "NONE"):
        return 12, "NONE"
    text = v["t"]
    oid, typmod = col["typoid"], col["typmod"]
    if oid in INTEGERS:
        return 1, {"precision": INTEGERS[oid], "value": text}
    if oid in CHARACTERS:
        return 2, {"charset": "utf8", "value": text.encode()}
    if oid == 1700:
        if text in ("NaN", "Infinity", "-Infinity"):
            p, s = 0, 0
        elif numeric_typmod(typmod):
            p, s = numeric_typmod(typmod)
        else:
            digits = text.lstrip("-").replace(".", "").lstrip("0")
            p = max(len(digits), 1)
            s = len(text.split(".")[1]) if "." in text else 0
        return 3, {"value": text, "precision": p, "scale": s}
    if oid in (700, 701):
        return 4, {"value": float(text), "precision": 24 if oid == 700 else 53,
                   "scale": 0}
    if oid in (1082, 1083, 1114, 1184, 1266):
        dt, tz = datetime_parts(text, oid)
        if dt is None:
            return 11, {"type": "TEXT", "value": text}
        if oid in (1184, 1266):
            return 7, {"value": dt, "timezone": tz}
        return 6, dt
    if oid == 17:
        return 10, {"type": "BYTEA", "value": decode_bytea(text)}
    if oid == 3802:
        return 10, {"type": "JSON", "value": text.encode()}
    if oid in GEOMETRY:
        return 9, {"type": GEOMETRY[oid], "value": text}
    return 11, {"type": TEXT_OBJECT_NAMES.get(oid, "TEXT"), "value": text}


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def before_image(m):
    """The before values: old tuple, else (UPDATE) the unchanged key."""
    cols, old, new = m["columns"], m["old"], m["new"]
    out = []
    for i, c in enumerate(cols):
        v = old[i] if old is not None else "ABSENT"
        if v == "ABSENT" and m["op"] == "UPDATE" and c["key"] \
                and new[i] != "UNCHANGED":
            v = new[i]
        out.append(v)
    return out


def check(rec, m, size, errors, where):
    def expect(what, got, want):
        if not same(got, want):
            errors.append("%s: %s is %r, expected %r" % (where, what, got, want))

    if size <= 48:
        errors.append("%s: %d bytes: DTS consumers skip it as a filler"
                      % (where, size))
    expect("version", rec["version"], 0)
    expect("source", rec["source"],
           {"sourceType": "PostgreSQL", "version": m["source_version"] or ""})
    expect("processTimestamps", rec["processTimestamps"], None)
    expect("id", rec["id"], m["record_id"])
    expect("sourceTimestamp", rec["sourceTimestamp"],
           m["commit_time_us"] // 1000000 + PG_EPOCH)
    expect("sourcePosition", rec["sourcePosition"],
           lsn_text(m["change_lsn"] or m["commit_lsn"]))
    expect("safeSourcePosition", rec["safeSourcePosition"],
           lsn_text(m["commit_lsn"]))
    expect("sourceTxid", rec["sourceTxid"], str(m["xid"]))
    expect("bornTimestamp", rec["bornTimestamp"], m["born_time_ms"])
    expect("tags.readerThroughoutTime", rec["tags"].get("readerThroughoutTime"),
           str(m["born_time_ms"]))
    # the change's position in its transaction, when it has one
    expect("tags.dts_seq", rec["tags"].get("dts_seq"),
           str(m["seq_in_txn"]) if m.get("seq_in_txn", 0) > 0 else None)

    kind = m["kind"]
    if kind == "heartbeat":
        expect("operation", rec["operation"], "HEARTBEAT")
        for f in ("objectName", "fields", "beforeImages", "afterImages"):
            expect(f, rec[f], None)
        return
    if kind == "ddl":
        expect("operation", rec["operation"], "DDL")
        expect("objectName", rec["objectName"], escape_name(m["database"]))
        expect("fields", rec["fields"], None)
        expect("beforeImages", rec["beforeImages"], None)
        expect("afterImages", rec["afterImages"], m["sql"])
        return

    cols = m["columns"]
    expect("operation", rec["operation"], m["op"])
    expect("objectName", rec["objectName"], ".".join(
        escape_name(m[k]) for k in ("database", "schema", "table")))
    keys = [c["name"] for c in cols if c["key"]]
    expect("tags.pk_uk_info", json.loads(rec["tags"]["pk_uk_info"]),
           {"PRIMARY": keys} if keys else {})
    if not re.fullmatch(r"\d+", rec["tags"].get("metaVersion", "")):
        errors.append("%s: tags.metaVersion %r is not a number"
                      % (where, rec["tags"].get("metaVersion")))
    expect("fields", rec["fields"],
           [{"name": c["name"], "dataTypeNumber": c["typoid"]} for c in cols])

    images = {"beforeImages": None if m["op"] == "INSERT" else before_image(m),
              "afterImages": None if m["op"] == "DELETE" else m["new"]}
    for image, values in images.items():
        got = rec[image]
        if values is None:
            expect(image, got, None)
            continue
        if not isinstance(got, list) or len(got) != len(cols):
            errors.append("%s: %s is not a list of %d items" % (where, image, len(cols)))
            continue
        for i, c in enumerate(cols):
            branch, value = expected_value(c, values[i])
            item = got[i]
            what = "%s[%d] (%s)" % (image, i, c["name"])
            if item["@branch"] != branch:
                errors.append("%s: %s branch %d (%s), expected %d (%s)" % (
                    where, what, item["@branch"],
                    VALUE_BRANCHES[item["@branch"]], branch,
                    VALUE_BRANCHES[branch]))
                continue
            expect(what, item["@value"], value)


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv[1:] if a != "-v"]
    if len(args) not in (2, 3):
        raise SystemExit(__doc__)
    schema = load_record_schema(args[0])
    reader = BranchReader(schema, schema)
    manifest = None
    if len(args) == 3:
        with open(args[2]) as f:
            manifest = [json.loads(line) for line in f if line.strip()]

    errors, count, branches = [], 0, set()
    for n, raw in enumerate(read_records(args[1])):
        where = "record %d" % n
        buf = io.BytesIO(raw)
        try:
            rec = reader.read(avro.io.BinaryDecoder(buf))
        except Exception as e:  # a record the schema cannot read
            errors.append("%s: does not decode: %s" % (where, e))
            continue
        if buf.tell() != len(raw):
            errors.append("%s: %d trailing bytes" % (where, len(raw) - buf.tell()))
        if rec["operation"] not in OPERATIONS:
            errors.append("%s: operation %s" % (where, rec["operation"]))
        for image in ("beforeImages", "afterImages"):
            if isinstance(rec[image], list):
                branches.update(item["@branch"] for item in rec[image])
        if verbose:
            print(json.dumps(to_json(rec), ensure_ascii=False))
        if manifest is not None:
            if n >= len(manifest):
                errors.append("%s: not in the manifest" % where)
            else:
                check(rec, manifest[n], len(raw), errors, where)
        elif len(raw) <= 48:
            errors.append("%s: %d bytes: a filler" % (where, len(raw)))
        count += 1
    if manifest is not None and count != len(manifest):
        errors.append("%d records, %d in the manifest" % (count, len(manifest)))

    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    print("check_avro: %d records, value branches seen: %s; %d errors" % (
        count, ",".join(VALUE_BRANCHES[b] for b in sorted(branches)), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
