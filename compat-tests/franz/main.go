// franz-go driver of the strom compatibility suite (kgo + kadm + raw kmsg requests).
//
//	franz --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c [--call-timeout 30] [--scenario-timeout 120]
//
// Prints one line per scenario: "RESULT <scenario> PASS" or "RESULT <scenario> FAIL <reason>"
// (the protocol of compat-tests/drivers/common.py).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type ctxT struct {
	bootstrap, host, runID, scenario string
	port                             int32
	callTimeout                      time.Duration
	clients                          []*kgo.Client
}

func (c *ctxT) topic(suffix string) string {
	s := fmt.Sprintf("%s-franz-go-%s", c.scenario, c.runID)
	if suffix != "" {
		s += "-" + suffix
	}
	return s
}

// log prints a diagnostics line on stdout (kept in the client's log by compat-tests/run).
func (c *ctxT) log(format string, args ...any) {
	fmt.Printf("[franz-go %s] %s\n", c.scenario, fmt.Sprintf(format, args...))
}

func (c *ctxT) client(opts ...kgo.Opt) *kgo.Client {
	base := []kgo.Opt{kgo.SeedBrokers(c.bootstrap), kgo.ClientID("strom-compat-franz-go"),
		kgo.RetryTimeout(c.callTimeout), kgo.RequestTimeoutOverhead(c.callTimeout),
		// kadm answers from the client's metadata cache for up to MetadataMinAge (default 5s); keep it short so
		// "eventually" checks after create/delete do not wait for the cache.
		kgo.MetadataMinAge(100 * time.Millisecond)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		panic(failure{fmt.Sprintf("kgo.NewClient: %v", err)})
	}
	c.clients = append(c.clients, cl)
	return cl
}

func (c *ctxT) admin() *kadm.Client {
	a := kadm.NewClient(c.client())
	a.SetTimeoutMillis(int32(c.callTimeout / time.Millisecond))
	return a
}

func (c *ctxT) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.callTimeout)
}

type failure struct{ msg string }

func fail(format string, args ...any) { panic(failure{fmt.Sprintf(format, args...)}) }

func check(cond bool, format string, args ...any) {
	if !cond {
		fail(format, args...)
	}
}

