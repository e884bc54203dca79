package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/worker"
)

// Sign-in attempts with the token, per process: enough for people, far too few for guessing.
const (
	signInsPerSecond = 2
	signInBurst      = 10
)

// Prefix is where the console is served.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Authorizer says what a principal may do with a flow; *policy.Router implements it.
type Authorizer interface {
	Permissions(principal string, groups []string, flow string) (view, run bool, sets []string)
}

// FlowStater reports the flows' live state; *worker.Worker implements it.
type FlowStater interface {
	FlowStates(ctx context.Context) []worker.FlowState
}

var _ FlowStater = (*worker.Worker)(nil)

// Config configures the console.
type Config struct {
	// Ops reads and operates the service. Required.
	Ops *ops.Ops
	// Flows reports the configured flows' state. Required.
	Flows FlowStater
	// Authorizer checks changes against the resource sets. Required.
	Authorizer Authorizer
	// Token is the console token. Required unless OIDC is set.
	Token string
	// Principal is who a token holder is (config console.principal), with Groups.
	Principal string
	Groups    []string
	// SessionTTL is how long a sign-in lasts. Required (> 0).
	SessionTTL time.Duration
	// Window is how far back the overview's counts look. Required (> 0).
	Window time.Duration
	// Inputs says what flow receives for a stored event (subject and document): the service
	// validates, decodes and maps it as the worker does. Optional: without it an event's page
	// shows only the inputs that dry runs recorded.
	Inputs func(subject string, data []byte, flow string) (map[string]any, error)
	// JaegerURL is the Jaeger UI an event's trace links to. Optional.
	JaegerURL string
	// OIDC, when set, adds sign-in with an OpenID Connect provider.
	OIDC *OIDC
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Console serves the pages. Create it with [New]; it is an http.Handler for the paths under
// [Prefix].
type Console struct {
	cfg      Config
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *sessions
	mux      *http.ServeMux
	handler  http.Handler
	snap     snapshotCache
	// signIns paces sign-in attempts with the token, so that it cannot be guessed quickly.
	signIns *rate.Limiter
}

// New checks cfg and returns the console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Ops == nil || cfg.Flows == nil || cfg.Authorizer == nil:
		return nil, errors.New("console: Ops, Flows and Authorizer are required")
	case cfg.Token == "" && cfg.OIDC == nil:
		return nil, errors.New("console: a token or OIDC is required: the console is never open")
	case cfg.Token != "" && cfg.Principal == "":
		return nil, errors.New("console: a token needs the principal it stands for")
	case cfg.SessionTTL <= 0 || cfg.Window <= 0:
		return nil, errors.New("console: SessionTTL and Window must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{cfg: cfg, log: cfg.Logger, sessions: newSessions(cfg.SessionTTL), mux: http.NewServeMux(),
		signIns: rate.NewLimiter(rate.Limit(signInsPerSecond), signInBurst)}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	c.routes()
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	c.handler = c.recover(securityHeaders(bounded(cop.Handler(c.authenticate(c.checkCSRF(c.mux))))))
	return c, nil
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /ui/{$}", c.overview)
	c.mux.HandleFunc("GET /ui/live", c.live)
	c.mux.HandleFunc("GET /ui/events", c.events)
	c.mux.HandleFunc("GET /ui/events/{id}", c.journey)
	c.mux.HandleFunc("GET /ui/dlq", c.deadLetters)
	c.mux.HandleFunc("GET /ui/dlq/{seq}", c.deadLetter)
	c.mux.HandleFunc("POST /ui/dlq/replay", c.replay)
	c.mux.HandleFunc("POST /ui/dlq/purge", c.purge)
	c.mux.HandleFunc("GET /ui/brakes", c.brakes)
	c.mux.HandleFunc("POST /ui/brakes", c.setBrake)
	c.mux.HandleFunc("GET /ui/login", c.loginPage)
	c.mux.HandleFunc("POST /ui/login", c.login)
	c.mux.HandleFunc("POST /ui/logout", c.logout)
	c.mux.HandleFunc("GET /ui/auth/login", c.oidcStart)
	c.mux.HandleFunc("GET /ui/auth/callback", c.oidcCallback)
}

// public paths need no sign-in: the login page, its assets and the OIDC round trip.
func public(r *http.Request) bool {
	p := r.URL.Path
	return p == "/ui/login" || strings.HasPrefix(p, "/ui/static/") || strings.HasPrefix(p, "/ui/auth/")
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		d := time.Since(t).Round(time.Second)
		if d < 0 {
			d = 0
		}
		return d.String() + " ago"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"join": strings.Join,
	"pct": func(n, of float64) int {
		if of <= 0 {
			return 0
		}
		return int(n / of * 100)
	},
	"seqs": func(s []uint64) string { return strings.Trim(fmt.Sprint(s), "[]") },
	"inc":  func(i int) int { return i + 1 },
}

func (c *Console) parseTemplates() error {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/base.html")
	if err != nil {
		return err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return err
		}
		c.pages[name] = t
	}
	return nil
}

// page is what every page's layout needs.
type page struct {
	Title  string
	Nav    string
	Who    *Identity
	CSRF   string
	Flash  string
	Error  string
	OIDC   bool
	Data   any
	Status int
}

// render writes a whole page (or, with fragment, only its "content" or named block).
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	c.renderTemplate(w, r, name, "base", p)
}

func (c *Console) renderTemplate(w http.ResponseWriter, r *http.Request, name, tmpl string, p page) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if id := identityFrom(r.Context()); id != nil {
		p.Who = id
		p.CSRF = c.csrfToken(r)
	}
	p.OIDC = c.cfg.OIDC != nil
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		c.log.ErrorContext(r.Context(), "console: render", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if p.Status != 0 {
		w.WriteHeader(p.Status)
	}
	_, _ = buf.WriteTo(w)
}

// fail renders an error page with status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		c.log.WarnContext(r.Context(), "console: request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	c.render(w, r, "error", page{Title: http.StatusText(status), Error: err.Error(), Status: status})
}

func (c *Console) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				c.log.ErrorContext(r.Context(), "console: panic", slog.Any("panic", v), slog.String("path", r.URL.Path))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// requestTimeout bounds every request's work on NATS: a page never hangs on a lost server.
const requestTimeout = 2 * time.Minute

func bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// securityHeaders keep pages out of frames and other origins' scripts out of pages.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// canRun reports whether the signed-in principal may run every one of flows.
func (c *Console) canRun(id *Identity, flows ...string) (bool, string) {
	for _, f := range flows {
		if f == "" {
			continue
		}
		if _, run, _ := c.cfg.Authorizer.Permissions(id.Principal, id.Groups, f); !run {
			return false, f
		}
	}
	return true, ""
}

// flowNames lists the configured flows, sorted.
func (c *Console) flowNames(ctx context.Context) []string {
	var out []string
	for _, f := range c.cfg.Flows.FlowStates(ctx) {
		out = append(out, f.Flow)
	}
	slices.Sort(out)
	return out
}
