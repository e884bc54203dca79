package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnConfig configures the client connection. Numeric settings have no
// hidden defaults: the caller (package config holds the service's defaults)
// sets each one, and [Connect] refuses a missing or out-of-range value with an
// error naming the field.
type ConnConfig struct {
	// URL is the server URL, e.g. nats://127.0.0.1:4222; several may be given
	// separated by commas. Required.
	URL string
	// Name is the client name shown by the server (nats server report
	// connections). Empty: "remediator".
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
	// InboxPrefix replaces _INBOX as the prefix of reply subjects (request
	// replies, JetStream acks and API responses). Empty: _INBOX. A server that
	// lets each role subscribe only to its own prefix ([Role.InboxPrefix])
	// needs it, so that no client can read the replies another one gets.
	InboxPrefix string
	// ConnectTimeout bounds the initial dial and handshake per server.
	// Required (positive); the service uses 5s.
	ConnectTimeout time.Duration
	// MaxReconnects is how many times to try reconnecting after the
	// connection drops, with exponential backoff (100ms doubling to 5s, with
	// jitter): -1 = forever, as a long-running worker should; 0 = never (the
	// first drop closes the connection, as a one-shot CLI command wants);
	// N > 0 = N attempts, then the connection is closed.
	MaxReconnects int
	// RetryConnect makes [Connect] retry the initial connection while the
	// server cannot be reached (refused, timed out, unknown host), with
	// exponential backoff from 200ms to 10s with jitter, each attempt
	// logged with its number and the delay, until ctx ends. It is for a
	// service started by an orchestrator before NATS; the CLI leaves it false
	// and fails at once. Rejected credentials and TLS failures are never
	// retried: waiting does not fix them.
	RetryConnect bool
}

// validate checks the settings that have no default.
func (c ConnConfig) validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("no URL — set --nats-url or NATS_URL (e.g. nats://127.0.0.1:4222)"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ConnectTimeout %s must be positive", c.ConnectTimeout))
	}
	if c.MaxReconnects < -1 {
		errs = append(errs, fmt.Errorf("MaxReconnects %d must be -1 (forever), 0 (never) or a positive count", c.MaxReconnects))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS client certificate and key must be set together (TLSCertFile and TLSKeyFile)"))
	}
	return errors.Join(errs...)
}

// Broker is a connection to NATS with JetStream. It is safe for concurrent
// use.
type Broker struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
	url    string // redacted, for messages

	// getStreams caches the stream handles GetMessage reads through (name →
	// jetstream.Stream), so that a read is one request, not a STREAM.INFO first.
	getStreams sync.Map

	closed     chan struct{}
	closedOnce sync.Once
}

// Initial-connect retry policy of [ConnConfig.RetryConnect].
const (
	connectRetryInitial = 200 * time.Millisecond
	connectRetryMax     = 10 * time.Second
)

// Connect dials NATS and returns a Broker. Unless cfg.RetryConnect is set, the
// initial connection is tried once: if it fails, the error says which URL was
// tried and what to do. After that, a dropped connection is re-established in
// the background (cfg.MaxReconnects); disconnects and reconnects are logged.
func Connect(ctx context.Context, cfg ConnConfig, logger *slog.Logger) (*Broker, error) {
	logger = orDiscard(logger)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = "remediator"
	}

	b := &Broker{
		logger: logger.With("component", "nats"),
		url:    redactURLs(cfg.URL),
		closed: make(chan struct{}),
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
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
	// 0 means never: reconnection is switched off outright rather than left
	// to a zero count.
	if cfg.MaxReconnects == 0 {
		opts = append(opts, nats.NoReconnect())
	} else {
		opts = append(opts, nats.MaxReconnects(cfg.MaxReconnects))
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
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}

	nc, err := b.dialRetrying(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to NATS at %s: JetStream: %w", b.url, err)
	}
	b.nc, b.js = nc, js
	b.logger.InfoContext(ctx, "connected to NATS", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName())
	return b, nil
}

// dialRetrying dials once, or with cfg.RetryConnect until the server answers,
// a permanent error or ctx's end.
func (b *Broker) dialRetrying(ctx context.Context, cfg ConnConfig, opts []nats.Option) (*nats.Conn, error) {
	policy := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(connectRetryInitial),
		backoff.WithMaxInterval(connectRetryMax),
		backoff.WithMaxElapsedTime(0), // until ctx ends
	)
	for attempt := 1; ; attempt++ {
		nc, err := dial(ctx, cfg, opts)
		if err == nil {
			return nc, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w (last attempt: %v)", b.url, context.Cause(ctx), err)
		}
		friendly := connectErr(b.url, cfg.ConnectTimeout, err)
		if !cfg.RetryConnect || !unreachable(err) {
			return nil, friendly
		}
		delay := policy.NextBackOff()
		b.logger.WarnContext(ctx, "NATS not reachable yet, retrying", "attempt", attempt, "retry_in", delay, "error", friendly)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("connect to NATS at %s: gave up after %d attempts: %w (last: %v)", b.url, attempt, context.Cause(ctx), friendly)
		}
	}
}

// dial makes one connection attempt, bounded by ctx as well as by
// ConnectTimeout: nats.Connect has no ctx, so it runs aside, and a connection
// that arrives after ctx ended is closed.
func dial(ctx context.Context, cfg ConnConfig, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URL, opts...)
		ch <- result{nc, err}
	}()
	select {
	case res := <-ch:
		return res.nc, res.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// unreachable reports whether a connect error means the server could not be
// reached (yet) rather than that it refused us.
func unreachable(err error) bool {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, io.EOF):
		return true
	case errors.As(err, &dnsErr):
		return true // a name that does not resolve yet (a service not yet published)
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	default:
		return false
	}
}

// connectErr turns a nats.Connect error into one that says what to do.
func connectErr(url string, timeout time.Duration, err error) error {
	const hint = "is `remediator run` running, or set --nats-url/NATS_URL"
	var (
		dnsErr      *net.DNSError
		netErr      net.Error
		unknownAuth x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		certInvalid x509.CertificateInvalidError
		verifyErr   *tls.CertificateVerificationError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("cannot reach NATS at %s: connection refused — %s", url, hint)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot reach NATS at %s: unknown host — check --nats-url/NATS_URL: %v", url, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("cannot reach NATS at %s: no answer within %s — %s (check host, port and firewall)", url, timeout, hint)
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		errors.Is(err, nats.ErrAccountAuthExpired):
		return fmt.Errorf("NATS at %s rejected the credentials (%v) — check the creds file, nkey file, user/password or token: %w", url, err, ErrAuth)
	case errors.Is(err, nats.ErrSecureConnRequired), errors.Is(err, nats.ErrSecureConnWanted),
		errors.As(err, &unknownAuth), errors.As(err, &hostnameErr), errors.As(err, &certInvalid),
		errors.As(err, &verifyErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
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
	return b != nil && b.nc != nil && b.nc.IsConnected()
}

// MaxPayload is the largest message, in bytes, the connected server accepts
// (its max_payload, announced when the connection was made). A larger
// publish fails with [ErrPayloadTooLarge].
func (b *Broker) MaxPayload() int64 {
	return b.nc.MaxPayload()
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
