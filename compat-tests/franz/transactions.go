// Transaction scenarios of the franz-go driver (see main.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ---------------------------------------------------------------------------------------------------------------
// Transactions (KIP-98, KIP-447): the same checks as drivers/confluent.py and java/.../Transactions.java. Record keys
// are tag+i, values "v-"+key, record i of a transaction to partition i % partitions.

func txnKeys(tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", tag, i)
	}
	return out
}

// txnProducer: a transactional client (manual partitioning, 5 ms linger) with the given transaction timeout.
func (c *ctxT) txnProducer(id string, timeout time.Duration, opts ...kgo.Opt) *kgo.Client {
	return c.producer(append([]kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(timeout)}, opts...)...)
}

// txnSend produces keys (key i to partition i % partitions) and waits for every acknowledgement.
func txnSend(c *ctxT, cl interface {
	ProduceSync(context.Context, ...*kgo.Record) kgo.ProduceResults
}, topic string, keys []string, partitions int, what string) {
	rs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		rs[i] = &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte(k), Value: []byte("v-" + k)}
	}
	ctx, cancel := c.call()
	defer cancel()
	must(cl.ProduceSync(ctx, rs...).FirstErr(), what)
}

// readIsolated returns "partition:offset:key" of every record of the topic a consumer with the given isolation level
// gets (ConsumePartitions from the start, no group), sorted; it stops once nothing came for idle after the first
// record (or after the call timeout with none).
func readIsolated(c *ctxT, topic string, partitions int, committed bool, idle time.Duration) []string {
	offs := map[int32]kgo.Offset{}
	for p := 0; p < partitions; p++ {
		offs[int32(p)] = kgo.NewOffset().AtStart()
	}
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap), kgo.ClientID("strom-compat-franz-go"),
		kgo.RetryTimeout(c.callTimeout), kgo.RequestTimeoutOverhead(c.callTimeout),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}), kgo.FetchIsolationLevel(level),
		kgo.FetchMaxWait(200*time.Millisecond))
	must(err, "kgo.NewClient (reader)")
	defer cl.Close()
	got := []string{}
	deadline := time.Now().Add(c.callTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				fail("fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, fmt.Sprintf("%d:%d:%s", r.Partition, r.Offset, r.Key))
			n++
		})
		if n > 0 {
			deadline = time.Now().Add(idle)
		} else if len(got) > 0 && time.Now().Add(idle).Before(deadline) {
			deadline = time.Now().Add(idle)
		}
	}
	sort.Strings(got)
	return got
}

// endOffsets: the end offset of each partition, read_uncommitted (high watermark, kadm ListEndOffsets) or
// read_committed (last stable offset, kadm ListCommittedOffsets).
func endOffsets(c *ctxT, adm *kadm.Client, topic string, partitions int, committed bool) []int64 {
	ctx, cancel := c.call()
	defer cancel()
	var lo kadm.ListedOffsets
	var err error
	if committed {
		lo, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		lo, err = adm.ListEndOffsets(ctx, topic)
	}
	must(err, "ListOffsets")
	out := make([]int64, partitions)
	for p := 0; p < partitions; p++ {
		o, ok := lo.Lookup(topic, int32(p))
		check(ok, "ListOffsets: no answer for partition %d", p)
		must(o.Err, fmt.Sprintf("ListOffsets partition %d", p))
		out[p] = o.Offset
	}
	return out
}

func endTxn(c *ctxT, cl *kgo.Client, commit bool, what string) {
	ctx, cancel := c.call()
	defer cancel()
	must(cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)), what)
}

