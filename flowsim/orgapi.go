package flowsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// logEntry is one System Log event, kept as the JSON it was given.
type logEntry struct {
	uuid      string
	published time.Time
	eventType string
	raw       json.RawMessage
}

// AddLogEvents appends System Log events (LogEvent JSON objects, each with "uuid",
// "published" in RFC 3339 and "eventType"). They are served by GET /api/v1/logs in
// published order, and, with an event hook set ([Simulator.SetEventHook]), delivered to it
// before AddLogEvents returns.
func (s *Simulator) AddLogEvents(events ...json.RawMessage) error {
	if s.org == nil {
		return errNoOrg
	}
	entries := make([]logEntry, 0, len(events))
	for i, raw := range events {
		var head struct {
			UUID      string    `json:"uuid"`
			Published time.Time `json:"published"`
			EventType string    `json:"eventType"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return fmt.Errorf("flowsim: log event %d: %w", i, err)
		}
		if head.UUID == "" || head.Published.IsZero() || head.EventType == "" {
			return fmt.Errorf("flowsim: log event %d needs uuid, published and eventType", i)
		}
		entries = append(entries, logEntry{head.UUID, head.Published, head.EventType, slices.Clone(raw)})
	}
	s.org.mu.Lock()
	s.org.logs = append(s.org.logs, entries...)
	sort.SliceStable(s.org.logs, func(a, b int) bool { return s.org.logs[a].published.Before(s.org.logs[b].published) })
	s.org.mu.Unlock()
	s.deliverHook(context.Background(), entries) // orghook.go: only with an event hook set
	return nil
}

// apiRoute wraps a management API handler: rate limit per endpoint (X-Rate-Limit-* on every
// answer, 429 E0000047 past it), then the Bearer token with one of scopes. The handler runs
// with o.mu held.
func (s *Simulator) apiRoute(endpoint string, limit int, scopes []string, h func(w http.ResponseWriter, r *http.Request, o *orgState)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := s.org
		now := s.now()
		o.mu.Lock()
		defer o.mu.Unlock()
		// Okta's windows are 60 s and not aligned to the minute; each endpoint's window
		// starts at its first request.
		win := o.windows[endpoint]
		if win == nil || !now.Before(win.start.Add(o.window)) {
			win = &rateWindow{start: now}
			o.windows[endpoint] = win
		}
		reset := (win.start.Add(o.window).UnixNano() + int64(time.Second) - 1) / int64(time.Second)
		call := OrgCall{Method: r.Method, Path: r.URL.Path, Endpoint: endpoint, At: now, Reset: reset}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			call.Status = rec.status
			if call.Status == 0 {
				call.Status = http.StatusOK
			}
			o.calls = append(o.calls, call)
		}()
		w = rec
		h0 := w.Header()
		h0.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
		h0.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset, 10))
		// Date on the simulator's clock, so that a client measuring Reset from Date (as
		// Okta's SDK does) sees the simulator's time.
		h0.Set("Date", now.UTC().Format(http.TimeFormat))
		if win.used >= limit {
			h0.Set("X-Rate-Limit-Remaining", "0")
			s.writeOktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.", nil)
			return
		}
		win.used++
		call.Remaining = limit - win.used
		h0.Set("X-Rate-Limit-Remaining", strconv.Itoa(call.Remaining))
		h0.Set("X-Okta-Request-Id", fmt.Sprintf("simreq%012d", win.used))
		client, reason := o.bearer(r, now, scopes...)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "flowsim org call",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("client_id", client), slog.String("refused", reason))
		if reason != "" {
			s.refuseBearer(w, reason, scopes)
			return
		}
		h(w, r, o)
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (s *Simulator) orgRoutes(mux *http.ServeMux) {
	o := s.org
	mux.HandleFunc("/oauth2/v1/token", s.handleToken)
	api := func(pattern, endpoint string, scopes []string, h func(http.ResponseWriter, *http.Request, *orgState)) {
		mux.HandleFunc(pattern, s.apiRoute(endpoint, o.apiLimit, scopes, h))
	}
	api("GET /api/v1/users", "users", []string{"okta.users.read", "okta.users.manage"}, s.handleListUsers)      // orglist.go
	api("GET /api/v1/groups", "groups", []string{"okta.groups.read", "okta.groups.manage"}, s.handleListGroups) // orglist.go
	api("GET /api/v1/users/{id}", "users.get", []string{"okta.users.read", "okta.users.manage"}, s.handleGetUser)
	api("GET /api/v1/users/{id}/groups", "users.groups", []string{"okta.users.read", "okta.users.manage", "okta.groups.read"}, s.handleUserGroups)
	api("DELETE /api/v1/users/{id}/sessions", "users.sessions", []string{"okta.users.manage"}, s.handleClearSessions)
	api("POST /api/v1/users/{id}/lifecycle/suspend", "users.lifecycle", []string{"okta.users.manage"}, s.handleSuspend)
	api("GET /api/v1/users/{id}/risk", "users.risk", []string{"okta.userRisk.read", "okta.userRisk.manage"}, s.handleGetRisk)
	api("PUT /api/v1/users/{id}/risk", "users.risk", []string{"okta.userRisk.manage"}, s.handlePutRisk)
	api("POST /api/v1/users/{id}/lifecycle/expire_password", "users.lifecycle", []string{"okta.users.manage"}, s.handleExpirePassword)
	api("DELETE /api/v1/groups/{gid}/users/{id}", "groups.users", []string{"okta.groups.manage"}, s.handleRemoveFromGroup)
	api("GET /api/v1/policies", "policies", []string{"okta.policies.read", "okta.policies.manage"}, s.handleListPolicies)
	api("GET /api/v1/policies/{pid}/rules", "policies.rules", []string{"okta.policies.read", "okta.policies.manage"}, s.handlePolicyRules)
	mux.HandleFunc("GET /api/v1/logs", s.apiRoute("logs", o.logsLimit, []string{"okta.logs.read"}, s.handleLogs))
	mux.HandleFunc("/_sim/org/stats", s.methods(map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, s.OrgStats())
	}}))
	mux.HandleFunc("/_sim/org/users/{id}", s.methods(map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		if u, ok := s.User(r.PathValue("id")); ok {
			s.writeJSON(w, http.StatusOK, u)
			return
		}
		s.writeJSON(w, http.StatusNotFound, adminError{"unknown user"})
	}}))
	mux.HandleFunc("/_sim/org/clients/{id}/jwks", s.methods(map[string]http.HandlerFunc{
		http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
			keys := s.ClientKeys(r.PathValue("id"))
			if keys == nil {
				keys = []jose.JSONWebKey{}
			}
			s.writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
		},
		http.MethodPut: s.handlePutJWKS,
	}))
	mux.HandleFunc("/_sim/org/revoke", s.methods(map[string]http.HandlerFunc{http.MethodPost: s.handleAdminRevoke}))
	mux.HandleFunc("/_sim/org/logs", s.methods(map[string]http.HandlerFunc{http.MethodPost: s.handleAdminLogs}))
}

func (s *Simulator) userOr404(w http.ResponseWriter, r *http.Request, o *orgState) (*User, bool) {
	u, ok := o.users[r.PathValue("id")]
	if !ok {
		s.writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("id")+" (User)", nil)
	}
	return u, ok
}

type groupJSON struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Profile struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"profile"`
}

func (s *Simulator) handleUserGroups(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	out := make([]groupJSON, 0, len(u.Groups))
	for _, id := range u.Groups {
		g := o.groups[id]
		var gj groupJSON
		gj.ID, gj.Type, gj.Profile.Name = g.ID, g.Type, g.Name
		out = append(out, gj)
	}
	s.writeJSON(w, http.StatusOK, out)
}

// handleClearSessions is DELETE /api/v1/users/{id}/sessions: 204 whether or not the user had
// sessions (Okta answers 204 either way).
func (s *Simulator) handleClearSessions(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	if u.Sessions > 0 {
		u.SessionClears++
	}
	u.Sessions = 0
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusNoContent)
}

// handleGetUser is GET /api/v1/users/{id}, trimmed to id, status and profile.login.
func (s *Simulator) handleGetUser(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"id": u.ID, "status": u.Status, "profile": map[string]string{"login": u.Login}})
}

