#!/usr/bin/env python3
"""Raw-socket probe: send malformed magic-v2 record batches to a real Kafka and print every field of the
per-partition Produce response as JSON.

usage: bad_batches.py HOST:PORT [--versions 8,11] [--out answers.json] [--only case-prefix,...] [--skip-bomb]

Creates topics t, tc (compact), tseg (segment.bytes=1048576, max.message.bytes=2000000),
tts (message.timestamp.before.max.ms=3600000), tlat (message.timestamp.type=LogAppendTime),
tgz (compression.type=gzip: forces the re-compressing / full-record-reading path),
tdec (max.decompressed.message.bytes=1000, a topic config new in Kafka 4.4), tcts (compact + before.max.ms=1h).
Cases whose id starts with 07 are the zstd bombs (run last; 07d can OOM the broker's heap, which Kafka survives).
--broker-log PATH attaches the broker log lines (exception text) written while each case ran.
Every bad batch is followed by one valid single-record batch; its base_offset is reported as followup_offset
(so one can see whether the bad batch advanced the log).

Needs only the stdlib for uncompressed/gzip cases; snappy/lz4/zstd payloads use `cramjam`, `lz4` and `zstandard`
(pip install --user cramjam lz4 zstandard).
"""
import gzip
import io
import json
import os
import random
import socket
import struct
import sys
import time

# ---------------------------------------------------------------- encoding helpers

def zz32(n):
    return ((n << 1) ^ (n >> 31)) & 0xFFFFFFFF


def zz64(n):
    return ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF


def uvarint(u):
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    return uvarint(zz32(n))


def varlong(n):
    return uvarint(zz64(n))


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_T = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = _CRC_T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# ---------------------------------------------------------------- records / batches

def record(offset_delta, key=b"k", value=b"v", headers=(), ts_delta=0, attrs=0, raw_key_len=None,
           raw_headers=None, trailing=b""):
    """One DefaultRecord (length-prefixed). raw_key_len: write this key length varint instead of len(key).
    raw_headers: bytes to use for the whole headers section (count varint + headers)."""
    body = bytearray()
    body += struct.pack(">b", attrs)
    body += varlong(ts_delta)
    body += varint(offset_delta)
    if raw_key_len is not None:
        body += varint(raw_key_len) + (key or b"")
    elif key is None:
        body += varint(-1)
    else:
        body += varint(len(key)) + key
    if value is None:
        body += varint(-1)
    else:
        body += varint(len(value)) + value
    if raw_headers is not None:
        body += raw_headers
    else:
        body += varint(len(headers))
        for hk, hv in headers:
            body += varint(len(hk)) + hk
            body += varint(-1) if hv is None else varint(len(hv)) + hv
    body += trailing
    return varint(len(body)) + bytes(body)


def records(n, start=0, **kw):
    return b"".join(record(start + i, value=b"v%d" % i, **kw) for i in range(n))


NOW_MS = int(time.time() * 1000)


def batch(payload, count, last_offset_delta, attrs=0, base_ts=None, max_ts=None, producer_id=-1,
          producer_epoch=-1, base_seq=-1, base_offset=0, ple=-1, magic=2, crc=None, batch_len_adjust=0):
    base_ts = NOW_MS if base_ts is None else base_ts
    max_ts = base_ts if max_ts is None else max_ts
    after_crc = struct.pack(">hiqqqhii", attrs, last_offset_delta, base_ts, max_ts, producer_id, producer_epoch,
                            base_seq, count) + payload
    c = crc32c(after_crc) if crc is None else crc
    # batchLength counts from partitionLeaderEpoch to the end: 4 + 1 + 4 + len(after_crc)
    blen = 9 + len(after_crc) + batch_len_adjust
    return struct.pack(">qiibI", base_offset, blen, ple, magic, c) + after_crc


CODEC = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def compress(codec, data):
    if codec == "none":
        return data
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "snappy":
        # xerial snappy-java stream framing (what Kafka's SnappyOutputStream writes)
        import cramjam
        out = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
        for i in range(0, max(len(data), 1), 32 * 1024):
            chunk = bytes(cramjam.snappy.compress_raw(data[i:i + 32 * 1024]))
            out += struct.pack(">i", len(chunk)) + chunk
        return bytes(out)
    if codec == "lz4":
        import lz4.frame
        return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False,
                                  content_checksum=False, store_size=False)
    if codec == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(codec)