func checkEq(actual, expected any, what string) {
	if !reflect.DeepEqual(actual, expected) {
		fail("%s: expected %v, got %v", what, expected, actual)
	}
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func eventually(c *ctxT, what string, probe func() (bool, string)) {
	deadline := time.Now().Add(c.callTimeout)
	for {
		ok, last := probe()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			fail("%s not reached within %v (last: %s)", what, c.callTimeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expectErr checks that err is (or wraps) the Kafka error want.
func expectErr(err error, want *kerr.Error, what string) {
	if err == nil {
		fail("%s: expected %s, got success", what, want.Message)
	}
	if !errors.Is(err, want) {
		fail("%s: expected %s, got %v", what, want.Message, err)
	}
}

func onlyBroker(c *ctxT, adm *kadm.Client) kadm.BrokerDetail {
	ctx, cancel := c.call()
	defer cancel()
	m, err := adm.BrokerMetadata(ctx)
	must(err, "BrokerMetadata")
	checkEq(len(m.Brokers), 1, "broker count")
	return m.Brokers[0]
}

func describe(c *ctxT, adm *kadm.Client, topic string) kadm.TopicDetail {
	ctx, cancel := c.call()
	defer cancel()
	tds, err := adm.ListTopics(ctx, topic)
	must(err, "ListTopics("+topic+")")
	td, ok := tds[topic]
	check(ok, "metadata lacks requested topic %s", topic)
	return td
}

func listNames(c *ctxT, adm *kadm.Client) []string {
	ctx, cancel := c.call()
	defer cancel()
	tds, err := adm.ListTopics(ctx)
	must(err, "ListTopics")
	return tds.Names()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func scMetadata(c *ctxT) {
	adm := c.admin()
	ctx, cancel := c.call()
	defer cancel()
	m, err := adm.BrokerMetadata(ctx)
	must(err, "BrokerMetadata")
	checkEq(len(m.Brokers), 1, "broker count")
	b := m.Brokers[0]
	checkEq(net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), c.bootstrap, "broker address")
	check(m.Cluster != "", "empty cluster id")
	checkEq(m.Controller, b.NodeID, "controller id")

	// The same through a raw Metadata request at the newest version both sides support.
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, c.client())
	must(err, "raw Metadata")
	checkEq(len(resp.Brokers), 1, "raw Metadata broker count")
	check(resp.ClusterID != nil && *resp.ClusterID == m.Cluster, "raw Metadata cluster id %v vs %s", resp.ClusterID, m.Cluster)
	checkEq(resp.ControllerID, b.NodeID, "raw Metadata controller id")
	checkEq(len(resp.Topics), 0, "raw Metadata topics for an empty topic list")
}

func scDescribeCluster(c *ctxT) {
	ctx, cancel := c.call()
	defer cancel()
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, c.client())
	must(err, "DescribeCluster")
	checkEq(resp.ErrorCode, int16(0), "DescribeCluster error code")
	check(resp.ClusterID != "", "empty cluster id")
	checkEq(len(resp.Brokers), 1, "broker count")
	b := resp.Brokers[0]
	checkEq(net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), c.bootstrap, "broker address")
	checkEq(resp.ControllerID, b.NodeID, "controller id")
	m, err := c.admin().BrokerMetadata(ctx)
	must(err, "BrokerMetadata")
	checkEq(resp.ClusterID, m.Cluster, "cluster id DescribeCluster vs Metadata")
}

func scTopicAdmin(c *ctxT) {
	adm := c.admin()
	bid := onlyBroker(c, adm).NodeID
	t, tc := c.topic("p3"), c.topic("cfg")
	ctx, cancel := c.call()
	defer cancel()
	r, err := adm.CreateTopic(ctx, 3, 1, nil, t)
	must(err, "CreateTopic")
	must(r.Err, "CreateTopic result")
	checkEq([]any{r.NumPartitions, r.ReplicationFactor}, []any{int32(3), int16(1)}, "CreateTopic result (partitions, RF)")
	rm, cp := "12345", "compact"
	r, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &rm, "cleanup.policy": &cp}, tc)
	must(err, "CreateTopic with configs")
	must(r.Err, "CreateTopic with configs result")
	names := listNames(c, adm)
	check(contains(names, t) && contains(names, tc), "ListTopics lacks the new topics: %v", names)

	td := describe(c, adm, t)
	must(td.Err, "describe")
	checkEq(td.Partitions.Numbers(), []int32{0, 1, 2}, "partition ids")
	for _, p := range td.Partitions.Sorted() {
		checkEq([]any{p.Leader, p.Replicas, p.ISR}, []any{bid, []int32{bid}, []int32{bid}},
			fmt.Sprintf("leader/replicas/isr of partition %d", p.Partition))
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, tc)
	must(err, "DescribeTopicConfigs")
	rc, err := rcs.On(tc, nil)
	must(err, "DescribeTopicConfigs On")
	must(rc.Err, "DescribeTopicConfigs result")
	cfg := map[string]kadm.Config{}
	for _, e := range rc.Configs {
		cfg[e.Key] = e
	}
	e := cfg["retention.ms"]
	checkEq([]any{e.MaybeValue(), e.Source}, []any{"12345", kmsg.ConfigSourceDynamicTopicConfig}, "retention.ms (value, source)")
	e = cfg["cleanup.policy"]
	checkEq([]any{e.MaybeValue(), e.Source}, []any{"compact", kmsg.ConfigSourceDynamicTopicConfig}, "cleanup.policy (value, source)")
	e = cfg["segment.bytes"]
	checkEq([]any{e.MaybeValue(), e.Source, e.Sensitive}, []any{"1073741824", kmsg.ConfigSourceDefaultConfig, false},
		"segment.bytes (value, source, sensitive)")

	cr, err := adm.UpdatePartitions(ctx, 5, t)
	must(err, "UpdatePartitions")
	must(cr.Error(), "UpdatePartitions result")
	eventually(c, "5 partitions", func() (bool, string) {
		n := len(describe(c, adm, t).Partitions)
		return n == 5, fmt.Sprint(n)
	})

	dr, err := adm.DeleteTopics(ctx, t, tc)
	must(err, "DeleteTopics")
	must(dr.Error(), "DeleteTopics result")
	eventually(c, "deleted topics gone from ListTopics", func() (bool, string) {
		n := listNames(c, adm)
		return !contains(n, t) && !contains(n, tc), fmt.Sprint(n)
	})
	eventually(c, "metadata of deleted topic -> UNKNOWN_TOPIC_OR_PARTITION", func() (bool, string) {
		td := describe(c, adm, t)
		return errors.Is(td.Err, kerr.UnknownTopicOrPartition), fmt.Sprint(td.Err)
	})
}