// handleSuspend is POST /api/v1/users/{id}/lifecycle/suspend: ACTIVE → SUSPENDED, 200 with
// an empty JSON object. Another status (SUSPENDED included) is refused with HTTP 400, as the
// spec lists. The text "Cannot suspend a user that is not active" is what integrations that
// call this endpoint match on (ConductorOne baton-okta, Splunk SOAR's and Cortex XSOAR's
// Okta apps); its place (a cause under E0000001 "Api validation failed: suspend") is
// guessed: Okta documents neither.
func (s *Simulator) handleSuspend(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	if u.Status != "ACTIVE" {
		s.writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: suspend",
			[]string{"Cannot suspend a user that is not active"})
		return
	}
	u.Status = "SUSPENDED"
	u.Suspends++
	s.writeJSON(w, http.StatusOK, struct{}{})
}

type riskJSON struct {
	RiskLevel string `json:"riskLevel"`
	Reason    string `json:"reason,omitempty"`
}

func (s *Simulator) handleGetRisk(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	level := u.RiskLevel
	if level == "" {
		level = "NONE"
	}
	s.writeJSON(w, http.StatusOK, riskJSON{RiskLevel: level, Reason: "override.by.admin"})
}

// handlePutRisk upserts the user's risk: 201 when none was set, else 200.
func (s *Simulator) handlePutRisk(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	var in riskJSON
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(data, &in)
	}
	if err != nil || !slices.Contains([]string{"HIGH", "MEDIUM", "LOW"}, in.RiskLevel) {
		s.writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: riskLevel",
			[]string{"riskLevel must be HIGH, MEDIUM or LOW."})
		return
	}
	status := http.StatusOK
	if u.RiskLevel == "" {
		status = http.StatusCreated
	}
	u.RiskLevel = in.RiskLevel
	s.writeJSON(w, status, riskJSON{RiskLevel: in.RiskLevel, Reason: "override.by.admin"})
}

