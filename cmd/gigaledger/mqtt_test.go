package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// startTestBroker starts Debian's mosquitto on a loopback port (anonymous) and stops it by PID
// when the test ends; it skips the test without one (`make mqtt-test` installs it), or fails it
// when GIGALEDGER_TEST_MOSQUITTO=1.
func startTestBroker(t *testing.T) string {
	t.Helper()
	binary, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/mosquitto"); statErr == nil {
			binary, err = "/usr/sbin/mosquitto", nil
		}
	}
	if err != nil {
		if os.Getenv("GIGALEDGER_TEST_MOSQUITTO") == "1" {
			t.Fatal("mosquitto not found, and GIGALEDGER_TEST_MOSQUITTO=1 requires it")
		}
		t.Skip("mosquitto not found; `make mqtt-test` installs it")
	}
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	config := filepath.Join(t.TempDir(), "mosquitto.conf")
	text := "listener " + port + " 127.0.0.1\nallow_anonymous true\n"
	if os.Geteuid() == 0 {
		text += "user root\n"
	}
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var output bytes.Buffer
	cmd := exec.Command(binary, "-c", config)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	testutil.EventuallyWithin(t, 15*time.Second, "mosquitto to accept connections", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return addr
}

// TestMQTTQueueDelivery: a configured MQTT queue (GigaWallet's [mqtt] and [mqtt.queues.NAME],
// here --mqtt-queue) publishes the events its types select to its topic, with the event type in
// it, at QoS 1, to a real mosquitto.
func TestMQTTQueueDelivery(t *testing.T) {
	broker := startTestBroker(t)
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, raftTiming: testRaftTiming}
	if err := (mqttQueueFlags{list: &cfg.MQTTQueues}).Set(`{"name":"invoices","broker":"` + broker + `","topic":"shop/{type}","types":["INV","ACC"]}`); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	received := map[string][]string{} // topic → event ids
	subscriber := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("test-subscriber"))
	if token := subscriber.Connect(); !token.WaitTimeout(10*time.Second) || token.Error() != nil {
		t.Fatalf("subscriber connect: %v", token.Error())
	}
	defer subscriber.Disconnect(100)
	if token := subscriber.Subscribe("shop/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		var envelope struct {
			EventType string `json:"event_type"`
			EventID   string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Payload(), &envelope); err != nil || m.Topic() != "shop/"+envelope.EventType {
			t.Errorf("message on %s: %s (%v)", m.Topic(), m.Payload(), err)
		}
		mu.Lock()
		received[m.Topic()] = append(received[m.Topic()], envelope.EventID)
		mu.Unlock()
	}); !token.WaitTimeout(10*time.Second) || token.Error() != nil {
		t.Fatalf("subscribe: %v", token.Error())
	}

	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	post := func(path, body string) {
		testutil.EventuallyWithin(t, 20*time.Second, "200 from "+path, func() bool {
			resp, err := http.Post("http://"+cfg.AdminAddr+path, "application/json", strings.NewReader(body))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode == http.StatusOK
		})
	}
	post("/account/shop", `{}`)
	post("/account/shop/invoice", `{"items":[{"type":"item","name":"Tea","quantity":1,"value":"2"}]}`)
	testutil.EventuallyWithin(t, 30*time.Second, "ACC_CREATED and INV_CREATED on their topics", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received["shop/ACC_CREATED"]) >= 1 && len(received["shop/INV_CREATED"]) >= 1
	})
}

// mqttCollector is an MQTT subscriber that keeps every event it receives, by arrival.
type mqttCollector struct {
	mu  sync.Mutex
	got []replayedEvent
}

func (c *mqttCollector) events() []replayedEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]replayedEvent(nil), c.got...)
}

