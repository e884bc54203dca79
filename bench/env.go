package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/remediator/remediator/broker"
)

// natsServer is where one measurement runs: a fresh embedded server in a temporary
// directory, or the external server the caller named (shared by every measurement).
type natsServer struct {
	conn broker.ConnConfig // how bench and the services reach it
	emb  *broker.Embedded
	dir  string
}

// startNATS starts a fresh embedded server, or returns base's external server when base.URL
// is set. The embedded server has no authentication: bench's own client publishes events
// and reads statuses (and the baselines' streams) that no single role may.
func startNATS(ctx context.Context, base broker.ConnConfig, log *slog.Logger) (*natsServer, error) {
	if base.URL != "" {
		return &natsServer{conn: base}, nil
	}
	dir, err := os.MkdirTemp("", "remediator-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: store directory: %w", err)
	}
	emb, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Host: "127.0.0.1", Port: -1, StoreDir: dir, ServerName: "remediator-bench"}, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	conn := base
	conn.URL = emb.ClientURL()
	return &natsServer{conn: conn, emb: emb, dir: dir}, nil
}

// stop shuts an embedded server down and removes its store; an external one is left alone.
func (s *natsServer) stop() error {
	if s.emb == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.emb.Shutdown(ctx)
	return errors.Join(err, os.RemoveAll(s.dir))
}

// connect opens bench's own client connection.
func (s *natsServer) connect(ctx context.Context, log *slog.Logger) (*broker.Broker, error) {
	c := s.conn
	c.Name = "remediator-bench"
	return broker.Connect(ctx, c, log)
}

// flowServer is the flows' far end: it answers every call 200 at once, as a flow that does
// nothing would, so that what is measured is remediator and not the flow.
type flowServer struct {
	srv   *http.Server
	addr  string
	calls atomic.Int64
}

func startFlowServer() (*flowServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: flow server: %w", err)
	}
	f := &flowServer{addr: ln.Addr().String()}
	var exec atomic.Int64
	f.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			f.calls.Add(1)
			w.Header().Set("X-Execution-Id", strconv.FormatInt(exec.Add(1), 10))
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{}")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// url is the invoke URL of flow name.
func (f *flowServer) url(name string) string {
	return "http://" + f.addr + "/api/flo/" + name + "/invoke"
}

func (f *flowServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := f.srv.Shutdown(ctx)
	// A connection the services' clients opened but had not used yet is not idle to
	// Shutdown: close every one, so that nothing of a run outlives it.
	if cerr := f.srv.Close(); err == nil {
		err = cerr
	}
	return err
}
