package e2e

import (
	"testing"
	"time"
)

// Two replicas started at the same moment against a JetStream that has never seen remediator
// both come up and work: they race to create the same streams, KV buckets and consumers, and
// the loser of each race opens what the winner created (issue 11: both used to exit with
// "open kv bucket … context deadline exceeded", above all on a fresh cluster, where creating
// an R3 bucket takes an election).
func TestReplicasStartTogetherOnFreshJetStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  stackOptions
	}{
		{"single-server", stackOptions{unprovisioned: true}},
		{"3-node-cluster-R3", stackOptions{unprovisioned: true, clusterSize: 3, replicas: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, tc.opt)
			a, b := s.spawnWorker(), s.spawnWorker()
			s.waitReady(a)
			s.waitReady(b)

			const n = 6
			s.publishEvents(t, n, "evt-fresh")
			s.checkExactlyOnce(t, n, 60*time.Second)
		})
	}
}