func scTransactions(c *ctxT) {
	adm := c.admin()
	t := c.topic("data")
	createTopic(c, adm, t, 2)
	p := c.txnProducer(c.topic("tid"), 60*time.Second)
	// Committed, aborted, committed: 5 records per partition each, and a marker after each transaction.
	for _, x := range []struct {
		tag    string
		commit bool
	}{{"c", true}, {"a", false}, {"d", true}} {
		must(p.BeginTransaction(), "BeginTransaction")
		txnSend(c, p, t, txnKeys(x.tag, 10), 2, "produce "+x.tag)
		endTxn(c, p, x.commit, fmt.Sprintf("EndTransaction(commit=%v)", x.commit))
	}
	want := []string{}
	for i, k := range txnKeys("c", 10) {
		want = append(want, fmt.Sprintf("%d:%d:%s", i%2, i/2, k))
	}
	for i, k := range txnKeys("d", 10) {
		want = append(want, fmt.Sprintf("%d:%d:%s", i%2, 12+i/2, k))
	}
	sort.Strings(want)
	checkEq(readIsolated(c, t, 2, true, 2*time.Second), want, "read_committed records (partition:offset:key)")
	unc := readIsolated(c, t, 2, false, 2*time.Second)
	checkEq(len(unc), 30, "read_uncommitted record count (committed and aborted)")
	offsets := map[string]bool{}
	for _, s := range unc {
		offsets[strings.Split(s, ":")[1]] = true
	}
	var seen []int
	for o := range offsets {
		n, _ := strconv.Atoi(o)
		seen = append(seen, n)
	}
	sort.Ints(seen)
	var wantOffs []int
	for o := 0; o < 17; o++ {
		if o != 5 && o != 11 {
			wantOffs = append(wantOffs, o)
		}
	}
	checkEq(seen, wantOffs, "read_uncommitted offsets (markers at 5 and 11)")
	checkEq(endOffsets(c, adm, t, 2, false), []int64{18, 18}, "end offsets (markers included)")

	// An open transaction holds read_committed consumers at its first offset (the last stable offset).
	must(p.BeginTransaction(), "BeginTransaction (left open)")
	txnSend(c, p, t, txnKeys("open", 2), 2, "produce open")
	checkEq(readIsolated(c, t, 2, true, time.Second), want, "read_committed while a transaction is open")
	checkEq(len(readIsolated(c, t, 2, false, time.Second)), 32, "read_uncommitted sees the open one")
	checkEq(endOffsets(c, adm, t, 2, true), []int64{18, 18}, "read_committed end offsets = last stable offsets while a transaction is open")
	checkEq(endOffsets(c, adm, t, 2, false), []int64{19, 19}, "high watermarks while a transaction is open")
	endTxn(c, p, true, "EndTransaction(commit) of the open one")
	checkEq(len(readIsolated(c, t, 2, true, 2*time.Second)), 22, "read_committed after the commit")
}

// Consume-transform-produce with a kgo.GroupTransactSession (group member, read_committed, offsets committed in the
// transaction with the member id and generation, KIP-447). kgo sends the consumed offsets only when a session ends
// with a commit; the aborted round sends them itself (AddOffsetsToTxn + TxnOffsetCommit with the session's producer
// id/epoch and group member id/generation, the requests kgo sends when committing) so that the broker has transactional
// offsets to drop on the abort.
func scTransactionsOffsets(c *ctxT) {
	adm := c.admin()
	src, dst := c.topic("src"), c.topic("dst")
	createTopic(c, adm, src, 1)
	createTopic(c, adm, dst, 1)
	plain := c.producer()
	txnSend(c, plain, src, txnKeys("k", 20), 1, "produce source records")
	group := c.topic("group")
	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(c.bootstrap), kgo.ClientID("strom-compat-franz-go"),
		kgo.RetryTimeout(c.callTimeout), kgo.RequestTimeoutOverhead(c.callTimeout),
		kgo.TransactionalID(c.topic("tid")), kgo.TransactionTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(src), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))
	must(err, "NewGroupTransactSession")
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	for round, commit := range []bool{true, false} {
		var got []*kgo.Record
		deadline := time.Now().Add(c.callTimeout)
		for len(got) < 10 && time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			fs := s.PollRecords(ctx, 10-len(got))
			cancel()
			for _, fe := range fs.Errors() {
				if !errors.Is(fe.Err, context.DeadlineExceeded) {
					fail("fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
				}
			}
			got = append(got, fs.Records()...)
		}
		checkEq(len(got), 10, fmt.Sprintf("records consumed in round %d", round))
		must(s.Begin(), "Begin")
		keys := make([]string, len(got))
		for i, r := range got {
			keys[i] = string(r.Key)
		}
		txnSend(c, s, dst, keys, 1, fmt.Sprintf("produce round %d", round))
		ctx, cancel := c.call()
		if !commit {
			cl := s.Client()
			id, epoch, err := cl.ProducerID(ctx)
			must(err, "ProducerID")
			add := kmsg.NewPtrAddOffsetsToTxnRequest()
			add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = c.topic("tid"), id, epoch, group
			addResp, err := add.RequestWith(ctx, cl)
			must(err, "AddOffsetsToTxn")
			must(kerr.ErrorForCode(addResp.ErrorCode), "AddOffsetsToTxn error code")
			member, gen := cl.GroupMetadata()
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = c.topic("tid"), group, id, epoch
			req.MemberID, req.Generation = member, gen
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = src, [16]byte(describe(c, adm, src).ID) // the name up to v5, the topic id from v6
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = 0, got[len(got)-1].Offset+1, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			must(err, "TxnOffsetCommit")
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					must(kerr.ErrorForCode(p.ErrorCode), fmt.Sprintf("TxnOffsetCommit %s/%d", t.Topic, p.Partition))
				}
			}
		}
		committed, err := s.End(ctx, kgo.TransactionEndTry(commit))
		cancel()
		must(err, fmt.Sprintf("End(commit=%v) round %d", commit, round))
		checkEq(committed, commit, fmt.Sprintf("transaction of round %d committed", round))
	}
	s.Close()
	closed = true
	ctx, cancel := c.call()
	defer cancel()
	fo, err := adm.FetchOffsets(ctx, group)
	must(err, "FetchOffsets")
	o, ok := fo.Lookup(src, 0)
	check(ok, "no committed offset for %s/0", src)
	must(o.Err, "FetchOffsets partition 0")
	checkEq(o.At, int64(10), "committed offset (the aborted transaction's offsets are dropped)")
	want := []string{}
	for i, k := range txnKeys("k", 10) {
		want = append(want, fmt.Sprintf("0:%d:%s", i, k))
	}
	sort.Strings(want)
	checkEq(readIsolated(c, dst, 1, true, 2*time.Second), want, "read_committed output")
}