func scTopicErrors(c *ctxT) {
	adm := c.admin()
	t := c.topic("x")
	ctx, cancel := c.call()
	defer cancel()
	create := func(name string, parts int32, rf int16, configs map[string]*string) error {
		r, err := adm.CreateTopic(ctx, parts, rf, configs, name)
		if err != nil {
			return err
		}
		return r.Err
	}
	must(create(t, 3, 1, nil), "create")
	expectErr(create(t, 3, 1, nil), kerr.TopicAlreadyExists, "create existing")
	for _, bad := range []string{"bad/name", "..", strings.Repeat("a", 250)} {
		expectErr(create(bad, 1, 1, nil), kerr.InvalidTopicException, fmt.Sprintf("create %.20q", bad))
	}
	expectErr(create(c.topic("rf3"), 1, 3, nil), kerr.InvalidReplicationFactor, "replication factor 3")
	expectErr(create(c.topic("p0"), 0, 1, nil), kerr.InvalidPartitions, "0 partitions")
	cr, err := adm.UpdatePartitions(ctx, 2, t)
	must(err, "UpdatePartitions request")
	expectErr(cr.Error(), kerr.InvalidPartitions, "update partitions 3 -> 2")
	unknown := c.topic("nope")
	dr, err := adm.DeleteTopics(ctx, unknown)
	must(err, "DeleteTopics request")
	expectErr(dr.Error(), kerr.UnknownTopicOrPartition, "delete unknown")
	expectErr(describe(c, adm, unknown).Err, kerr.UnknownTopicOrPartition, "describe unknown")
	one := "1"
	expectErr(create(c.topic("badcfg"), 1, 1, map[string]*string{"no.such.config": &one}), kerr.InvalidConfig, "unknown config key")
	var leaked []string
	for _, n := range listNames(c, adm) {
		if strings.HasPrefix(n, c.topic("")) && n != t {
			leaked = append(leaked, n)
		}
	}
	check(len(leaked) == 0, "failed creates left topics behind: %v", leaked)
}

func scAutoCreate(c *ctxT) {
	adm := c.admin()
	t := c.topic("auto")
	expectErr(describe(c, adm, t).Err, kerr.UnknownTopicOrPartition, "topic absent before")
	cl := c.client(kgo.AllowAutoTopicCreation())
	// A Metadata request naming the topic with AllowAutoTopicCreation, as a franz-go producer sends it.
	eventually(c, "auto-created topic in Metadata", func() (bool, string) {
		ctx, cancel := c.call()
		defer cancel()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
		req.AllowAutoTopicCreation = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		if len(resp.Topics) != 1 {
			return false, fmt.Sprintf("%d topics", len(resp.Topics))
		}
		rt0 := resp.Topics[0]
		if rt0.ErrorCode != 0 {
			return false, kerr.ErrorForCode(rt0.ErrorCode).Error()
		}
		return len(rt0.Partitions) > 0, fmt.Sprintf("%d partitions", len(rt0.Partitions))
	})
	eventually(c, "auto-created topic in kadm ListTopics", func() (bool, string) {
		td := describe(c, adm, t)
		return td.Err == nil, fmt.Sprint(td.Err)
	})
	checkEq(len(describe(c, adm, t).Partitions), 1, "partitions of auto-created topic (num.partitions=1)")
}

var scenarios = map[string]func(*ctxT){
	"metadata":             scMetadata,
	"describe-cluster":     scDescribeCluster,
	"topic-admin":          scTopicAdmin,
	"topic-errors":         scTopicErrors,
	"auto-create":          scAutoCreate,
	"produce-consume":      scProduceConsume,
	"idempotent-producer":  scIdempotentProducer,
	"acks0":                scAcks0,
	"offsets-by-timestamp": scOffsetsByTimestamp,
	"restart-durability":   scRestartDurability,
	"transactions":         scTransactions,
	"transactions-offsets": scTransactionsOffsets,
	"transactions-fencing": scTransactionsFencing,
	"transactions-restart": scTransactionsRestart,
	"log-compaction":       scLogCompaction,
}

// ---------------------------------------------------------------------------------------------------------------
// Producing and consuming. The records have the same shapes as drivers/common.py builds: record i goes to
// partition i % partitions and must come back at offset i / partitions, with key (nil for every 10th), value,
// headers (none for every 4th) and timestamp base + i.

// nRecords per check in idempotent-producer and acks0; codecRecords per codec in produce-consume (the same for every
// library client, see drivers/common.py).
const (
	nRecords     = 10000
	codecRecords = 100000
)

