package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedReadyTimeout bounds how long StartEmbedded waits for the server to
// accept connections (JetStream recovers its streams from disk first, which
// takes a while on a large store). The caller's ctx can cut it shorter.
const embeddedReadyTimeout = 60 * time.Second

// EmbeddedConfig configures the in-process NATS server. Port and StoreDir
// are required; the other fields say what their zero value means.
type EmbeddedConfig struct {
	// Host is the interface to listen on. Default "127.0.0.1" (this machine
	// only); set "0.0.0.0" to let other hosts connect.
	Host string
	// Port is the client port, 1-65535, or -1 for a random free port
	// (tests). Required: 0 is refused (the service's default, 4222, lives in
	// package config).
	Port int
	// StoreDir is the JetStream file storage directory. Required; it is
	// created if missing. The CLI defaults it to ./data/nats. Restarting on the
	// same directory keeps streams, messages and consumers. One server at a
	// time: StartEmbedded locks the directory (file remediator.lock, holding
	// the owner's pid and address) until Shutdown, and a second start on it
	// fails before touching the store.
	StoreDir string
	// ServerName names the server in logs and monitoring. Default
	// "remediator-embedded".
	ServerName string
	// MaxMemory and MaxStore cap JetStream memory and file storage in bytes.
	// 0 = server defaults (75% of system memory, 1 TB of disk, whichever the
	// host allows).
	MaxMemory, MaxStore int64
	// SyncInterval is how often JetStream fsyncs file storage. 0 = server
	// default, which is lazy: every 2 minutes. A publish is acknowledged once
	// written to the operating system, so a process crash loses nothing, but a
	// power or kernel failure can lose up to SyncInterval of acknowledged
	// messages. A shorter interval (e.g. 1s) narrows that window at the cost
	// of more disk I/O.
	SyncInterval time.Duration
	// Credentials, when set, turn authentication on: the server admits only
	// the three roles' NKeys ([EnsureCredentials]), each with its subject
	// permissions ([Permissions]), and refuses every other connection. Nil:
	// no authentication (tests, or a server fronted by something else).
	Credentials *Credentials
}

// Embedded is a running in-process nats-server with JetStream. Connect to it
// with [Connect] and [Embedded.ClientURL]; stop it with [Embedded.Shutdown].
type Embedded struct {
	srv    *server.Server
	logger *slog.Logger
	lock   *storeLock

	shutdownOnce sync.Once
	stopped      chan struct{} // closed once the server stopped and the lock is released
}

// StartEmbedded starts a nats-server with JetStream inside this process and
// waits until it accepts connections. It installs no signal handlers. Server
// log lines go to logger: notices and debug at Debug, warnings at Warn,
// errors at Error; a nil logger discards them. ctx bounds the start-up only,
// not the server's lifetime.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	logger = orDiscard(logger)
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded NATS: StoreDir is required (the JetStream storage directory, e.g. ./data/nats)")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "remediator-embedded"
	}
	if cfg.Port == 0 || cfg.Port < -1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("embedded NATS: Port %d must be 1-65535, or -1 for a random port", cfg.Port)
	}
	if cfg.SyncInterval < 0 || cfg.MaxMemory < 0 || cfg.MaxStore < 0 {
		return nil, errors.New("embedded NATS: SyncInterval, MaxMemory and MaxStore must not be negative")
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded NATS: cannot create the JetStream store directory: %w", err)
	}
	// The lock comes first: a second instance must not even recover the
	// store (recovery writes to it) while the first one runs.
	lock, err := lockStore(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	lock.describe(addr)
	srv, err := startServer(ctx, cfg, addr, logger)
	if err != nil {
		lock.release()
		return nil, err
	}
	e := &Embedded{srv: srv, logger: logger, lock: lock, stopped: make(chan struct{})}
	lock.describe(e.ClientURL())
	logger.InfoContext(ctx, "embedded NATS server started",
		"url", e.ClientURL(), "store_dir", cfg.StoreDir, "server_name", cfg.ServerName, "auth", cfg.Credentials != nil)
	return e, nil
}

