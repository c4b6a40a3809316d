package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a running cluster of test servers with clustered JetStream,
// each on its own loopback client and route ports and its own store. Its
// methods are for the test's goroutine.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// account is the global account, which holds the streams of clients that
// connect without credentials.
const account = "$G"

// readyWithin bounds how long RunCluster and Restart wait for the cluster
// (a JetStream meta leader, every node current).
const readyWithin = 30 * time.Second

// RunCluster starts n servers (n ≥ 1) forming one cluster with JetStream,
// and waits until they have formed it: a JetStream meta leader that sees
// every node, and every node current. The servers are named n0, n1, …;
// each has explicit routes to every other, so a node restarted in place
// (Restart) rejoins, and clients (Connect) reconnect to any of them. They
// stop when the test ends. mods change each node's options before it
// starts, as Run's do.
//
// A node that stops takes its raft groups' leadership with it: until the
// rest have elected new leaders (within a second or so here, as they see
// its routes close), JetStream requests to what it led go unanswered or
// time out, and a client retries them (a publish with a message id, so a
// retry of one that was stored is dropped as a duplicate).
func RunCluster(t testing.TB, n int, mods ...func(*server.Options)) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster of %d servers", n)
	}
	ports := freePorts(t, n)
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))}
	}
	c := &Cluster{t: t}
	for i := range n {
		s := &Server{t: t, opts: server.Options{
			ServerName: "n" + strconv.Itoa(i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "switchyard-test",
				Host: "127.0.0.1",
				Port: ports[i],
			},
			// Routes to itself are ignored: every node gets the same list.
			Routes: routes,
		}}
		for _, m := range mods {
			m(&s.opts)
		}
		s.run()
		c.nodes = append(c.nodes, s)
	}
	c.waitReady()
	return c
}

// freePorts finds n distinct loopback ports that are free now. A route
// port must be known before any node starts, as every node routes to
// every other; another process may take one meanwhile, which fails the
// start loudly rather than flakily.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: free port: %v", err)
		}
		// Held until all are found, so that none is found twice.
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// URLs is the nodes' client URLs, comma-separated (as nats.url and
// nats.Connect take them).
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// Len is the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// Node is node i, to read or change it alone.
func (c *Cluster) Node(i int) *Server { return c.nodes[i] }

// Stop shuts node i down (its clients reconnect to the others); it is
// idempotent.
func (c *Cluster) Stop(i int) { c.nodes[i].Stop() }

// Restart starts node i again (stopping it first if it runs), on its
// ports and store, and waits until it has rejoined: the cluster has a
// meta leader that sees every node, and every node is current.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.nodes[i].Restart()
	c.waitReady()
}

// MetaLeader is the index of the node leading JetStream's meta group, or
// -1 while there is none.
func (c *Cluster) MetaLeader() int {
	for i, s := range c.nodes {
		if s.srv != nil && s.srv.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader is the index of the node leading stream (of clients
// without credentials), or -1 while none does.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.nodes {
		if s.srv != nil && s.srv.JetStreamIsStreamLeader(account, stream) {
			return i
		}
	}
	return -1
}

// waitReady waits until the running nodes have a meta leader that sees
// them all as peers, and all are current; it fails the test after
// readyWithin.
func (c *Cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(readyWithin)
	for {
		state := c.ready()
		if state == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster not ready after %v: %s", readyWithin, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready says what the cluster still lacks, or "" when it is ready.
func (c *Cluster) ready() string {
	leader := c.MetaLeader()
	if leader < 0 {
		return "no JetStream meta leader"
	}
	running := 0
	for i, s := range c.nodes {
		if s.srv == nil {
			continue
		}
		running++
		if !s.srv.JetStreamIsCurrent() {
			return fmt.Sprintf("node %d not current", i)
		}
	}
	if peers := c.nodes[leader].srv.JetStreamClusterPeers(); len(peers) != running {
		return fmt.Sprintf("the meta leader (node %d) sees %d peers %v of %d running", leader, len(peers), peers, running)
	}
	return ""
}

// Connect returns a client connection to the cluster (any node, and the
// others when that one stops), closed when the test ends.
func (c *Cluster) Connect(opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection.
func (c *Cluster) JetStream() jetstream.JetStream {
	c.t.Helper()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}