var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func codecOf(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

type rec struct {
	Partition int32
	Offset    int64
	Key       *string
	Value     string
	Headers   []string
	Timestamp int64 // -1: not checked
}

func (r rec) String() string {
	k := "<nil>"
	if r.Key != nil {
		k = *r.Key
	}
	return fmt.Sprintf("{p%d o%d key=%s value=%.40q headers=%v ts=%d}", r.Partition, r.Offset, k, r.Value, r.Headers, r.Timestamp)
}

var filler = strings.Repeat("the quick brown fox jumps over the lazy dog; ", 4)

func expectedRecs(tag string, first, n, partitions int, base int64) []rec {
	out := make([]rec, 0, n)
	for i := first; i < first+n; i++ {
		r := rec{Partition: int32(i % partitions), Offset: int64(i / partitions),
			Value: fmt.Sprintf("value-%s-%06d|", tag, i) + filler[:40+i%97], Headers: []string{}, Timestamp: base + int64(i)}
		if i%10 != 0 {
			k := fmt.Sprintf("key-%d", i)
			r.Key = &k
		}
		if i%4 != 0 {
			r.Headers = []string{fmt.Sprintf("idx=%d", i), "tag=" + tag}
		}
		out = append(out, r)
	}
	return out
}

func baseTs() int64 { return (time.Now().Unix() - 3600) * 1000 }

func (r rec) toKgo(topic string) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Value: []byte(r.Value), Timestamp: time.UnixMilli(r.Timestamp)}
	if r.Key != nil {
		kr.Key = []byte(*r.Key)
	}
	for _, h := range r.Headers {
		kv := strings.SplitN(h, "=", 2)
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
	}
	return kr
}

func fromKgo(kr *kgo.Record) rec {
	r := rec{Partition: kr.Partition, Offset: kr.Offset, Value: string(kr.Value), Headers: []string{},
		Timestamp: kr.Timestamp.UnixMilli()}
	if kr.Key != nil {
		k := string(kr.Key)
		r.Key = &k
	}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, h.Key+"="+string(h.Value))
	}
	return r
}

// producer: manual partitioning (each record names its partition); idempotent unless opts disable it (kgo default).
// No RecordDeliveryTimeout: kgo measures it from the record's timestamp, which is an hour old here; produceAll bounds
// every Produce by its context instead.
func (c *ctxT) producer(opts ...kgo.Opt) *kgo.Client {
	return c.client(append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5 * time.Millisecond)},
		opts...)...)
}

// produceAll produces recs and waits for every promise; checkOffsets compares the acknowledged partition/offset.
// The call timeout bounds a stall (no acknowledgement for that long cancels the rest), not the whole run.
func produceAll(c *ctxT, cl *kgo.Client, topic string, recs []rec, checkOffsets bool, what string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var acked atomic.Int64
	var stalled atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		last, since := int64(-1), time.Now()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if n := acked.Load(); n != last {
					last, since = n, time.Now()
				} else if time.Since(since) > c.callTimeout+5*time.Second {
					stalled.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	krs := make([]*kgo.Record, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		krs[i] = r.toKgo(topic)
		wg.Add(1)
		i := i
		cl.Produce(ctx, krs[i], func(_ *kgo.Record, err error) { errs[i] = err; acked.Add(1); wg.Done() })
	}
	if err := cl.Flush(ctx); err != nil {
		fail("%s: Flush: %v (stalled: %v, %d of %d acknowledged)", what, err, stalled.Load(), acked.Load(), len(recs))
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			fail("%s: record %d: %v", what, i, err)
		}
		if checkOffsets && (krs[i].Partition != recs[i].Partition || krs[i].Offset != recs[i].Offset) {
			fail("%s: record %d acknowledged at partition %d offset %d, expected %d/%d", what, i, krs[i].Partition,
				krs[i].Offset, recs[i].Partition, recs[i].Offset)
		}
	}
}

// consumeAll reads partitions 0..partitions-1 (ConsumePartitions, no group) from the given offsets until n records
// came back or none came for the call timeout.
func consumeAll(c *ctxT, topic string, partitions int, n int, start func(p int32) kgo.Offset) []rec {
	offs := map[int32]kgo.Offset{}
	for p := 0; p < partitions; p++ {
		if start != nil {
			offs[int32(p)] = start(int32(p))
		} else {
			offs[int32(p)] = kgo.NewOffset().AtStart()
		}
	}
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	got := make([]rec, 0, n)
	deadline := time.Now().Add(c.callTimeout)
	for len(got) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() > 0 {
			deadline = time.Now().Add(c.callTimeout)
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				fail("fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(kr *kgo.Record) {
			if kr.Attrs.TimestampType() != 0 {
				fail("timestamp type %d at offset %d, expected 0 (CreateTime)", kr.Attrs.TimestampType(), kr.Offset)
			}
			got = append(got, fromKgo(kr))
		})
	}
	return got
}

