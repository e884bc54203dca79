package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnConfig configures the client connection. The zero value of each
// optional field means its documented default.
type ConnConfig struct {
	// URL is the server URL, e.g. nats://127.0.0.1:4222; several may be given
	// separated by commas. Required.
	URL string
	// Name is the client name shown by the server (nats server report
	// connections). Default "remediator".
	Name string
	// CredsFile is a NATS .creds file (user JWT and NKey seed).
	CredsFile string
	// NKeyFile is a file holding an NKey user seed.
	NKeyFile string
	// User and Password, or Token, authenticate with static credentials.
	User, Password, Token string
	// TLSCAFile is a PEM file of CAs to trust for the server certificate.
	// TLSCertFile and TLSKeyFile are the client certificate and key (mutual
	// TLS); both or neither.
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// ConnectTimeout bounds the initial dial and handshake per server.
	// Default 5s.
	ConnectTimeout time.Duration
	// MaxReconnects is how many times to try reconnecting after the
	// connection drops, with exponential backoff (100ms doubling to 5s, with
	// jitter). 0 means the default, -1: forever, as a long-running worker
	// should. The CLI's one-shot commands may set a small positive number.
	MaxReconnects int
}

// Broker is a connection to NATS with JetStream. It is safe for concurrent
// use.
type Broker struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
	url    string // redacted, for messages

	closed     chan struct{}
	closedOnce sync.Once
}

// Connect dials NATS and returns a Broker. The initial connection is not
// retried: if it fails, the error says which URL was tried and what to do.
// After that, a dropped connection is re-established in the background
// (ConnConfig.MaxReconnects); disconnects and reconnects are logged.
func Connect(ctx context.Context, cfg ConnConfig, logger *slog.Logger) (*Broker, error) {
	logger = orDiscard(logger)
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, errors.New("connect to NATS: no URL — set --nats-url or NATS_URL (e.g. nats://127.0.0.1:4222)")
	}
	if cfg.Name == "" {
		cfg.Name = "remediator"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.MaxReconnects == 0 {
		cfg.MaxReconnects = -1
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("connect to NATS: TLS client certificate and key must be set together (tls cert file and key file)")
	}

	b := &Broker{
		logger: logger.With("component", "nats"),
		url:    redactURLs(cfg.URL),
		closed: make(chan struct{}),
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(cfg.MaxReconnects),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				b.logger.Warn("disconnected from NATS, reconnecting", "url", b.url, "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.logger.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			b.logger.Debug("NATS reconnect attempt failed", "url", b.url, "error", err)
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			b.logger.Warn("NATS server is entering lame duck mode; will reconnect elsewhere", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.logger.Error("NATS asynchronous error", "subject", subj, "error", err)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			b.logger.Debug("NATS connection closed", "url", b.url)
			b.closedOnce.Do(func() { close(b.closed) })
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS: cannot read the NKey seed file %s: %v", cfg.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" || cfg.Password != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}

	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URL, opts...)
		ch <- result{nc, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		// nats.Connect has no ctx; it is bounded by ConnectTimeout. Close the
		// connection if it arrives after all.
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to NATS at %s: %w", b.url, context.Cause(ctx))
	}
	if res.err != nil {
		return nil, connectErr(b.url, cfg.ConnectTimeout, res.err)
	}
	js, err := jetstream.New(res.nc)
	if err != nil {
		res.nc.Close()
		return nil, fmt.Errorf("connect to NATS at %s: JetStream: %w", b.url, err)
	}
	b.nc, b.js = res.nc, js
	b.logger.InfoContext(ctx, "connected to NATS", "url", res.nc.ConnectedUrlRedacted(), "server", res.nc.ConnectedServerName())
	return b, nil
}

// connectErr turns a nats.Connect error into one that says what to do.
func connectErr(url string, timeout time.Duration, err error) error {
	const hint = "is `remediator run` running, or set --nats-url/NATS_URL"
	switch {
	case errors.Is(err, nats.ErrNoServers) || contains(err, "connection refused"):
		return fmt.Errorf("cannot reach NATS at %s: connection refused — %s", url, hint)
	case errors.Is(err, nats.ErrTimeout) || contains(err, "i/o timeout") || contains(err, "deadline exceeded"):
		return fmt.Errorf("cannot reach NATS at %s: no answer within %s — %s (check host, port and firewall)", url, timeout, hint)
	case contains(err, "no such host"):
		return fmt.Errorf("cannot reach NATS at %s: unknown host — check --nats-url/NATS_URL: %v", url, err)
	case errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || contains(err, "authorization") || contains(err, "authentication"):
		return fmt.Errorf("NATS at %s rejected the credentials (%v) — check the creds file, nkey file, user/password or token", url, err)
	case contains(err, "tls") || contains(err, "x509") || contains(err, "certificate"):
		return fmt.Errorf("TLS with NATS at %s failed (%v) — check the CA, client certificate and key files, and that the URL uses tls:// when the server requires it", url, err)
	default:
		return fmt.Errorf("cannot connect to NATS at %s: %v — %s", url, err, hint)
	}
}

// reconnectDelay backs off from 100ms doubling to 5s, with up to 20% jitter
// so that many replicas do not reconnect in lock step.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempts && d < 5*time.Second; i++ {
		d *= 2
	}
	d = min(d, 5*time.Second)
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

// redactURLs hides passwords in a comma-separated list of URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				p = u.Redacted()
			} else {
				u.User = url.User("xxxxx") // a bare user part is often a token
				p = u.String()
			}
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// Connected reports whether the connection is currently up (false while
// reconnecting and after Close).
func (b *Broker) Connected() bool {
	return b.nc.IsConnected()
}

// Drain stops subscriptions, flushes pending publishes and closes the
// connection, waiting at most until ctx ends; then the connection is closed
// regardless. Call it last in a staged shutdown, after in-flight messages are
// acked or nak'ed.
func (b *Broker) Drain(ctx context.Context) error {
	if b.nc.IsClosed() {
		return nil
	}
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	select {
	case <-b.closed:
		return nil
	case <-ctx.Done():
		b.nc.Close()
		return fmt.Errorf("drain NATS connection: closed before draining finished: %w", context.Cause(ctx))
	}
}

// Close closes the connection at once, dropping unflushed publishes. Prefer
// Drain for a graceful stop. Close is idempotent.
func (b *Broker) Close() {
	b.nc.Close()
}