// TestMQTTQueueAcrossLeaderKill: an MQTT queue configured on every node of a 3-node, 2-shard
// cluster receives every event the outboxes hold — at least once, a duplicate identical to the
// first, each shard's first arrivals in sequence order — across a stop of shard 0's leader while
// writes go on (issue 11's MQTT test).
func TestMQTTQueueAcrossLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	broker := startTestBroker(t)
	const nodeCount, shardCount = 3, 2
	g := newConfiguredGigaWalletCluster(t, nodeCount, shardCount, nil, func(cfg *serveConfig) {
		cfg.relayRetry = testRelayRetry
		if err := (mqttQueueFlags{list: &cfg.MQTTQueues}).Set(`{"name":"all","broker":"` + broker + `","topic":"gl/{type}","types":["ALL"],"clientId":"relay"}`); err != nil {
			t.Fatal(err)
		}
	})
	collector := &mqttCollector{}
	subscriber := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("failover-subscriber"))
	if token := subscriber.Connect(); !token.WaitTimeout(10*time.Second) || token.Error() != nil {
		t.Fatalf("subscriber connect: %v", token.Error())
	}
	defer subscriber.Disconnect(100)
	if token := subscriber.Subscribe("gl/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		var ev replayedEvent
		if err := json.Unmarshal(m.Payload(), &ev); err != nil {
			t.Errorf("payload %s: %v", m.Payload(), err)
			return
		}
		collector.mu.Lock()
		collector.got = append(collector.got, ev)
		collector.mu.Unlock()
	}); !token.WaitTimeout(10*time.Second) || token.Error() != nil {
		t.Fatalf("subscribe: %v", token.Error())
	}

	write := func(via int, prefix string, count int) {
		for k := range count {
			g.expect(via, false, http.MethodPost, fmt.Sprintf("/account/%s-%d", prefix, k), "{}", http.StatusOK)
		}
	}
	// waitAll waits until every event GET /events serves on node i has arrived, each copy equal
	// to what GET /events serves.
	waitAll := func(i int) []replayedEvent {
		t.Helper()
		outbox, _ := g.replayEvents(i, 1000)
		want := map[string]replayedEvent{}
		for _, ev := range outbox {
			want[ev.EventID] = ev
		}
		testutil.EventuallyWithin(t, clusterWaitMax, fmt.Sprintf("all %d events at the subscriber", len(outbox)), func() bool {
			got := map[string]bool{}
			for _, ev := range collector.events() {
				got[ev.EventID] = true
			}
			for id := range want {
				if !got[id] {
					return false
				}
			}
			return true
		})
		for _, ev := range collector.events() {
			if w, ok := want[ev.EventID]; !ok || !reflect.DeepEqual(ev, w) {
				t.Fatalf("received %+v; GET /events serves %+v", ev, w)
			}
		}
		return outbox
	}
	write(0, "before", 6)
	waitAll(0)

	victim := -1
	for i := range nodeCount {
		if g.node(i).cluster.Shard(0).IsLeader() {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatal("shard 0 has no leader")
	}
	survivor := (victim + 1) % nodeCount
	stopWriting, writerDone := make(chan struct{}), make(chan struct{})
	var written atomic.Int64
	go func() {
		defer close(writerDone)
		for k := 0; k < 10_000; k++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if status, _, err := g.send(g.configs[survivor].AdminAddr, http.MethodPost, fmt.Sprintf("/account/during-%d", k), "{}"); err == nil && status == http.StatusOK {
				written.Add(1)
			}
		}
	}()
	g.stop(victim)
	writtenAtStop := written.Load()
	testutil.EventuallyWithin(t, clusterWaitMax, "writes under a new leader", func() bool { return written.Load() >= writtenAtStop+8 })
	close(stopWriting)
	<-writerDone
	write(survivor, "after", 6)
	outbox := waitAll(survivor)

	seen := map[string]bool{}
	last := map[int]uint64{}
	for _, ev := range collector.events() {
		if seen[ev.EventID] {
			continue
		}
		seen[ev.EventID] = true
		if ev.Sequence <= last[ev.Shard] {
			t.Fatalf("shard %d: event %d first arrived after %d", ev.Shard, ev.Sequence, last[ev.Shard])
		}
		last[ev.Shard] = ev.Sequence
	}
	t.Logf("%d events in the outboxes, %d messages received", len(outbox), len(collector.events()))
}
