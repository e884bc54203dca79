package brokertest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestCluster is a JetStream cluster of embedded nats-servers routed on
// loopback, for tests of what happens on a real cluster: replicated streams,
// leader elections, a node going away. Servers are numbered 0 to n-1.
type TestCluster struct {
	t    testing.TB
	name string

	mu      sync.Mutex
	servers []*server.Server // nil while a server is shut down
	opts    []*server.Options
}

// clusterReadyTimeout bounds the wait for a meta leader and for servers to
// start.
const clusterReadyTimeout = 30 * time.Second

// Cluster starts n (at least 2) nats-servers with JetStream, each on random
// client and cluster ports of 127.0.0.1 with storage in its own t.TempDir(),
// routed to each other, and waits until JetStream has elected its meta
// leader. Everything is shut down in t.Cleanup.
//
// Random ports and explicit routes need a bootstrap: JetStream clustering
// wants routes configured when it starts, and a server's cluster port is
// known only once it listens. So server 0 starts first without JetStream,
// the others start routed to it with JetStream, and server 0 is restarted on
// the same ports with JetStream and routes to them.
func Cluster(t testing.TB, n int) *TestCluster {
	t.Helper()
	if n < 2 {
		t.Fatalf("brokertest: a cluster needs at least 2 servers, got %d", n)
	}
	c := &TestCluster{t: t, name: fmt.Sprintf("brokertest-%d", time.Now().UnixNano()),
		servers: make([]*server.Server, n), opts: make([]*server.Options, n)}
	stores := make([]string, n)
	for i := range stores {
		stores[i] = t.TempDir()
	}
	// After the TempDirs, so that it runs before they are removed.
	t.Cleanup(c.shutdownAll)

	for i := range n {
		c.opts[i] = &server.Options{
			ServerName:             fmt.Sprintf("%s-n%d", c.name, i),
			Host:                   "127.0.0.1",
			Port:                   -1,
			JetStream:              i > 0,
			StoreDir:               stores[i],
			NoSigs:                 true,
			NoLog:                  true,
			DisableJetStreamBanner: true,
			Cluster: server.ClusterOpts{
				Name: c.name,
				Host: "127.0.0.1",
				Port: -1,
			},
		}
		if i > 0 {
			c.opts[i].Routes = []*url.URL{c.routeURL(0)}
		}
		c.start(i)
	}
	// Server 0 comes back with JetStream and routes to the others, on the
	// same ports. (Enabling JetStream on the running server instead leaves
	// the meta leader believing it has none until its next periodic
	// statistics, up to a minute later, so R3 placements fail meanwhile.)
	c.Shutdown(0)
	c.opts[0].JetStream = true
	c.Restart(0)
	c.WaitMetaLeader()
	return c
}

func cloneOpts(o *server.Options) *server.Options {
	cp := *o
	cp.Routes = append([]*url.URL(nil), o.Routes...)
	return &cp
}

// start starts server i with c.opts[i] and, the first time, pins the ports
// it got so that a restart comes back on the same addresses.
func (c *TestCluster) start(i int) {
	c.t.Helper()
	srv, err := server.NewServer(cloneOpts(c.opts[i]))
	if err != nil {
		c.t.Fatalf("brokertest: server %d options: %v", i, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(clusterReadyTimeout) {
		srv.Shutdown()
		c.t.Fatalf("brokertest: server %d not ready for connections after %s", i, clusterReadyTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers[i] = srv
	if c.opts[i].Port == -1 {
		c.opts[i].Port = srv.Addr().(*net.TCPAddr).Port
		c.opts[i].Cluster.Port = srv.ClusterAddr().Port
	}
}

func (c *TestCluster) routeURL(i int) *url.URL {
	return &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.opts[i].Cluster.Port))}
}

func (c *TestCluster) routesExcept(i int) []*url.URL {
	var routes []*url.URL
	for j := range c.opts {
		if j != i {
			routes = append(routes, c.routeURL(j))
		}
	}
	return routes
}

// Server returns server i, or nil while it is shut down.
func (c *TestCluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// ClientURLs are the client URLs of all servers, running or not.
func (c *TestCluster) ClientURLs() []string {
	var urls []string
	for i := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port))
	}
	return urls
}

// ClientURL is [TestCluster.ClientURLs] joined by commas, as
// [broker.ConnConfig.URL] takes it.
func (c *TestCluster) ClientURL() string { return strings.Join(c.ClientURLs(), ",") }

// WaitMetaLeader waits until a running server is the JetStream meta leader
// and knows every running server as a JetStream peer (until then it cannot
// place a stream with as many replicas as servers).
func (c *TestCluster) WaitMetaLeader() {
	c.t.Helper()
	c.waitUntil("a JetStream meta leader that knows every server", func() bool {
		running := 0
		var leader *server.Server
		for i := range c.opts {
			if s := c.Server(i); s != nil {
				running++
				if s.JetStreamIsLeader() {
					leader = s
				}
			}
		}
		return leader != nil && len(leader.JetStreamClusterPeers()) >= running
	})
}

// StreamLeader returns the index of the server leading stream (in the
// default account), waiting until it has one.
func (c *TestCluster) StreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	c.waitUntil("a leader of stream "+stream, func() bool {
		for i := range c.opts {
			if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// WaitStreamCurrent waits until every running server holds an up-to-date
// replica of stream (in the default account). Wait for it after
// [TestCluster.Restart] before a test ends: a server shut down while it
// still creates its replica can leave that replica's goroutines behind.
func (c *TestCluster) WaitStreamCurrent(stream string) {
	c.t.Helper()
	c.waitUntil("every server current on stream "+stream, func() bool {
		for i := range c.opts {
			if s := c.Server(i); s != nil && !s.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return false
			}
		}
		return true
	})
}

// Shutdown stops server i, keeping its store for [TestCluster.Restart].
func (c *TestCluster) Shutdown(i int) {
	c.mu.Lock()
	srv := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// ShutdownStreamLeader stops the server leading stream and returns its
// index.
func (c *TestCluster) ShutdownStreamLeader(stream string) int {
	c.t.Helper()
	i := c.StreamLeader(stream)
	c.Shutdown(i)
	return i
}

// Restart starts server i again, on the same ports and store, after
// [TestCluster.Shutdown].
func (c *TestCluster) Restart(i int) {
	c.t.Helper()
	if c.Server(i) != nil {
		c.t.Fatalf("brokertest: server %d is running", i)
	}
	c.opts[i].Routes = c.routesExcept(i)
	c.start(i)
}

func (c *TestCluster) shutdownAll() {
	for i := range c.opts {
		c.Shutdown(i)
	}
}

func (c *TestCluster) waitUntil(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(clusterReadyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("brokertest: waited %s for %s", clusterReadyTimeout, what)
		}
		<-tick.C
	}
}
