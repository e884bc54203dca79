package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/status"
)

// searchSpan bounds how far back event search and journeys read by default.
const searchSpan = 24 * time.Hour

type eventsData struct {
	Query, Flow, Since string
	Flows              []string
	Searched           bool
	Results            []ops.EventSummary
}

func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := eventsData{Query: strings.TrimSpace(q.Get("q")), Flow: q.Get("flow"), Since: q.Get("since"), Flows: c.flowNames(r.Context())}
	since, err := parseSince(d.Since, searchSpan)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if d.Query != "" || d.Flow != "" {
		d.Searched = true
		d.Results, err = c.cfg.Ops.SearchEvents(r.Context(), ops.Query{Text: d.Query, Flow: d.Flow, Since: since, Limit: 200})
		if err != nil {
			c.fail(w, r, http.StatusServiceUnavailable, err)
			return
		}
	}
	c.render(w, r, "events", page{Title: "Events", Nav: "events", Data: d})
}

// parseSince reads "2h", "7d" or an RFC 3339 time; empty is def ago.
func parseSince(s string, def time.Duration) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Now().Add(-def), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Now().Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration (2h, 7d) or an RFC 3339 time", s)
}

type journeyStep struct {
	status.Record
	Inputs   string // redacted, indented JSON
	TraceURL string
}

type journeyData struct {
	EventID     string
	Steps       []journeyStep
	DeadLetters []dlq.Entry
	TraceURL    string
	// Arrived is when REMEDIATION_EVENTS stored the event (zero when it is gone).
	Arrived time.Time
	// FlowInputs are what each of its flows receives, mapped from the stored event.
	FlowInputs []flowInputs
}

type flowInputs struct {
	Flow   string
	Inputs string // redacted, indented JSON
	Error  string
}

func (c *Console) traceURL(traceID string) string {
	if c.cfg.JaegerURL == "" || traceID == "" {
		return ""
	}
	return strings.TrimRight(c.cfg.JaegerURL, "/") + "/trace/" + url.PathEscape(traceID)
}

func (c *Console) journey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h, err := c.cfg.Ops.EventHistory(r.Context(), id, time.Time{})
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if !h.Found() {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("no status record or dead letter for event %q: check the id; records are kept streams.maxAge (7 days by default)", id))
		return
	}
	d := journeyData{EventID: id, DeadLetters: h.DeadLetters}
	for _, rec := range h.Statuses {
		st := journeyStep{Record: rec, TraceURL: c.traceURL(rec.TraceID)}
		st.Record.Inputs = nil
		if len(rec.Inputs) > 0 {
			b, _ := json.MarshalIndent(ops.RedactInputs(rec.Inputs), "", "  ")
			st.Inputs = string(b)
		}
		if d.TraceURL == "" {
			d.TraceURL = st.TraceURL
		}
		d.Steps = append(d.Steps, st)
	}
	c.mapInputs(r, &d)
	c.render(w, r, "journey", page{Title: "Event " + id, Nav: "events", Data: d})
}

// mapInputs shows what each flow of the event receives, from the event as stored and the
// input mapping in force, with secret-looking values redacted.
func (c *Console) mapInputs(r *http.Request, d *journeyData) {
	// The event was stored before its first record: read from a little before that, not the
	// whole stream.
	var from time.Time
	if len(d.Steps) > 0 {
		from = d.Steps[0].Timestamp.Add(-10 * time.Minute)
	}
	ev, found, err := c.cfg.Ops.FindEvent(r.Context(), d.EventID, from)
	if err != nil || !found {
		return
	}
	d.Arrived = ev.Time
	if c.cfg.Inputs == nil {
		return
	}
	seen := map[string]bool{}
	for _, st := range d.Steps {
		if st.Flow == "" || seen[st.Flow] {
			continue
		}
		seen[st.Flow] = true
		fi := flowInputs{Flow: st.Flow}
		in, err := c.cfg.Inputs(ev.Subject, ev.Data, st.Flow)
		if err != nil {
			fi.Error = err.Error()
		} else {
			b, _ := json.MarshalIndent(ops.RedactInputs(in), "", "  ")
			fi.Inputs = string(b)
		}
		d.FlowInputs = append(d.FlowInputs, fi)
	}
}