def cbatch(codec, recs_bytes, count, lod, attrs_extra=0, **kw):
    return batch(compress(codec, recs_bytes), count, lod, attrs=CODEC[codec] | attrs_extra, **kw)


def zstd_bomb(total, prefix=b""):
    """A small zstd frame that decompresses to prefix + zeros, `total` bytes in all (streamed, low memory)."""
    import zstandard
    cctx = zstandard.ZstdCompressor(level=3)
    out = io.BytesIO()
    with cctx.stream_writer(out, size=total, closefd=False) as w:
        w.write(prefix)
        left = total - len(prefix)
        zeros = bytes(8 << 20)
        while left > 0:
            n = min(left, len(zeros))
            w.write(zeros[:n])
            left -= n
    return out.getvalue()

# ---------------------------------------------------------------- wire protocol


class Conn:
    def __init__(self, host, port, timeout=60):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.settimeout(timeout)
        self.corr = 0

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            c = self.s.recv(n - len(buf))
            if not c:
                raise ConnectionError("connection closed by broker after %d/%d bytes" % (len(buf), n))
            buf += c
        return bytes(buf)

    def request(self, api_key, version, body, flexible):
        self.corr += 1
        client = b"strom-bad-batches"
        hdr = struct.pack(">hhih", api_key, version, self.corr, len(client)) + client
        if flexible:
            hdr += b"\x00"  # header tagged fields
        msg = hdr + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        (n,) = struct.unpack(">i", self._recv(4))
        data = self._recv(n)
        (corr,) = struct.unpack_from(">i", data, 0)
        assert corr == self.corr, (corr, self.corr)
        o = 4
        if flexible:
            o = skip_tagged(data, o)[1]
        return data, o


class R:
    """Response reader."""

    def __init__(self, data, o):
        self.d, self.o = data, o

    def i8(self):
        v = struct.unpack_from(">b", self.d, self.o)[0]; self.o += 1; return v

    def i16(self):
        v = struct.unpack_from(">h", self.d, self.o)[0]; self.o += 2; return v

    def i32(self):
        v = struct.unpack_from(">i", self.d, self.o)[0]; self.o += 4; return v

    def i64(self):
        v = struct.unpack_from(">q", self.d, self.o)[0]; self.o += 8; return v

    def uv(self):
        u, shift = 0, 0
        while True:
            b = self.d[self.o]; self.o += 1
            u |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return u

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        v = self.d[self.o:self.o + n].decode(); self.o += n; return v

    def cstring(self):
        n = self.uv() - 1
        if n < 0:
            return None
        v = self.d[self.o:self.o + n].decode(); self.o += n; return v

    def tagged(self):
        tags = {}
        for _ in range(self.uv()):
            t = self.uv(); sz = self.uv()
            tags[t] = self.d[self.o:self.o + sz]; self.o += sz
        return tags


def skip_tagged(data, o):
    r = R(data, o)
    t = r.tagged()
    return t, r.o


def enc_str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def enc_cstr(s):
    if s is None:
        return b"\x00"
    b = s.encode()
    return uvarint(len(b) + 1) + b


def api_versions(c):
    data, o = c.request(18, 0, b"", False)
    r = R(data, o)
    err = r.i16()
    out = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        out[k] = (lo, hi)
    return err, out


def create_topics(c, topics):
    """topics: list of (name, {config: value}). CreateTopics v4 (non-flexible)."""
    body = struct.pack(">i", len(topics))
    for name, cfg in topics:
        body += enc_str(name) + struct.pack(">ihi", 1, 1, 0)
        body += struct.pack(">i", len(cfg))
        for k, v in cfg.items():
            body += enc_str(k) + enc_str(v)
    body += struct.pack(">ib", 30000, 0)
    data, o = c.request(19, 4, body, False)
    r = R(data, o)
    r.i32()
    res = []
    for _ in range(r.i32()):
        res.append((r.string(), r.i16(), r.string()))
    return res


