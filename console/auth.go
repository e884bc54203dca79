package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CookieName is the console's session cookie.
const CookieName = "remediator_console"

// Identity is who is signed in.
type Identity struct {
	// Principal is checked against the resource sets: the configured console principal for a
	// token holder, the login for an OIDC sign-in.
	Principal string
	Groups    []string
	// Via is how they signed in: token or oidc.
	Via string
	// Name is what the audit records: the principal, or "name/principal" when a basic-auth
	// user name told who holds the token.
	Name string
}

type ctxKey struct{}

type authState struct {
	id   *Identity
	csrf string
}

func identityFrom(ctx context.Context) *Identity {
	if a, ok := ctx.Value(ctxKey{}).(*authState); ok {
		return a.id
	}
	return nil
}

// session is one sign-in, held in this process: a console behind a load balancer needs
// sticky sessions or the token on each request.
type session struct {
	id      *Identity
	csrf    string
	expires time.Time
}

type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*session
	key []byte // for the CSRF tokens of requests that authenticate with a header
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}, key: []byte(randomToken())}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(id *Identity) (string, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, v := range s.m { // sign-ins are rare: sweeping here keeps the map bounded
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	sid := randomToken()
	sess := &session{id: id, csrf: randomToken(), expires: now.Add(s.ttl)}
	s.m[sid] = sess
	return sid, sess
}

func (s *sessions) get(sid string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[sid]
	if sess == nil {
		return nil
	}
	if time.Now().After(sess.expires) {
		delete(s.m, sid)
		return nil
	}
	return sess
}

func (s *sessions) drop(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sid)
}

// headerCSRF is the CSRF token of requests that authenticate with an Authorization header:
// bound to the credential, so a page rendered for one credential does not serve another.
func (s *sessions) headerCSRF(credential string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("header:" + credential))
	return hex.EncodeToString(m.Sum(nil))
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// tokenIdentity checks an Authorization header against the console token.
func (c *Console) tokenIdentity(r *http.Request) (*Identity, bool) {
	if c.cfg.Token == "" {
		return nil, false
	}
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && equal(strings.TrimSpace(tok), c.cfg.Token) {
		return c.tokenHolder(""), true
	}
	if user, pass, ok := r.BasicAuth(); ok && equal(pass, c.cfg.Token) {
		return c.tokenHolder(user), true
	}
	return nil, false
}

func (c *Console) tokenHolder(user string) *Identity {
	id := &Identity{Principal: c.cfg.Principal, Groups: c.cfg.Groups, Via: "token", Name: c.cfg.Principal}
	if user = strings.TrimSpace(user); user != "" && user != c.cfg.Principal {
		id.Name = user + "/" + c.cfg.Principal
	}
	return id
}

// authenticate lets a request through with its identity, or refuses it with 401 and the
// sign-in page.
func (c *Console) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r) {
			next.ServeHTTP(w, r)
			return
		}
		var st *authState
		if id, ok := c.tokenIdentity(r); ok {
			st = &authState{id: id, csrf: c.sessions.headerCSRF(r.Header.Get("Authorization"))}
		} else if ck, err := r.Cookie(CookieName); err == nil {
			if sess := c.sessions.get(ck.Value); sess != nil {
				st = &authState{id: sess.id, csrf: sess.csrf}
			}
		}
		if st == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="remediator console"`)
			c.render(w, r, "login", page{Title: "Sign in", Status: http.StatusUnauthorized, Data: loginData{Next: nextPath(r.URL.RequestURI())}})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
	})
}

// errCSRF says what to do about a change refused for its CSRF token.
var errCSRF = errors.New("the change was refused: its form token is missing or stale (reload the page and try again)")

// checkCSRF refuses a POST without the token of the page it came from. Nothing is changed.
func (c *Console) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || public(r) {
			next.ServeHTTP(w, r)
			return
		}
		st, _ := r.Context().Value(ctxKey{}).(*authState)
		if st == nil || !equal(r.PostFormValue("csrf"), st.csrf) {
			c.fail(w, r, http.StatusForbidden, errCSRF)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *Console) csrfToken(r *http.Request) string {
	if st, ok := r.Context().Value(ctxKey{}).(*authState); ok {
		return st.csrf
	}
	return ""
}

type loginData struct {
	Next string
}

// nextPath keeps a post-sign-in redirect on the console.
func nextPath(p string) string {
	if !strings.HasPrefix(p, Prefix) || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") || p == "/ui/login" {
		return Prefix
	}
	return p
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "login", page{Title: "Sign in", Data: loginData{Next: nextPath(r.URL.Query().Get("next"))}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := nextPath(r.PostFormValue("next"))
	if !c.signIns.Allow() {
		c.render(w, r, "login", page{Title: "Sign in", Status: http.StatusTooManyRequests, Error: "Too many sign-in attempts: wait a few seconds.", Data: loginData{Next: next}})
		return
	}
	if c.cfg.Token == "" || !equal(strings.TrimSpace(r.PostFormValue("token")), c.cfg.Token) {
		c.log.WarnContext(r.Context(), "console: sign-in refused", "remote", r.RemoteAddr)
		c.render(w, r, "login", page{Title: "Sign in", Status: http.StatusUnauthorized, Error: "That token is not the console token.", Data: loginData{Next: next}})
		return
	}
	c.startSession(w, r, c.tokenHolder(""), next)
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request, id *Identity, next string) {
	sid, _ := c.sessions.create(id)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sid, Path: Prefix, HttpOnly: true, Secure: secureCookie(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL.Seconds())})
	c.log.InfoContext(r.Context(), "console: signed in", "principal", id.Principal, "via", id.Via)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil {
		c.sessions.drop(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// secureCookie is true except over plain HTTP to a loopback address (the dev run), where a
// browser would not send a Secure cookie back to a non-localhost name.
func secureCookie(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