type dlqData struct {
	Reason, Flow, Since string
	Reasons             []status.Reason
	Flows               []string
	Letters             []dlq.Entry
	More                bool
}

// dlqPage is how many letters the list shows; the filter's replay and purge act on all.
const dlqPage = 200

func (c *Console) dlqFilter(get func(string) string) (dlq.Filter, error) {
	var f dlq.Filter
	if v := get("reason"); v != "" {
		reason, err := status.ParseReason(v)
		if err != nil {
			return f, err
		}
		f.Reason = reason
	}
	f.Flow = get("flow")
	if v := get("since"); v != "" {
		t, err := parseSince(v, 0)
		if err != nil {
			return f, err
		}
		f.Since = t
	}
	return f, nil
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := c.dlqFilter(q.Get)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	letters, more, err := c.cfg.Ops.DeadLetters().List(r.Context(), f, dlqPage)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	d := dlqData{Reason: q.Get("reason"), Flow: f.Flow, Since: q.Get("since"), Reasons: status.Reasons, Flows: c.flowNames(r.Context()), More: more}
	for i := len(letters) - 1; i >= 0; i-- { // newest first
		d.Letters = append(d.Letters, letters[i].Entry())
	}
	c.render(w, r, "dlq", page{Title: "Dead letters", Nav: "dlq", Data: d, Flash: takeFlash(w, r)})
}

type letterData struct {
	dlq.Entry
	History  []status.Attempt
	Header   map[string][]string
	EventErr string
	Payload  string
	Subject  string
}

func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("dead letter %q: want a sequence number", r.PathValue("seq")))
		return
	}
	s := c.cfg.Ops.DeadLetters()
	l, err := s.Get(r.Context(), seq)
	if errors.Is(err, dlq.ErrLetterNotFound) {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("dead letter %d is not there: replayed, purged or expired", seq))
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	d := letterData{Entry: l.Entry(), History: l.Record.History}
	ev, err := s.OriginalEvent(r.Context(), l)
	if err != nil {
		d.EventErr = err.Error()
	} else {
		d.Subject = ev.Subject
		d.Header = dlq.RedactHeaders(ev.Header)
		d.Payload = redactPayload(ev.Payload)
	}
	c.render(w, r, "letter", page{Title: fmt.Sprintf("Dead letter %d", seq), Nav: "dlq", Data: d})
}

// redactPayload indents a JSON event with secret-looking fields replaced; other bytes are
// shown as text.
func redactPayload(b []byte) string {
	var doc map[string]any
	if json.Unmarshal(b, &doc) != nil {
		return string(b)
	}
	out, _ := json.MarshalIndent(ops.RedactInputs(doc), "", "  ")
	return string(out)
}

// selection reads what a replay or purge form acts on: the ticked letters, or the filter.
func (c *Console) selection(r *http.Request) (dlq.Selection, url.Values, error) {
	keep := url.Values{}
	var sel dlq.Selection
	if r.PostFormValue("scope") == "filter" {
		f, err := c.dlqFilter(r.PostFormValue)
		if err != nil {
			return sel, keep, err
		}
		for _, k := range []string{"reason", "flow", "since"} {
			keep.Set(k, r.PostFormValue(k))
		}
		keep.Set("scope", "filter")
		sel.Filter = f
		sel.Describe = describeFilter(r.PostFormValue("reason"), f.Flow, r.PostFormValue("since"))
		return sel, keep, nil
	}
	for _, v := range r.PostForm["seq"] {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return sel, keep, fmt.Errorf("dead letter %q: want a sequence number", v)
		}
		sel.Sequences = append(sel.Sequences, seq)
		keep.Add("seq", v)
	}
	if len(sel.Sequences) == 0 {
		return sel, keep, errors.New("no dead letter selected: tick some, or act on the filter")
	}
	sel.Describe = "console: dead letters " + dlq.JoinSeqs(sel.Sequences, 20)
	return sel, keep, nil
}