// handleLogs is GET /api/v1/logs with since, until, filter, limit and after. Like Okta, a
// polling request (no until) always gets a next link, even on an empty page, so the caller
// can poll it later; a bounded request gets one only while more events remain. The after
// cursor is opaque (here: the count of events already returned).
func (s *Simulator) handleLogs(w http.ResponseWriter, r *http.Request, o *orgState) {
	q := r.URL.Query()
	bad := func(msg string) {
		s.writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: "+msg, nil)
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			bad("limit must be between 1 and 1000")
			return
		}
		limit = n
	}
	var since, until time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad("since must be an RFC 3339 time")
			return
		}
		since = t
	} else {
		since = s.now().Add(-7 * 24 * time.Hour) // Okta's default window is the last 7 days
	}
	if v := q.Get("until"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad("until must be an RFC 3339 time")
			return
		}
		until = t
	}
	match, err := parseLogFilter(q.Get("filter"))
	if err != nil {
		bad(err.Error())
		return
	}
	var selected []logEntry
	for _, e := range o.logs {
		if e.published.Before(since) || (!until.IsZero() && !e.published.Before(until)) || !match(e.eventType) {
			continue
		}
		selected = append(selected, e)
	}
	after := 0
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "sim"))
		if err != nil || n < 0 {
			bad("after is not a cursor this endpoint returned")
			return
		}
		after = min(n, len(selected))
	}
	page := selected[after:min(after+limit, len(selected))]
	out := make([]json.RawMessage, 0, len(page))
	for _, e := range page {
		out = append(out, e.raw)
	}
	base := o.issuer
	if base == "" {
		base = strings.TrimSuffix(o.tokenURL(r), "/oauth2/v1/token")
	}
	link := func(cursor int, rel string) string {
		nq := url.Values{}
		for k, vs := range q {
			if k != "after" {
				nq[k] = vs
			}
		}
		if cursor >= 0 {
			nq.Set("after", "sim"+strconv.Itoa(cursor))
		}
		return "<" + base + "/api/v1/logs?" + nq.Encode() + `>; rel="` + rel + `"`
	}
	w.Header().Add("Link", link(-1, "self"))
	if next := after + len(page); until.IsZero() || next < len(selected) {
		w.Header().Add("Link", link(next, "next"))
	}
	s.writeJSON(w, http.StatusOK, out)
}

// parseLogFilter understands the SCIM-like filters remediator uses:
// eventType eq "x" and eventType sw "prefix", joined with or. Others are refused (Okta
// takes more; the simulator does not need them).
func parseLogFilter(f string) (func(string) bool, error) {
	if strings.TrimSpace(f) == "" {
		return func(string) bool { return true }, nil
	}
	type term struct{ op, v string }
	var terms []term
	for _, part := range strings.Split(f, " or ") {
		fields := strings.Fields(strings.TrimSpace(part))
		if len(fields) != 3 || fields[0] != "eventType" || (fields[1] != "eq" && fields[1] != "sw") {
			return nil, errors.New(`filter: the simulator understands eventType eq "x" and eventType sw "x", joined with or`)
		}
		v, err := strconv.Unquote(fields[2])
		if err != nil {
			return nil, errors.New("filter: the value must be a quoted string")
		}
		terms = append(terms, term{fields[1], v})
	}
	return func(et string) bool {
		for _, t := range terms {
			if (t.op == "eq" && et == t.v) || (t.op == "sw" && strings.HasPrefix(et, t.v)) {
				return true
			}
		}
		return false
	}, nil
}