// verifyRecs: per partition exactly the expected records in order (so offsets are consecutive), nothing missing.
func verifyRecs(got, want []rec, what string) {
	g, w := map[int32][]rec{}, map[int32][]rec{}
	for _, r := range got {
		g[r.Partition] = append(g[r.Partition], r)
	}
	for _, r := range want {
		w[r.Partition] = append(w[r.Partition], r)
	}
	var ps []int
	for p := range w {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	for p := range g {
		if _, ok := w[p]; !ok {
			fail("%s: records on unexpected partition %d", what, p)
		}
	}
	for _, pi := range ps {
		p := int32(pi)
		gp, wp := g[p], w[p]
		for j := 0; j < len(gp) && j < len(wp); j++ {
			e := wp[j]
			if e.Timestamp < 0 {
				e.Timestamp = gp[j].Timestamp
			}
			if !reflect.DeepEqual(gp[j], e) {
				fail("%s: partition %d record #%d: got %v, expected %v", what, p, j, gp[j], e)
			}
		}
		if len(gp) != len(wp) {
			fail("%s: partition %d has %d records, expected %d", what, p, len(gp), len(wp))
		}
	}
}

func checkEndOffsets(c *ctxT, adm *kadm.Client, topic string, want []rec, partitions int, what string) {
	ctx, cancel := c.call()
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topic)
	must(err, "ListEndOffsets")
	for p := 0; p < partitions; p++ {
		var n int64
		for _, r := range want {
			if r.Partition == int32(p) {
				n++
			}
		}
		o, ok := lo.Lookup(topic, int32(p))
		check(ok, "%s: no end offset for partition %d", what, p)
		must(o.Err, "end offset")
		checkEq(o.Offset, n, fmt.Sprintf("%s: end offset of partition %d", what, p))
	}
}

func createTopic(c *ctxT, adm *kadm.Client, topic string, partitions int32) {
	ctx, cancel := c.call()
	defer cancel()
	r, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	must(err, "CreateTopic "+topic)
	must(r.Err, "CreateTopic "+topic+" result")
}

func scProduceConsume(c *ctxT) {
	adm := c.admin()
	base := baseTs()
	for _, codec := range codecs {
		t0 := time.Now()
		t := c.topic(codec)
		createTopic(c, adm, t, 3)
		recs := expectedRecs(codec, 0, codecRecords, 3, base)
		// Idempotent with acks=all (kgo defaults), manual partitioning, 5 ms linger.
		produceAll(c, c.producer(kgo.ProducerBatchCompression(codecOf(codec))), t, recs, true, codec+": produce")
		t1 := time.Now()
		got := consumeAll(c, t, 3, len(recs), nil)
		t2 := time.Now()
		verifyRecs(got, recs, codec+" round trip")
		checkEndOffsets(c, adm, t, recs, 3, codec)
		t3 := time.Now()
		c.log("%s: %d records: produce %.1fs, consume %.1fs, verify %.1fs, total %.1fs", codec, codecRecords,
			t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t3.Sub(t2).Seconds(), t3.Sub(t0).Seconds())
	}
}

// franz-go producers are idempotent by default; check the records carry a producer id.
func scIdempotentProducer(c *ctxT) {
	adm := c.admin()
	t := c.topic("idem")
	createTopic(c, adm, t, 3)
	recs := expectedRecs("idem", 0, nRecords, 3, baseTs())
	produceAll(c, c.producer(kgo.MaxBufferedRecords(2000)), t, recs, true, "idempotent produce")
	got := consumeAll(c, t, 3, len(recs), nil)
	verifyRecs(got, recs, "idempotent round trip")
	checkEndOffsets(c, adm, t, recs, 3, "idempotent")
	// The batches are written with the producer id from InitProducerId (>= 0), not -1 as for non-idempotent ones.
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().AtStart()}}))
	ctx, cancel := c.call()
	defer cancel()
	fs := cl.PollRecords(ctx, 1)
	check(len(fs.Records()) > 0, "no record to inspect: %v", fs.Errors())
	r := fs.Records()[0]
	check(r.ProducerID >= 0, "record written with producer id %d, expected an idempotent producer id", r.ProducerID)
}

