// The log-compaction scenario of the franz-go driver (see main.go): the same input and expected list as
// drivers/common.py (log_compaction) and java/.../Compaction.java.
package main

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// compactionConfigs: aggressive cleaner settings; tombstones stay a day (delete.retention.ms), so the result is fixed.
var compactionConfigs = map[string]*string{
	"cleanup.policy": strp("compact"), "segment.ms": strp("100"), "min.cleanable.dirty.ratio": strp("0.01"),
	"delete.retention.ms": strp("86400000"),
}

// compactionWrites: (key, value) pairs, a nil value is a tombstone; compactionRoll is written after segment.ms so
// Kafka (which rolls only on an append) seals the segment holding the writes.
var compactionWrites = [][2]*string{{strp("k1"), strp("a1")}, {strp("k2"), strp("b1")}, {strp("k3"), strp("c1")},
	{strp("k1"), strp("a2")}, {strp("k2"), nil}, {strp("k4"), strp("d1")}, {strp("k1"), strp("a3")},
	{strp("k3"), strp("c2")}}
var compactionRoll = [][2]*string{{strp("s1"), strp("x")}}

// compactionExpected: "offset key value" of Apache Kafka 4.4.0's cleaned log.
var compactionExpected = []string{"4 k2 <nil>", "5 k4 d1", "6 k1 a3", "7 k3 c2", "8 s1 x"}

func strp(s string) *string { return &s }

func scLogCompaction(c *ctxT) {
	adm := c.admin()
	t := c.topic("")
	ctx, cancel := c.call()
	r, err := adm.CreateTopic(ctx, 1, 1, compactionConfigs, t)
	cancel()
	must(err, "CreateTopic "+t)
	must(r.Err, "CreateTopic "+t+" result")
	time.Sleep(500 * time.Millisecond)
	compactionProduce(c, t, compactionWrites)
	time.Sleep(1500 * time.Millisecond)
	compactionProduce(c, t, compactionRoll)
	deadline := time.Now().Add(30 * time.Second)
	for {
		last := compactionRead(c, t)
		if reflect.DeepEqual(last, compactionExpected) {
			return
		}
		if time.Now().After(deadline) {
			fail("log not cleaned to the expected records within 30s: expected %v, last read %v", compactionExpected, last)
		}
		time.Sleep(time.Second)
	}
}

func compactionProduce(c *ctxT, topic string, kvs [][2]*string) {
	cl := c.producer()
	defer cl.Close()
	for i, kv := range kvs {
		kr := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(*kv[0])}
		if kv[1] != nil {
			kr.Value = []byte(*kv[1])
		}
		ctx, cancel := c.call()
		err := cl.ProduceSync(ctx, kr).FirstErr()
		cancel()
		must(err, fmt.Sprintf("produce write %d", i))
	}
}

// compactionRead: "offset key value" of every record from the beginning up to the high watermark.
func compactionRead(c *ctxT, topic string) []string {
	adm := c.admin()
	ctx, cancel := c.call()
	ends, err := adm.ListEndOffsets(ctx, topic)
	cancel()
	must(err, "ListEndOffsets")
	end, ok := ends.Lookup(topic, 0)
	check(ok, "no end offset for %s/0", topic)
	must(end.Err, "end offset")
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	got := []string{}
	next := int64(0)
	deadline := time.Now().Add(c.callTimeout)
	for next < end.Offset && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(kr *kgo.Record) {
			v := "<nil>"
			if kr.Value != nil {
				v = string(kr.Value)
			}
			got = append(got, fmt.Sprintf("%d %s %s", kr.Offset, kr.Key, v))
			next = kr.Offset + 1
		})
	}
	return got
}