// startServer starts nats-server on cfg and waits until it accepts
// connections.
func startServer(ctx context.Context, cfg EmbeddedConfig, addr string, logger *slog.Logger) (*server.Server, error) {
	if cfg.Port > 0 {
		if err := portFree(addr); err != nil {
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
	}
	opts := &server.Options{
		ServerName:             cfg.ServerName,
		Host:                   cfg.Host,
		Port:                   cfg.Port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		JetStreamMaxMemory:     cfg.MaxMemory,
		JetStreamMaxStore:      cfg.MaxStore,
		SyncInterval:           cfg.SyncInterval,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if cfg.Credentials != nil {
		opts.Nkeys = cfg.Credentials.nkeyUsers()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: invalid options: %w", err)
	}
	// The bridge also catches the server's fatal errors (listen failure,
	// JetStream failing to start), which would otherwise only be logged.
	bridge := &serverLog{logger: logger.With("component", "nats-server"), fatal: make(chan string, 1)}
	srv.SetLoggerV2(bridge, false, false, false)
	srv.Start()

	deadline := time.Now().Add(embeddedReadyTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		var cause error
		select {
		case msg := <-bridge.fatal:
			cause = errors.New(msg)
			// The server reports a failed listen only as text; ask the OS
			// whether the port is taken (someone took it since portFree).
			if cfg.Port > 0 {
				if err := portFree(addr); err != nil {
					cause = err
				}
			}
		case <-ctx.Done():
			cause = fmt.Errorf("start cancelled: %w", context.Cause(ctx))
		default:
			if time.Now().After(deadline) {
				cause = fmt.Errorf("not ready for connections on %s after %s", addr, embeddedReadyTimeout)
			}
		}
		if cause != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded NATS: %w", cause)
		}
	}
	return srv, nil
}

// portFree checks that addr can be listened on, so that a port held by
// another process is reported as such (by its errno, not the server's text).
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s is already in use — is another remediator running? set nats.embedded.port or --nats-url", addr)
		}
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return l.Close()
}

// ClientURL is the nats:// URL clients use to reach the server, with the
// actual port when Port was -1.
func (e *Embedded) ClientURL() string {
	u := e.srv.ClientURL()
	// A server listening on all interfaces is reached through loopback.
	if p, err := url.Parse(u); err == nil {
		if ip := net.ParseIP(p.Hostname()); ip != nil && ip.IsUnspecified() {
			loopback := "127.0.0.1"
			if ip.To4() == nil {
				loopback = "::1"
			}
			p.Host = net.JoinHostPort(loopback, p.Port())
			u = p.String()
		}
	}
	return u
}

// Shutdown stops the server (closing client connections, flushing
// JetStream storage) and waits until it has stopped, at most until ctx ends.
// If ctx ends first the server keeps shutting down in the background and
// ctx's error is returned. Drain clients first: a client still connected sees
// its connection closed. The store directory's lock is released once the
// server has stopped. Shutdown may be called more than once.
func (e *Embedded) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		go func() {
			defer close(e.stopped)
			e.srv.Shutdown()
			e.srv.WaitForShutdown()
			// Only now may another instance use the store.
			e.lock.release()
		}()
	})
	select {
	case <-e.stopped:
		e.logger.InfoContext(ctx, "embedded NATS server stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded NATS: shutdown did not finish: %w", context.Cause(ctx))
	}
}

// serverLog bridges nats-server's logger to slog.
type serverLog struct {
	logger    *slog.Logger
	fatal     chan string
	fatalOnce sync.Once
}

var _ server.Logger = (*serverLog)(nil)

func (l *serverLog) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if l.logger.Enabled(ctx, level) {
		l.logger.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}

func (l *serverLog) Noticef(format string, v ...any) { l.log(slog.LevelDebug, format, v) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log(slog.LevelError, format, v) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }
func (l *serverLog) Tracef(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }

// Fatalf logs at Error and reports the first fatal error to StartEmbedded.
// It never exits the process (nats-server's own logger would).
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.logger.Error(msg)
	l.fatalOnce.Do(func() { l.fatal <- msg })
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