func scAcks0(c *ctxT) {
	adm := c.admin()
	t := c.topic("acks0")
	createTopic(c, adm, t, 3)
	recs := expectedRecs("acks0", 0, nRecords, 3, baseTs())
	produceAll(c, c.producer(kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()), t, recs, false, "acks=0 produce")
	// Fire and forget: poll until everything is readable.
	var got []rec
	eventually(c, "all acks=0 records readable", func() (bool, string) {
		got = consumeAll(c, t, 3, len(recs), nil)
		return len(got) >= len(recs), fmt.Sprintf("%d of %d", len(got), len(recs))
	})
	verifyRecs(got, recs, "acks=0 round trip")
	checkEndOffsets(c, adm, t, recs, 3, "acks=0")
}

func scOffsetsByTimestamp(c *ctxT) {
	adm := c.admin()
	t := c.topic("ts")
	createTopic(c, adm, t, 1)
	base := baseTs()
	const n = 100
	var recs []rec
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k%d", i)
		recs = append(recs, rec{Partition: 0, Offset: int64(i), Key: &k, Value: fmt.Sprintf("v%d", i), Headers: []string{},
			Timestamp: base + int64(i)*1000})
	}
	p := c.producer()
	for i := 0; i < n; i += 10 { // ten batches of ten: lookups land inside batches
		produceAll(c, p, t, recs[i:i+10], true, "produce")
	}
	ctx, cancel := c.call()
	defer cancel()
	lookup := func(lo kadm.ListedOffsets, err error) kadm.ListedOffset {
		must(err, "ListOffsets")
		o, ok := lo.Lookup(t, 0)
		check(ok, "ListOffsets: no answer for partition 0")
		must(o.Err, "ListOffsets partition 0")
		return o
	}
	for _, x := range []int64{base - 5000, base, base + 1, base + 5000, base + 5500, base + 42999, base + 99000, base + 99001, base + 1e9} {
		want := int64(n) // kadm reports "nothing at or after" as the end offset
		for i := 0; i < n; i++ {
			if base+int64(i)*1000 >= x {
				want = int64(i)
				break
			}
		}
		what := fmt.Sprintf("ListOffsetsAfterMilli(base%+d)", x-base)
		o := lookup(adm.ListOffsetsAfterMilli(ctx, x, t))
		if want < n {
			checkEq([]int64{o.Offset, o.Timestamp}, []int64{want, base + want*1000}, what+" (offset, timestamp)")
		} else {
			checkEq(o.Offset, want, what+" offset")
		}
	}
	checkEq(lookup(adm.ListStartOffsets(ctx, t)).Offset, int64(0), "ListStartOffsets")
	checkEq(lookup(adm.ListEndOffsets(ctx, t)).Offset, int64(n), "ListEndOffsets")
	checkEq(lookup(adm.ListCommittedOffsets(ctx, t)).Offset, int64(n), "ListCommittedOffsets (last stable offset)")
	mt := lookup(adm.ListMaxTimestampOffsets(ctx, t))
	checkEq([]int64{mt.Offset, mt.Timestamp}, []int64{n - 1, base + (n-1)*1000}, "ListMaxTimestampOffsets (offset, timestamp)")
	// The consumer starting at a timestamp (AfterMilli) and at an exact offset.
	got := consumeAll(c, t, 1, n-43, func(int32) kgo.Offset { return kgo.NewOffset().AfterMilli(base + 42500) })
	verifyRecs(got, recs[43:], "consume AfterMilli(base+42500)")
	got = consumeAll(c, t, 1, n-7, func(int32) kgo.Offset { return kgo.NewOffset().At(7) })
	verifyRecs(got, recs[7:], "consume At(7)")
}

func scRestartDurability(c *ctxT) {
	adm := c.admin()
	t := c.topic("durable")
	createTopic(c, adm, t, 2)
	const n = 3000
	base := baseTs()
	p := c.producer(kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	var all []rec
	for k, mode := range []string{"", "term", "kill"} {
		phase := "before restart"
		if mode != "" {
			phase = "after restart (SIG" + strings.ToUpper(mode) + ")"
			c.restartBroker(mode)
			eventually(c, "topic described "+phase, func() (bool, string) {
				td := describe(c, c.admin(), t)
				return td.Err == nil && len(td.Partitions) == 2, fmt.Sprint(td.Err, len(td.Partitions))
			})
		}
		recs := expectedRecs("durable", k*n, n, 2, base)
		produceAll(c, p, t, recs, true, phase)
		all = append(all, recs...)
	}
	verifyRecs(consumeAll(c, t, 2, len(all), nil), all, "after two restarts")
	checkEndOffsets(c, c.admin(), t, all, 2, "after two restarts")
}

var (
	stdinLines = make(chan string)
	stdinOnce  sync.Once
)

// restartBroker asks compat-tests/run to restart the broker ("term": SIGTERM, "kill": SIGKILL) on the same data dir
// and port and waits until it answers again (RESTART-BROKER on stdout, RESTARTED / RESTART-FAILED on stdin).
func (c *ctxT) restartBroker(mode string) {
	stdinOnce.Do(func() {
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				stdinLines <- sc.Text()
			}
			close(stdinLines)
		}()
	})
	fmt.Printf("RESTART-BROKER %s\n", mode)
	select {
	case line, ok := <-stdinLines:
		if !ok || !strings.HasPrefix(line, "RESTARTED") {
			fail("broker restart (%s) failed: %q", mode, line)
		}
	case <-time.After(240 * time.Second):
		fail("no answer to RESTART-BROKER %s within 240s", mode)
	}
}

