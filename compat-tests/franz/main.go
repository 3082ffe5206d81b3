// franz-go driver of the strom compatibility suite (kgo + kadm + raw kmsg requests).
//
//	franz --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c [--call-timeout 30] [--scenario-timeout 120]
//
// Prints one line per scenario: "RESULT <scenario> PASS" or "RESULT <scenario> FAIL <reason>"
// (the protocol of compat-tests/drivers/common.py).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
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
	"metadata":         scMetadata,
	"describe-cluster": scDescribeCluster,
	"topic-admin":      scTopicAdmin,
	"topic-errors":     scTopicErrors,
	"auto-create":      scAutoCreate,
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