func scTransactionsFencing(c *ctxT) {
	adm := c.admin()
	t := c.topic("data")
	createTopic(c, adm, t, 1)
	tid := c.topic("tid")
	old := c.txnProducer(tid, 60*time.Second)
	must(old.BeginTransaction(), "BeginTransaction (old)")
	txnSend(c, old, t, []string{"zombie"}, 1, "produce zombie") // kgo initializes the producer id on the first produce
	fresh := c.txnProducer(tid, 60*time.Second)
	must(fresh.BeginTransaction(), "BeginTransaction (new)")
	txnSend(c, fresh, t, []string{"new"}, 1, "produce new") // InitProducerId: fences old, aborts its transaction
	endTxn(c, fresh, true, "EndTransaction(commit) (new)")
	ctx, cancel := c.call()
	err := old.EndTransaction(ctx, kgo.TryCommit)
	cancel()
	check(err != nil, "the fenced producer committed")
	c.log("fenced producer: %v", err)
	// EndTxn v2+ reports PRODUCER_FENCED (fatal for the client; older versions say INVALID_PRODUCER_EPOCH).
	check(errors.Is(err, kerr.ProducerFenced), "the fenced producer's commit failed with %v, expected PRODUCER_FENCED", err)
	checkEq(readIsolated(c, t, 1, true, 2*time.Second), []string{"0:2:new"}, "only the new producer's record")

	// Left open past its transaction timeout: the coordinator aborts it (its periodic check runs every 10 s).
	slow := c.txnProducer(c.topic("slow"), 2*time.Second)
	must(slow.BeginTransaction(), "BeginTransaction (slow)")
	txnSend(c, slow, t, []string{"timed-out"}, 1, "produce timed-out")
	deadline := time.Now().Add(40 * time.Second)
	for {
		lso, hw := endOffsets(c, adm, t, 1, true)[0], endOffsets(c, adm, t, 1, false)[0]
		if lso == hw {
			c.log("timed-out transaction aborted: end offset %d", hw)
			break
		}
		check(time.Now().Before(deadline), "the timed-out transaction was not aborted in 40 s (last stable offset %d, high watermark %d)", lso, hw)
		time.Sleep(500 * time.Millisecond)
	}
	ctx, cancel = c.call()
	err = slow.EndTransaction(ctx, kgo.TryCommit)
	cancel()
	check(err != nil, "a transaction aborted by its timeout committed")
	c.log("timed-out producer: %v", err)
	checkEq(readIsolated(c, t, 1, true, 2*time.Second), []string{"0:2:new"}, "the timed-out record is gone")
}

// The broker is SIGKILLed with a transaction open, twice: the producer carries on with the same transaction, which
// then commits (and, the second time, aborts) exactly as it would have without the crash.
func scTransactionsRestart(c *ctxT) {
	adm := c.admin()
	t := c.topic("data")
	createTopic(c, adm, t, 1)
	p := c.txnProducer(c.topic("tid"), 60*time.Second)
	must(p.BeginTransaction(), "BeginTransaction")
	txnSend(c, p, t, txnKeys("a", 10), 1, "produce a")
	c.restartBroker("kill")
	txnSend(c, p, t, txnKeys("b", 10), 1, "produce b (after the first crash)")
	endTxn(c, p, true, "EndTransaction(commit) after the first crash")
	must(p.BeginTransaction(), "BeginTransaction (x)")
	txnSend(c, p, t, txnKeys("x", 5), 1, "produce x")
	c.restartBroker("kill")
	endTxn(c, p, false, "EndTransaction(abort) after the second crash")
	must(p.BeginTransaction(), "BeginTransaction (c)")
	txnSend(c, p, t, txnKeys("c", 3), 1, "produce c")
	endTxn(c, p, true, "EndTransaction(commit) of c")
	want := []string{}
	for i, k := range append(txnKeys("a", 10), txnKeys("b", 10)...) {
		want = append(want, fmt.Sprintf("0:%d:%s", i, k))
	}
	for i, k := range txnKeys("c", 3) {
		want = append(want, fmt.Sprintf("0:%d:%s", 27+i, k))
	}
	sort.Strings(want)
	checkEq(readIsolated(c, t, 1, true, 2*time.Second), want, "read_committed records after two crashes")
	checkEq(endOffsets(c, adm, t, 1, false), []int64{31}, "high watermark (three markers)")
}