func runOne(c *ctxT, fn func(*ctxT)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				err = errors.New(f.msg)
			} else {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	fn(c)
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

func main() {
	bootstrap := flag.String("bootstrap", "", "host:port")
	runID := flag.String("run-id", "run", "unique run id")
	names := flag.String("scenarios", "", "comma-separated scenario names")
	callTimeout := flag.Float64("call-timeout", 30, "seconds per client call")
	scenarioTimeout := flag.Float64("scenario-timeout", 120, "seconds per scenario")
	flag.Parse()
	host, portS, err := net.SplitHostPort(*bootstrap)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad --bootstrap:", err)
		os.Exit(2)
	}
	port, _ := strconv.Atoi(portS)
	list := strings.Split(*names, ",")
	for _, name := range list {
		if name == "" {
			continue
		}
		fn, ok := scenarios[name]
		if !ok {
			fmt.Printf("RESULT %s FAIL scenario not implemented by the franz-go driver\n", name)
			continue
		}
		c := &ctxT{bootstrap: *bootstrap, host: host, port: int32(port), runID: *runID, scenario: name,
			callTimeout: time.Duration(*callTimeout * float64(time.Second))}
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- runOne(c, fn) }()
		select {
		case err := <-done:
			if err == nil {
				fmt.Printf("RESULT %s PASS (%.1fs)\n", name, time.Since(start).Seconds())
			} else {
				fmt.Printf("RESULT %s FAIL %s\n", name, oneLine(err.Error()))
			}
		case <-time.After(time.Duration(*scenarioTimeout * float64(time.Second))):
			fmt.Printf("RESULT %s FAIL timed out after %.0fs\n", name, *scenarioTimeout)
		}
		for _, cl := range c.clients {
			go cl.Close()
		}
	}
	os.Exit(0)
}

// ---------------------------------------------------------------------------------------------------------------
// --member: one consumer-group member (kgo.ConsumerGroup), driven by compat-tests/drivers/groups.py; the line
// protocol is described in drivers/member.py. Offsets are committed synchronously after every non-empty poll while
// rebalances are blocked (BlockRebalanceOnPoll), so a revoked partition has everything consumed committed. With
// --commit-metadata the commit is a raw OffsetCommit carrying the member id, generation and metadata (kgo's own
// commit API sends no metadata), read back with kadm FetchOffsets.