def produce(c, version, topic, recs, partition=0, acks=-1, timeout_ms=30000):
    flexible = version >= 9
    if flexible:
        body = enc_cstr(None) + struct.pack(">hi", acks, timeout_ms)
        body += uvarint(2) + enc_cstr(topic) + uvarint(2) + struct.pack(">i", partition)
        body += (b"\x00" if recs is None else uvarint(len(recs) + 1) + recs)
        body += b"\x00" + b"\x00" + b"\x00"  # partition tags, topic tags, request tags
    else:
        body = struct.pack(">hhi", -1, acks, timeout_ms)
        body += struct.pack(">i", 1) + enc_str(topic) + struct.pack(">ii", 1, partition)
        body += struct.pack(">i", -1) if recs is None else struct.pack(">i", len(recs)) + recs
    t0 = time.time()
    data, o = c.request(0, version, body, flexible)
    elapsed = time.time() - t0
    r = R(data, o)
    parts = []
    ntopics = r.uv() - 1 if flexible else r.i32()
    for _ in range(ntopics):
        tname = r.cstring() if flexible else r.string()
        np_ = r.uv() - 1 if flexible else r.i32()
        for _ in range(np_):
            p = {"topic": tname, "partition": r.i32(), "error_code": r.i16(), "base_offset": r.i64(),
                 "log_append_time_ms": r.i64(), "log_start_offset": r.i64()}
            nerr = r.uv() - 1 if flexible else r.i32()
            errs = []
            for _ in range(nerr):
                bi = r.i32()
                msg = r.cstring() if flexible else r.string()
                errs.append({"batch_index": bi, "batch_index_error_message": msg})
                if flexible:
                    r.tagged()
            p["record_errors"] = errs
            p["error_message"] = r.cstring() if flexible else r.string()
            if flexible:
                tags = r.tagged()
                if 0 in tags:
                    tr = R(tags[0], 0)
                    p["current_leader"] = {"leader_id": tr.i32(), "leader_epoch": tr.i32()}
            parts.append(p)
        if flexible:
            r.tagged()
    throttle = r.i32()
    if flexible:
        tags = r.tagged()
        if tags:
            parts[0]["_response_tags"] = sorted(tags)
    res = parts[0]
    res["throttle_time_ms"] = throttle
    res["elapsed_ms"] = round(elapsed * 1000, 1)
    return res