func describeFilter(reason, flow, since string) string {
	parts := []string{"console: filter"}
	for k, v := range map[string]string{"reason": reason, "flow": flow, "since": since} {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 1 {
		parts = append(parts, "all")
	}
	return strings.Join(parts, " ")
}

type planData struct {
	Action   string // replay or purge
	Plan     *dlq.Plan
	Refs     []dlq.Ref
	Rate     float64
	Keep     []hidden
	Describe string
}

type hidden struct{ Name, Value string }

func hiddenFields(v url.Values) []hidden {
	var out []hidden
	for k, vs := range v {
		for _, x := range vs {
			out = append(out, hidden{k, x})
		}
	}
	return out
}

// replayRate is the slowest rate budget among the plan's flows: a replay never publishes
// faster than its flows may be called.
func (c *Console) replayRate(r *http.Request, flows map[string]bool) float64 {
	rate := 0.0
	for _, fs := range c.cfg.Flows.FlowStates(r.Context()) {
		if flows[fs.Flow] && (rate == 0 || fs.RateLimit < rate) {
			rate = fs.RateLimit
		}
	}
	if rate == 0 {
		rate = 10 // no flow named (rejected at intake): Okta Workflows' own per-flow limit
	}
	return rate
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	sel, keep, err := c.selection(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	s := c.cfg.Ops.DeadLetters()
	plan, err := s.PlanReplay(r.Context(), sel, id.Name)
	if errors.Is(err, dlq.ErrLetterNotFound) {
		c.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	flows := map[string]bool{}
	for _, e := range plan.Events {
		for _, l := range e.Letters {
			flows[l.Flow] = true
		}
	}
	for f := range flows {
		if ok, _ := c.canRun(id, f); !ok {
			c.fail(w, r, http.StatusForbidden, fmt.Errorf("%s may not run flow %s (no resource set grants it run), so may not replay its dead letters", id.Principal, f))
			return
		}
	}
	rate := c.replayRate(r, flows)
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, "plan", page{Title: "Replay preview", Nav: "dlq", Data: planData{Action: "replay", Plan: plan, Rate: rate, Keep: hiddenFields(keep), Describe: sel.Describe}})
		return
	}
	if err := s.RequireStream(r.Context(), "REMEDIATION_AUDIT"); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	res, err := s.Replay(r.Context(), plan, dlq.ReplayOptions{Rate: rate})
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("replay stopped after %d of %d dead letters: %w", res.Replayed, plan.Letters, err))
		return
	}
	c.log.InfoContext(r.Context(), "console: dead letters replayed", "by", id.Name, "letters", res.Replayed, "events", res.Events, "audit_id", res.AuditID)
	msg := fmt.Sprintf("Replayed %s as %d events (audit %s); %d skipped, %d gone meanwhile.", dlq.CountLetters(res.Replayed), res.Events, res.AuditID, len(res.Skipped), len(res.Gone))
	redirectWithFlash(w, r, "/ui/dlq", msg)
}

