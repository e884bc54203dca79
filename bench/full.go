package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/service"
)

// tokenEnv is the variable the bench flows read their client token from; the services see
// it through their LookupEnv, the process environment is not touched.
const (
	tokenEnv   = "REMEDIATOR_BENCH_TOKEN"
	benchToken = "bench-client-token"
	principal  = "bench-console"
	// recordKeyEnv holds the record key the measured services sign and verify with, as a
	// production configuration (nats.url) must name one.
	recordKeyEnv = "REMEDIATOR_BENCH_RECORD_KEY"
)

// benchRecordKey is this run's record key: random, never written anywhere.
var benchRecordKey = rand.Text() + rand.Text()

// serviceConfig is remediator's configuration for a measurement: nats.url at srv, no HTTP,
// ingress or simulator, flows flows on the no-op flow server with their rate limits lifted,
// one route per flow, and a resource set that lets the ISPM subject's default principal run
// them all. Everything else takes its default, as a file would.
func (r *runner) serviceConfig(srv *natsServer, flows int) (*config.Config, error) {
	var y strings.Builder
	fmt.Fprintf(&y, "nats: {url: %q}\nhttp: {addr: \"off\"}\ningress: {addr: \"off\"}\nsimulator: {enabled: false}\nunrouted: skip\n", srv.conn.URL)
	fmt.Fprintf(&y, "defaultPrincipals: {%s: %s}\n", event.SubjectISPM, principal)
	fmt.Fprintf(&y, "security: {recordKeys: [{id: bench, secret: {env: %s}}]}\n", recordKeyEnv)
	y.WriteString("flows:\n")
	names := make([]string, flows)
	for i := range flows {
		names[i] = flowName(i)
		fmt.Fprintf(&y, "  - {name: %s, url: %q, clientToken: {env: %s}, rateLimit: %d}\n", names[i], r.flows.url(names[i]), tokenEnv, flowRateLimit)
	}
	y.WriteString("routes:\n")
	for i := range flows {
		fmt.Fprintf(&y, "  - {name: route-%03d, match: {titles: [%q]}, flows: [%s]}\n", i, issueTitle(i), names[i])
	}
	fmt.Fprintf(&y, "resourceSets:\n  - {name: bench, flows: [%s], users: [%s], permissions: [view, run]}\n", strings.Join(names, ", "), principal)
	cfg, err := config.Parse([]byte(y.String()), "remediator bench")
	if err != nil {
		return nil, err
	}
	n := &cfg.NATS
	c := srv.conn
	n.CredsFile, n.NKeyFile, n.User, n.InboxPrefix = c.CredsFile, c.NKeyFile, c.User, c.InboxPrefix
	n.TLSCAFile, n.TLSCertFile, n.TLSKeyFile = c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile
	return cfg, nil
}

// lookupEnv gives the services the flows' token, and the process environment otherwise.
func lookupEnv(k string) (string, bool) {
	switch k {
	case tokenEnv:
		return benchToken, true
	case recordKeyEnv:
		return benchRecordKey, true
	}
	return os.LookupEnv(k)
}

// running is a started service.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// startServices runs replicas services with flows flows against srv and returns once every
// one is processing events.
func (r *runner) startServices(ctx context.Context, srv *natsServer, flows, replicas int) ([]running, error) {
	var started []running
	for range replicas {
		cfg, err := r.serviceConfig(srv, flows)
		if err != nil {
			return started, err
		}
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s := running{cancel: cancel, done: make(chan error, 1)}
		ready := make(chan struct{})
		go func() {
			s.done <- service.Run(sctx, cfg, service.Options{
				Logger: r.cfg.ServiceLog, LookupEnv: lookupEnv,
				Ready: func(service.Addrs) { close(ready) },
			})
		}()
		started = append(started, s)
		select {
		case <-ready:
		case err := <-s.done:
			s.done <- err
			return started, fmt.Errorf("bench: the service stopped before it was ready: %w", err)
		case <-ctx.Done():
			return started, context.Cause(ctx)
		case <-time.After(2 * time.Minute):
			return started, errors.New("bench: the service was not ready within 2 minutes")
		}
	}
	return started, nil
}

// stopServices shuts the services down, each with its staged shutdown.
func stopServices(ss []running) error {
	var errs []error
	for _, s := range ss {
		s.cancel()
	}
	for _, s := range ss {
		select {
		case err := <-s.done:
			errs = append(errs, err)
		case <-time.After(time.Minute):
			errs = append(errs, errors.New("bench: a service did not stop within a minute"))
		}
	}
	return errors.Join(errs...)
}

// onPipeline runs fn against replicas services with flows flows on a fresh server (or the
// external one), with bench's own client b, then stops the services and the server.
func (r *runner) onPipeline(ctx context.Context, flows, replicas int, fn func(srv *natsServer, b *broker.Broker) error) (err error) {
	srv, err := startNATS(ctx, r.cfg.NATS, r.log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	ss, err := r.startServices(ctx, srv, flows, replicas)
	defer func() {
		if serr := stopServices(ss); serr != nil {
			err = errors.Join(err, fmt.Errorf("bench: stopping the services: %w", serr))
		}
	}()
	if err != nil {
		return err
	}
	b, err := srv.connect(ctx, r.log)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(srv, b)
}

// full measures remediator: replicas services with flows flows on a fresh server, n events.
func (r *runner) full(ctx context.Context, name string, flows, replicas, n int, rate float64, idle bool) (m Measurement, err error) {
	m = Measurement{Name: name, Flows: flows, Replicas: replicas}
	err = r.onPipeline(ctx, flows, replicas, func(_ *natsServer, b *broker.Broker) error {
		calls := r.flows.calls.Load()
		err := r.measure(ctx, b, r.newWorkload(n, flows), rate, idle, &m)
		m.FlowCalls = r.flows.calls.Load() - calls
		return err
	})
	return m, err
}