func (s *Simulator) handlePutJWKS(w http.ResponseWriter, r *http.Request) {
	var set struct {
		Keys []jose.JSONWebKey `json:"keys"`
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err == nil {
		err = json.Unmarshal(data, &set)
	}
	if err != nil {
		s.writeJSON(w, http.StatusBadRequest, adminError{"body must be a JWKS: {\"keys\": [...]}"})
		return
	}
	if err := s.SetClientKeys(r.PathValue("id"), set.Keys); err != nil {
		s.writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAdminRevoke takes {"token": "…"} or {"clientId": "…"} and answers {"revoked": n}.
func (s *Simulator) handleAdminRevoke(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token    string `json:"token"`
		ClientID string `json:"clientId"`
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(data, &in)
	}
	if err != nil || (in.Token == "") == (in.ClientID == "") {
		s.writeJSON(w, http.StatusBadRequest, adminError{`body must be {"token": "…"} or {"clientId": "…"}`})
		return
	}
	n := 0
	if in.Token != "" {
		if s.RevokeToken(in.Token) {
			n = 1
		}
	} else {
		n = s.RevokeTokens(in.ClientID)
	}
	s.writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

// handleAdminLogs appends the LogEvents of a JSON array.
func (s *Simulator) handleAdminLogs(w http.ResponseWriter, r *http.Request) {
	var events []json.RawMessage
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err == nil {
		err = json.Unmarshal(data, &events)
	}
	if err == nil {
		err = s.AddLogEvents(events...)
	}
	if err != nil {
		s.writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleExpirePassword is POST /api/v1/users/{id}/lifecycle/expire_password: the status
// becomes PASSWORD_EXPIRED and the user object is returned (trimmed to id and status here).
// Only ACTIVE and PASSWORD_EXPIRED users may expire it; others get 403 E0000038 (guessed).
func (s *Simulator) handleExpirePassword(w http.ResponseWriter, r *http.Request, o *orgState) {
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	if u.Status != "ACTIVE" && u.Status != "PASSWORD_EXPIRED" {
		s.writeOktaError(w, http.StatusForbidden, "E0000038", "This operation is not allowed in the user's current status.", nil)
		return
	}
	u.Status = "PASSWORD_EXPIRED"
	s.writeJSON(w, http.StatusOK, map[string]string{"id": u.ID, "status": u.Status})
}

// handleRemoveFromGroup is DELETE /api/v1/groups/{gid}/users/{id}: 204, also when the user
// was not a member (guessed: Okta documents only the 204). APP_GROUP memberships are
// managed by imports: 403 E0000006 (guessed code).
func (s *Simulator) handleRemoveFromGroup(w http.ResponseWriter, r *http.Request, o *orgState) {
	g, ok := o.groups[r.PathValue("gid")]
	if !ok {
		s.writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("gid")+" (UserGroup)", nil)
		return
	}
	u, ok := s.userOr404(w, r, o)
	if !ok {
		return
	}
	if g.Type != "OKTA_GROUP" {
		s.writeOktaError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action",
			[]string{"Memberships of " + g.Type + " groups are managed by their source."})
		return
	}
	u.Groups = slices.DeleteFunc(u.Groups, func(id string) bool { return id == g.ID })
	w.WriteHeader(http.StatusNoContent)
}

// entityRiskPolicyID is the simulated org's one system ENTITY_RISK policy (id guessed).
const entityRiskPolicyID = "rstEntityRiskSim"

func (s *Simulator) handleListPolicies(w http.ResponseWriter, r *http.Request, o *orgState) {
	typ := r.URL.Query().Get("type")
	if typ == "" {
		s.writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: type", []string{"type: The field cannot be left blank"})
		return
	}
	out := []any{}
	if typ == "ENTITY_RISK" {
		out = append(out, map[string]any{
			"id": entityRiskPolicyID, "type": "ENTITY_RISK", "name": "Entity Risk Policy", "status": "ACTIVE",
			"system": true, "priority": 1, "conditions": nil,
			"_links": map[string]any{"rules": map[string]string{"href": "/api/v1/policies/" + entityRiskPolicyID + "/rules"}},
		})
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) handlePolicyRules(w http.ResponseWriter, r *http.Request, o *orgState) {
	if r.PathValue("pid") != entityRiskPolicyID {
		s.writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("pid")+" (Policy)", nil)
		return
	}
	s.writeJSON(w, http.StatusOK, o.riskRules)
}