func (c *Console) purge(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	sel, keep, err := c.selection(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	s := c.cfg.Ops.DeadLetters()
	refs, err := s.Select(r.Context(), sel)
	if errors.Is(err, dlq.ErrLetterNotFound) {
		c.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	var seqs []uint64
	for _, ref := range refs {
		if ok, f := c.canRun(id, ref.Flow); !ok {
			c.fail(w, r, http.StatusForbidden, fmt.Errorf("%s may not run flow %s (no resource set grants it run), so may not purge its dead letters", id.Principal, f))
			return
		}
		seqs = append(seqs, ref.Sequence)
	}
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, "plan", page{Title: "Purge preview", Nav: "dlq", Data: planData{Action: "purge", Refs: refs, Keep: hiddenFields(keep), Describe: sel.Describe}})
		return
	}
	res, err := s.Purge(r.Context(), sel.Describe, seqs, id.Name)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("purge stopped after %d of %d dead letters: %w", res.Purged, len(seqs), err))
		return
	}
	c.log.InfoContext(r.Context(), "console: dead letters purged", "by", id.Name, "letters", res.Purged, "audit_id", res.AuditID)
	msg := fmt.Sprintf("Purged %s (audit %s).", dlq.CountLetters(res.Purged), res.AuditID)
	redirectWithFlash(w, r, "/ui/dlq", msg)
}

type brakeRow struct {
	Flow           string
	Label          string
	Paused, DryRun bool
	PausedBy       string
	DryRunBy       string
	CanRun         bool
}

func (c *Console) brakes(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	switches, err := c.cfg.Ops.Switches(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	flows := c.flowNames(r.Context())
	rows := []brakeRow{{Flow: ops.AllFlows, Label: "every flow"}}
	for _, f := range flows {
		rows = append(rows, brakeRow{Flow: f, Label: f})
	}
	for i := range rows {
		row := &rows[i]
		for _, s := range switches {
			if s.Flow != row.Flow {
				continue
			}
			if s.Kind == ops.Pause {
				row.Paused, row.PausedBy = true, s.By
			} else {
				row.DryRun, row.DryRunBy = true, s.By
			}
		}
		if row.Flow == ops.AllFlows {
			row.CanRun, _ = c.canRun(id, flows...)
		} else {
			row.CanRun, _ = c.canRun(id, row.Flow)
		}
	}
	c.render(w, r, "brakes", page{Title: "Brakes", Nav: "brakes", Data: rows, Flash: takeFlash(w, r)})
}

func (c *Console) setBrake(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	sw := ops.Switch{Kind: r.PostFormValue("kind"), Flow: r.PostFormValue("flow"), On: r.PostFormValue("on") == "true", Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	flows := c.flowNames(r.Context())
	target := []string{sw.Flow}
	switch {
	case sw.Flow == ops.AllFlows:
		target = flows
	case !contains(flows, sw.Flow):
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("no flow %q is configured", sw.Flow))
		return
	}
	if sw.Kind != ops.Pause && sw.Kind != ops.DryRun {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("unknown brake %q", sw.Kind))
		return
	}
	if ok, f := c.canRun(id, target...); !ok {
		c.fail(w, r, http.StatusForbidden, fmt.Errorf("%s may not run flow %s (no resource set grants it run), so may not switch its brakes", id.Principal, f))
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.fail(w, r, http.StatusBadRequest, errors.New("not confirmed: tick the confirmation box to "+sw.Action()))
		return
	}
	if err := c.cfg.Ops.SetSwitch(r.Context(), sw, ops.Operator{User: id.Name, Via: "console"}); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	c.snap.mu.Lock()
	c.snap.data = nil // the overview shows the switch at once
	c.snap.mu.Unlock()
	c.log.InfoContext(r.Context(), "console: brake switched", "by", id.Name, "action", sw.Action(), "flow", sw.Flow)
	redirectWithFlash(w, r, "/ui/brakes", sw.Action()+" "+sw.Flow+" by "+id.Name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// flashCookie carries what a change did to the page it redirects to. It is a cookie, not a
// query parameter, so that a link cannot make the console say something it did not do.
const flashCookie = "remediator_console_flash"

func redirectWithFlash(w http.ResponseWriter, r *http.Request, to, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: Prefix, HttpOnly: true,
		Secure: secureCookie(r), SameSite: http.SameSiteStrictMode, MaxAge: 60})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func takeFlash(w http.ResponseWriter, r *http.Request) string {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: Prefix, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	msg, _ := url.QueryUnescape(ck.Value)
	return msg
}