func memberMain(args []string) {
	fs := flag.NewFlagSet("member", flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "", "host:port")
	group := fs.String("group", "", "group id")
	topic := fs.String("topic", "", "topic")
	session := fs.Int("session-timeout-ms", 6000, "")
	hb := fs.Int("heartbeat-ms", 1000, "")
	assignor := fs.String("assignor", "", "range|roundrobin|sticky|cooperative-sticky (default: kgo's)")
	meta := fs.String("commit-metadata", "", "")
	callTimeoutS := fs.Float64("call-timeout", 30, "")
	_ = fs.Parse(args)
	callTimeout := time.Duration(*callTimeoutS * float64(time.Second))
	var outMu sync.Mutex
	out := func(format string, a ...any) {
		outMu.Lock()
		fmt.Printf(format+"\n", a...)
		outMu.Unlock()
	}
	var curMu sync.Mutex
	current := map[int32]bool{}
	report := func() {
		var ps []int
		for p := range current {
			ps = append(ps, int(p))
		}
		sort.Ints(ps)
		s := "-"
		if len(ps) > 0 {
			var xs []string
			for _, p := range ps {
				xs = append(xs, strconv.Itoa(p))
			}
			s = strings.Join(xs, ",")
		}
		out("ASSIGNED %s", s)
	}
	change := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			curMu.Lock()
			defer curMu.Unlock()
			for _, p := range m[*topic] {
				if add {
					current[p] = true
				} else {
					delete(current, p)
				}
			}
			report()
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(*bootstrap), kgo.ClientID("strom-compat-franz-go-member"),
		kgo.ConsumerGroup(*group), kgo.ConsumeTopics(*topic), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(time.Duration(*session) * time.Millisecond),
		kgo.HeartbeatInterval(time.Duration(*hb) * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RetryTimeout(callTimeout), kgo.RequestTimeoutOverhead(callTimeout),
		kgo.OnPartitionsAssigned(change(true)), kgo.OnPartitionsRevoked(change(false)), kgo.OnPartitionsLost(change(false))}
	if os.Getenv("STROM_FRANZ_DEBUG") != "" { // diagnostics: kgo's debug log on stderr
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	switch *assignor {
	case "":
	case "range":
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	case "roundrobin":
		opts = append(opts, kgo.Balancers(kgo.RoundRobinBalancer()))
	case "sticky":
		opts = append(opts, kgo.Balancers(kgo.StickyBalancer()))
	case "cooperative-sticky":
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	default:
		out("ERROR unknown assignor %s", *assignor)
		os.Exit(0)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		out("ERROR kgo.NewClient: %v", err)
		os.Exit(0)
	}
	adm := kadm.NewClient(cl)
	stop := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "close" {
				break
			}
		}
		close(stop)
	}()
	out("READY")
	for {
		select {
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			cl.AllowRebalance()
			if err := cl.LeaveGroupContext(ctx); err != nil {
				out("ERROR LeaveGroup: %v", err)
			}
			cancel()
			cl.Close()
			out("CLOSED")
			os.Exit(0)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fetches := cl.PollRecords(ctx, 500)
		cancel()
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				// Retriable (e.g. broker restarting): kgo keeps retrying; logged, not fatal.
				fmt.Fprintf(os.Stderr, "fetch error %s/%d: %v\n", fe.Topic, fe.Partition, fe.Err)
			}
		}
		recs := fetches.Records()
		next := map[int32]int64{}
		for _, r := range recs {
			out("RECORD %d %d %s", r.Partition, r.Offset, string(r.Value))
			next[r.Partition] = r.Offset + 1
		}
		if len(recs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			if *meta == "" {
				if err := cl.CommitRecords(ctx, recs...); err != nil {
					if isRebalanceErr(err) {
						out("COMMIT-FAILED CommitRecords: %v", err)
					} else {
						out("ERROR CommitRecords: %v", err)
					}
				}
			} else {
				memberID, gen := cl.GroupMetadata()
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group, req.MemberID, req.Generation = *group, memberID, gen
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = *topic
				// OffsetCommit v10 (KIP-848) names a topic by its id only: without one, Kafka 4.4 (and
				// strom) answers UNKNOWN_TOPIC_ID; below v10 the name is sent.
				if tds, err := adm.ListTopics(ctx, *topic); err == nil {
					rt.TopicID = [16]byte(tds[*topic].ID)
				} else {
					out("ERROR ListTopics: %v", err)
				}
				for p, o := range next {
					rp := kmsg.NewOffsetCommitRequestTopicPartition()
					rp.Partition, rp.Offset, rp.Metadata, rp.LeaderEpoch = p, o, kmsg.StringPtr(*meta), -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					out("ERROR OffsetCommit: %v", err)
				} else {
					for _, t := range resp.Topics {
						for _, p := range t.Partitions {
							if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
								if isRebalanceErr(err) {
									out("COMMIT-FAILED OffsetCommit %s/%d: %v", t.Topic, p.Partition, err)
								} else {
									out("ERROR OffsetCommit %s/%d: %v", t.Topic, p.Partition, err)
								}
							}
						}
					}
				}
				fo, err := adm.FetchOffsets(ctx, *group)
				if err != nil {
					out("ERROR FetchOffsets: %v", err)
				} else {
					var ps []int
					for p := range next {
						ps = append(ps, int(p))
					}
					sort.Ints(ps)
					line := "COMMITTED"
					for _, p := range ps {
						o, ok := fo.Lookup(*topic, int32(p))
						if !ok {
							line += fmt.Sprintf(" %d:null:null", p)
						} else {
							line += fmt.Sprintf(" %d:%d:%s", p, o.At, o.Metadata)
						}
					}
					out("%s", line)
				}
			}
			cancel()
		}
		cl.AllowRebalance()
	}
}

// isRebalanceErr: a commit refused because the group moved on; the member rejoins and gets the records again.
func isRebalanceErr(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID)
}

func init() {
	if len(os.Args) > 1 && os.Args[1] == "--member" {
		memberMain(os.Args[2:])
		os.Exit(0)
	}
}
