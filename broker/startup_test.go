package broker_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// startReplica does what a replica does at start on a fresh JetStream:
// connect, provision the streams, open a replicated bucket and create a
// durable consumer.
func startReplica(ctx context.Context, url string, replicas int) error {
	b, err := broker.Connect(ctx, brokertest.ConnConfig(url), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer b.Close()
	streams := brokertest.Streams()
	streams.Replicas = replicas
	if err := b.Provision(ctx, streams); err != nil {
		return err
	}
	if _, err := b.KeyValue(ctx, broker.KVConfig{Bucket: "remediation_jobs", History: 1, Replicas: replicas}); err != nil {
		return err
	}
	_, err = b.Consumer(ctx, consumerConfig(broker.StreamEvents, "remediator-intake", "remediation.events.>"))
	return err
}

// startTogether starts two replicas at the same moment and fails the test
// unless both come up.
func startTogether(t *testing.T, url string, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	gate := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-gate
			errs[i] = startReplica(ctx, url, replicas)
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d did not start: %v", i, err)
		}
	}
}

func TestTwoReplicasStartTogetherOnAFreshServer(t *testing.T) {
	t.Parallel()
	startTogether(t, brokertest.Server(t).ClientURL(), 1)
}

func TestTwoReplicasStartTogetherOnAFreshCluster(t *testing.T) {
	t.Parallel()
	startTogether(t, brokertest.Cluster(t, 3).ClientURL(), 3)
}