ERRORS = {0: "NONE", -1: "UNKNOWN_SERVER_ERROR", 2: "CORRUPT_MESSAGE", 3: "UNKNOWN_TOPIC_OR_PARTITION",
          6: "NOT_LEADER_OR_FOLLOWER", 10: "MESSAGE_TOO_LARGE", 18: "RECORD_LIST_TOO_LARGE",
          32: "INVALID_TIMESTAMP", 35: "UNSUPPORTED_VERSION", 42: "INVALID_REQUEST", 43: "UNSUPPORTED_FOR_MESSAGE_FORMAT",
          76: "UNSUPPORTED_COMPRESSION_TYPE", 87: "INVALID_RECORD", 53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"}

# ---------------------------------------------------------------- cases

RND = random.Random(20240601)
JUNK200 = bytes(RND.getrandbits(8) for _ in range(200))


def valid1():
    return batch(record(0, value=b"followup"), 1, 0)


def build_cases(skip_bomb=False):
    C = []  # (id, topic, description, batch bytes)

    def add(cid, topic, desc, b):
        C.append((cid, topic, desc, b))

    r3 = records(3)
    add("01-valid-3-uncompressed", "t", "control: 3 valid records, count 3, lastOffsetDelta 2", batch(r3, 3, 2))
    add("02-junk200-uncompressed", "t", "count 3, lod 2, payload = 200 random bytes, correct CRC",
        batch(JUNK200, 3, 2))
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        add("03-junk200-attr-%s" % codec, "t", "random 200 bytes as payload with attributes codec %s (not a valid %s stream)"
            % (codec, codec), batch(JUNK200, 3, 2, attrs=CODEC[codec]))
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        add("03b-junk200-validly-%s" % codec, "t", "random 200 bytes, validly %s-compressed, as the records" % codec,
            cbatch(codec, JUNK200, 3, 2))
    for cc in (7, 5, 6):
        add("04-codec-%d" % cc, "t", "attributes codec %d, valid uncompressed records" % cc, batch(r3, 3, 2, attrs=cc))

    # 5: record length varints
    good_body = record(0)[1:]  # body of a valid record (its length varint is 1 byte)
    add("05a-reclen-2^31-1", "t", "record length varint = 2147483647 (ff ff ff ff 0f), then a 1-record body",
        batch(varint(2**31 - 1) + good_body, 1, 0))
    add("05b-reclen-5byte-wraps", "t", "record length as 5-byte varint 80 80 80 80 10 (unsigned 2^32 -> zigzag 2^31, "
        "wraps to 0 in a Java int)", batch(b"\x80\x80\x80\x80\x10" + good_body, 1, 0))
    add("05c-reclen-neg-2^31", "t", "record length varint = -2147483648 (ff ff ff ff 0f)",
        batch(varint(-2**31) + good_body, 1, 0))
    add("05d-reclen-too-long-varint", "t", "record length = ff ff ff ff ff ff (msb set in the 5th byte)",
        batch(b"\xff\xff\xff\xff\xff\xff" + good_body, 1, 0))
    add("05e-reclen-neg-1", "t", "record length varint = -1", batch(varint(-1) + good_body, 1, 0))
    for codec in ("gzip", "zstd"):
        add("05f-reclen-2^31-1-%s" % codec, "t", "record length 2147483647 inside a %s batch" % codec,
            cbatch(codec, varint(2**31 - 1) + good_body, 1, 0))
        add("05g-reclen-too-long-varint-%s" % codec, "t", "record length ff ff ff ff ff ff inside a %s batch" % codec,
            cbatch(codec, b"\xff\xff\xff\xff\xff\xff" + good_body, 1, 0))

    # 6
    add("06-count-2^31-1", "t", "count 2147483647, lod 2147483646, one valid record inside",
        batch(record(0), 2**31 - 1, 2**31 - 2))
    add("06b-count-2^31-1-gzip", "t", "count 2147483647, lod 2147483646, one valid record inside, gzip",
        cbatch("gzip", record(0), 2**31 - 1, 2**31 - 2))
    add("06c-count-neg1", "t", "count -1, lod 0, one valid record", batch(record(0), -1, 0))

    # 8
    add("08a-2-present-header-3", "t", "count 3 lod 2, only 2 valid records present", batch(records(2), 3, 2))
    add("08b-4-present-header-3", "t", "count 3 lod 2, 4 valid records present", batch(records(4), 3, 2))
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        add("08c-2-present-header-3-%s" % codec, "t", "count 3 lod 2, 2 records present, %s" % codec,
            cbatch(codec, records(2), 3, 2))
        add("08d-4-present-header-3-%s" % codec, "t", "count 3 lod 2, 4 records present, %s" % codec,
            cbatch(codec, records(4), 3, 2))

    # 9
    bad_deltas = record(0, value=b"a") + record(5, value=b"b") + record(2, value=b"c")
    add("09a-deltas-0-5-2-uncompressed", "t", "offset deltas 0,5,2; count 3 lod 2", batch(bad_deltas, 3, 2))
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        add("09b-deltas-0-5-2-%s" % codec, "t", "offset deltas 0,5,2; count 3 lod 2; valid %s" % codec,
            cbatch(codec, bad_deltas, 3, 2))
    bad_deltas2 = record(1, value=b"a") + record(2, value=b"b") + record(3, value=b"c")
    add("09c-deltas-1-2-3-uncompressed", "t", "offset deltas 1,2,3; count 3 lod 2", batch(bad_deltas2, 3, 2))
    add("09d-deltas-1-2-3-gzip", "t", "offset deltas 1,2,3; count 3 lod 2; gzip", cbatch("gzip", bad_deltas2, 3, 2))
    add("09e-deltas-0-5-2-tgz-gzip", "tgz", "offset deltas 0,5,2, gzip batch to topic compression.type=gzip",
        cbatch("gzip", bad_deltas, 3, 2))
    add("09f-deltas-0-5-2-tgz-zstd", "tgz", "offset deltas 0,5,2, zstd batch to topic compression.type=gzip "
        "(re-compression path)", cbatch("zstd", bad_deltas, 3, 2))

    # 10: record-field corruption
    bad = {
        "keylen-neg5": record(0, key=b"", raw_key_len=-5),
        "keylen-gt-remaining": record(0, key=b"kk", raw_key_len=100),
        "headers-count-neg": record(0, raw_headers=varint(-3)),
        "header-keylen-neg": record(0, raw_headers=varint(1) + varint(-2) + varint(-1)),
        "headers-count-gt-remaining": record(0, raw_headers=varint(1000)),
        "trailing-byte-in-record": record(0, trailing=b"\x00"),
        "value-len-neg5": None,
    }
    # value length -5 (build manually)
    body = struct.pack(">b", 0) + varlong(0) + varint(0) + varint(1) + b"k" + varint(-5) + varint(0)
    bad["value-len-neg5"] = varint(len(body)) + body
    for name, rec in bad.items():
        add("10-%s-uncompressed" % name, "t", "one record, %s" % name, batch(rec, 1, 0))
        add("10-%s-gzip" % name, "t", "one record, %s, gzip (in-place skipKeyValue path)" % name,
            cbatch("gzip", rec, 1, 0))
        add("10-%s-tgz-zstd" % name, "tgz", "one record, %s, zstd to gzip topic (full-record path)" % name,
            cbatch("zstd", rec, 1, 0))
    add("10-bad-record-2nd-of-2", "t", "2 records, the 2nd has key length -5",
        batch(record(0) + record(1, key=b"", raw_key_len=-5), 2, 1))

    # 11: timestamps
    day = 86400000
    add("11a-tts-2nd-record-old", "tts", "batch ts now, 2 records: 2nd has timestampDelta -2 days "
        "(maxTimestamp = now)", batch(record(0) + record(1, ts_delta=-2 * day), 2, 1))
    add("11b-tts-base-old-max-now", "tts", "baseTimestamp = now-2d, maxTimestamp = now, records deltas 2d, 0",
        batch(record(0, ts_delta=2 * day) + record(1, ts_delta=0), 2, 1, base_ts=NOW_MS - 2 * day, max_ts=NOW_MS))
    add("11c-tts-all-old", "tts", "one record, timestamp now-2d", batch(record(0), 1, 0, base_ts=NOW_MS - 2 * day))
    add("11d-tts-1st-old-gzip", "tts", "2 records gzip, 1st old (delta -2d), 2nd now",
        cbatch("gzip", record(0, ts_delta=-2 * day) + record(1), 2, 1))
    add("11e-t-future-2d", "t", "one record 2 days in the future (default message.timestamp.after.max.ms)",
        batch(record(0), 1, 0, base_ts=NOW_MS + 2 * day))
    add("11f-tts-both-old", "tts", "2 records both old", batch(record(0) + record(1), 2, 1, base_ts=NOW_MS - 2 * day))
    add("11g-tts-max-ts-wrong", "tts", "one record ts now, batch maxTimestamp = now-2d",
        batch(record(0), 1, 0, base_ts=NOW_MS, max_ts=NOW_MS - 2 * day))

    # 12: compacted topic
    add("12a-tc-nokey-uncompressed", "tc", "1 record without key", batch(record(0, key=None), 1, 0))
    add("12b-tc-nokey-gzip", "tc", "1 record without key, gzip", cbatch("gzip", record(0, key=None), 1, 0))
    add("12c-tc-2nd-nokey-uncompressed", "tc", "2 records, only the 2nd lacks a key",
        batch(record(0) + record(1, key=None), 2, 1))
    add("12d-tc-2nd-nokey-gzip", "tc", "2 records, only the 2nd lacks a key, gzip",
        cbatch("gzip", record(0) + record(1, key=None), 2, 1))
    add("12e-tc-1st-3rd-nokey", "tc", "3 records, 1st and 3rd lack a key",
        batch(record(0, key=None) + record(1) + record(2, key=None), 3, 2))
    add("12f-tc-1st-nokey-gzip", "tc", "2 records, only the 1st lacks a key, gzip",
        cbatch("gzip", record(0, key=None) + record(1), 2, 1))
    add("12g-tcts-nokey-and-old-ts", "tcts", "compact + before.max 1h: 1st record no key, 2nd record 2 days old",
        batch(record(0, key=None) + record(1, ts_delta=-2 * 86400000), 2, 1))
    add("12h-tcts-4-nokey", "tcts", "compact topic: 4 records all without key (record_errors beyond 3?)",
        batch(b"".join(record(i, key=None) for i in range(4)), 4, 3))

    # 13: sizes
    big_val = bytes(RND.getrandbits(8) for _ in range(1000)) * 1  # 1000 random bytes, repeated via distinct values
    recs = b"".join(record(i, value=big_val) for i in range(1500))
    big = batch(recs, 1500, 1499)
    add("13a-tseg-1.5MB", "tseg", "%d-byte valid batch to tseg (segment.bytes=1048576, max.message.bytes=2000000)"
        % len(big), big)
    add("13b-t-1.5MB", "t", "%d-byte valid batch to t (default max.message.bytes=1048588)" % len(big), big)

    # 14: count / lastOffsetDelta
    add("14a-count0-lod-1", "t", "count 0, lod -1, no records", batch(b"", 0, -1))
    add("14b-count0-lod0", "t", "count 0, lod 0, no records", batch(b"", 0, 0))
    add("14c-count3-lod5", "t", "3 valid records, count 3, lod 5", batch(r3, 3, 5))
    add("14d-count3-lod1", "t", "3 valid records, count 3, lod 1", batch(r3, 3, 1))
    add("14e-count3-lod5-gzip", "t", "3 valid records, count 3, lod 5, gzip", cbatch("gzip", r3, 3, 5))
    add("14f-count0-lod-1-gzip", "t", "count 0, lod -1, gzip of empty", cbatch("gzip", b"", 0, -1))

    # 15: timestamp type bit
    add("15a-attr-logappendtime", "t", "attributes bit 3 (LogAppendTime) set by client, CreateTime topic",
        batch(r3, 3, 2, attrs=0x08))
    add("15b-attr-logappendtime-tlat", "tlat", "attributes bit 3 set, topic message.timestamp.type=LogAppendTime",
        batch(r3, 3, 2, attrs=0x08))
    add("15c-createtime-to-tlat", "tlat", "plain CreateTime batch to LogAppendTime topic", batch(r3, 3, 2))
    add("15d-attr-logappendtime-gzip", "t", "attributes bit 3 set, gzip, CreateTime topic",
        cbatch("gzip", r3, 3, 2, attrs_extra=0x08))

    add("15e-attr-logappendtime-gzip-tlat", "tlat", "attributes bit 3 set, gzip, LogAppendTime topic",
        cbatch("gzip", r3, 3, 2, attrs_extra=0x08))
    add("15f-gzip-to-tlat", "tlat", "plain CreateTime gzip batch to LogAppendTime topic", cbatch("gzip", r3, 3, 2))

    # 16: max.decompressed.message.bytes (new in 4.4) on topic tdec = 1000
    v2000 = bytes(2000)
    add("16a-tdec-gzip-2000B-record", "tdec", "gzip, 1 record with a 2000-byte value (topic max.decompressed.message.bytes=1000)",
        cbatch("gzip", record(0, value=v2000), 1, 0))
    add("16b-tdec-uncompressed-2000B-record", "tdec", "uncompressed, 1 record with a 2000-byte value",
        batch(record(0, value=v2000), 1, 0))
    add("16c-tdec-zstd-2x600B", "tdec", "zstd, 2 records of 600-byte values (each < 1000, sum > 1000)",
        cbatch("zstd", record(0, value=bytes(600)) + record(1, value=bytes(600)), 2, 1))
    add("16d-tdec-zstd-2nd-2000B", "tdec", "zstd, 2 records: 10-byte value then 2000-byte value",
        cbatch("zstd", record(0, value=bytes(10)) + record(1, value=v2000), 2, 1))
    def rec_with_body(n):
        for vl in range(n, 0, -1):
            r = record(0, value=bytes(vl))
            if len(r) - len(varint(n)) == n and r.startswith(varint(n)):
                return r
        raise ValueError(n)
    add("16e-tdec-body-exactly-1000", "tdec", "gzip, 1 record whose body (sizeOfBodyInBytes) is exactly 1000 bytes",
        cbatch("gzip", rec_with_body(1000), 1, 0))
    add("16f-tdec-body-1001", "tdec", "gzip, 1 record whose body is 1001 bytes",
        cbatch("gzip", rec_with_body(1001), 1, 0))
    add("16g-tgz-uncompressed-to-gzip-topic-2000B", "tgz", "uncompressed 2000B record to gzip topic (control)",
        batch(record(0, value=v2000), 1, 0))
    add("09g-deltas-0-5-2-uncompressed-to-tgz", "tgz", "offset deltas 0,5,2 uncompressed batch to gzip topic",
        batch(bad_deltas, 3, 2))

    # extras
    add("x1-bad-crc", "t", "valid batch, CRC off by one", batch(r3, 3, 2, crc=(crc32c(b"x") + 1) & 0xFFFFFFFF))
    add("x2-magic1", "t", "magic byte 1 in a v2-layout batch", batch(r3, 3, 2, magic=1))
    add("x3-magic3", "t", "magic byte 3", batch(r3, 3, 2, magic=3))
    add("x4-batchlen-short", "t", "batchLength 10 bytes less than sent", batch(r3, 3, 2, batch_len_adjust=-10))
    add("x5-batchlen-long", "t", "batchLength 10 bytes more than sent", batch(r3, 3, 2, batch_len_adjust=10))
    add("x6-two-batches", "t", "two valid batches in one partition's records", batch(r3, 3, 2) + batch(r3, 3, 2))
    add("x7-control-bit", "t", "attributes control bit (0x20) set by client", batch(r3, 3, 2, attrs=0x20))
    add("x8-transactional-no-pid", "t", "attributes transactional bit (0x10), producerId -1",
        batch(r3, 3, 2, attrs=0x10))
    add("x9-base-offset-nonzero", "t", "valid batch with baseOffset 1000", batch(r3, 3, 2, base_offset=1000))
    add("x10-pid-without-idempotence", "t", "producerId 12345 epoch 0 seq 0 (never initialised)",
        batch(r3, 3, 2, producer_id=12345, producer_epoch=0, base_seq=0))
    add("x11-null-records", "t", "records field null", None)
    add("x12-empty-records", "t", "records field empty (0 bytes)", b"")
    add("x13-truncated-header", "t", "only 30 bytes of a batch header", batch(r3, 3, 2)[:30])
    add("x14-attr-unused-bits", "t", "attributes with unused bit 0x4000 set", batch(r3, 3, 2, attrs=0x4000))
    add("x15-record-attr-nonzero", "t", "record attributes byte = 0x7f", batch(record(0, attrs=0x7F), 1, 0))

    # 7: zstd bomb (last: slow)
    if not skip_bomb:
        total = 900 * 1000 * 1000
        bomb_zero = zstd_bomb(total)
        add("07a-zstd-bomb-zeros", "t", "zstd frame (%d bytes) -> %d zero bytes, count 1" % (len(bomb_zero), total),
            batch(bomb_zero, 1, 0, attrs=4))
        # one record whose value is ~900MB of zeros (record length varint says ~900MB)
        vlen = total - 20
        hdr = struct.pack(">b", 0) + varlong(0) + varint(0) + varint(-1) + varint(vlen)
        body_len = len(hdr) + vlen + 1
        prefix = varint(body_len) + hdr
        bomb_rec = zstd_bomb(len(prefix) + vlen + 1, prefix)
        add("07b-zstd-bomb-one-900MB-record", "t", "zstd frame (%d bytes) -> one record with a %d-byte value, count 1"
            % (len(bomb_rec), vlen), batch(bomb_rec, 1, 0, attrs=4))
        add("07c-zstd-bomb-valid-rec-then-zeros", "t", "zstd frame -> 1 valid record followed by ~900MB zeros, count 1",
            batch(zstd_bomb(total, record(0)), 1, 0, attrs=4))
        add("07e-zstd-bomb-one-900MB-record-tdec", "tdec", "as 07b but to topic max.decompressed.message.bytes=1000",
            batch(bomb_rec, 1, 0, attrs=4))
        add("07d-zstd-bomb-one-900MB-record-tgz", "tgz", "as 07b but to topic compression.type=gzip "
            "(full record read path: ByteBuffer.allocate(900MB) with a 512MB heap)", batch(bomb_rec, 1, 0, attrs=4))
    return C


TOPICS = [
    ("t", {}),
    ("tc", {"cleanup.policy": "compact"}),
    ("tseg", {"segment.bytes": "1048576", "max.message.bytes": "2000000"}),
    ("tts", {"message.timestamp.before.max.ms": "3600000"}),
    ("tlat", {"message.timestamp.type": "LogAppendTime"}),
    ("tgz", {"compression.type": "gzip"}),
    ("tdec", {"max.decompressed.message.bytes": "1000"}),
    ("tcts", {"cleanup.policy": "compact", "message.timestamp.before.max.ms": "3600000"}),
]


def broker_log_summary(lines):
    """Keep log lines that are not stack frames: the ERROR/WARN line, the exception line, 'Caused by:' lines."""
    out = []
    for ln in lines:
        st = ln.strip()
        if not st or st.startswith("at ") or st.startswith("... "):
            continue
        out.append(st[:600])
    return out[:12]


def main():
    args = sys.argv[1:]
    host, port = args[0].rsplit(":", 1)
    versions = [8, 11]
    out_path = None
    only = None
    skip_bomb = False
    broker_log = None
    i = 1
    while i < len(args):
        if args[i] == "--versions":
            versions = [int(v) for v in args[i + 1].split(",")]; i += 2
        elif args[i] == "--out":
            out_path = args[i + 1]; i += 2
        elif args[i] == "--only":
            only = args[i + 1].split(","); i += 2
        elif args[i] == "--broker-log":
            broker_log = args[i + 1]; i += 2
        elif args[i] == "--skip-bomb":
            skip_bomb = True; i += 1
        else:
            raise SystemExit("unknown arg " + args[i])
    port = int(port)
    c = Conn(host, port)
    err, av = api_versions(c)
    result = {"broker": "%s:%d" % (host, port), "produce_versions": av.get(0), "create_topics_versions": av.get(19),
              "now_ms_at_build": NOW_MS, "topics": {}, "results": []}
    print("ApiVersions: produce %s createTopics %s" % (av.get(0), av.get(19)), file=sys.stderr)
    for name, err, msg in create_topics(c, TOPICS):
        result["topics"][name] = {"error_code": err, "error_message": msg}
    # wait for leadership
    for name, _ in TOPICS:
        for _ in range(100):
            p = produce(c, versions[0], name, valid1())
            if p["error_code"] == 0:
                break
            time.sleep(0.2)
        else:
            # e.g. a topic config this broker does not know: its cases are answered without the topic.
            print("topic %s never became writable: %s" % (name, p), file=sys.stderr)
    cases = build_cases(skip_bomb=skip_bomb or (only is not None and not any(o.startswith("07") for o in only)))
    plan = [(ver, cse) for ver in versions for cse in cases if not cse[0].startswith("07")]
    plan += [(ver, cse) for ver in versions for cse in cases if cse[0].startswith("07") and not cse[0].startswith("07d")]
    plan += [(ver, cse) for ver in versions for cse in cases if cse[0].startswith("07d")]
    for ver, (cid, topic, desc, b) in plan:
            if only and not any(cid.startswith(o) for o in only):
                continue
            entry = {"case": cid, "produce_version": ver, "topic": topic, "description": desc,
                     "batch_bytes": None if b is None else len(b)}
            log_pos = os.path.getsize(broker_log) if broker_log else 0
            try:
                if cid.startswith("07"):
                    c.s.settimeout(600)
                elif cid.startswith("x11"):
                    c.s.settimeout(10)
                resp = produce(c, ver, topic, b)
                c.s.settimeout(60)
                resp["error_name"] = ERRORS.get(resp["error_code"], str(resp["error_code"]))
                entry["response"] = resp
            except Exception as e:  # connection closed etc.
                entry["exception"] = repr(e)
                c = Conn(host, port)
            try:
                f = produce(c, ver, topic, valid1())
                entry["followup_offset"] = f["base_offset"]
                entry["followup_error_code"] = f["error_code"]
            except Exception as e:
                entry["followup_exception"] = repr(e)
                c = Conn(host, port)
            if broker_log:
                time.sleep(0.05)
                with open(broker_log, "rb") as lf:
                    lf.seek(log_pos)
                    new = lf.read().decode(errors="replace").splitlines()
                entry["broker_log"] = broker_log_summary(new)
            print(json.dumps(entry), flush=True)
            result["results"].append(entry)
    if out_path:
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
