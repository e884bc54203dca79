package console_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/status"
)

const flow = "suspend-okta-account"

// The console is never open: without the token every page is refused with the sign-in page
// and no data, a wrong token too, and a change asked for without signing in changes nothing.
func TestConsoleRefusesWithoutSignIn(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, path := range []string{"/ui/", "/ui/live", "/ui/events?q=x", "/ui/events/some-id", "/ui/dlq", "/ui/dlq/1", "/ui/brakes"} {
		for _, auth := range []string{"", "Bearer wrong-token", "Basic " + "YWxpY2U6d3Jvbmc="} {
			r := e.do("GET", path, auth, nil)
			if r.code != http.StatusUnauthorized || !strings.Contains(r.body, `name="token"`) || strings.Contains(r.body, flow) {
				t.Errorf("GET %s with %q = %d, want 401 with the sign-in form and no flow:\n%.300s", path, auth, r.code, r.body)
			}
		}
	}
	form := url.Values{"flow": {flow}, "kind": {"pause"}, "on": {"true"}, "confirm": {"yes"}}
	if r := e.do("POST", "/ui/brakes", "", form); r.code != http.StatusUnauthorized {
		t.Errorf("unauthenticated POST /ui/brakes = %d, want 401", r.code)
	}
	if s := e.switches(); len(s) != 0 {
		t.Errorf("an unauthenticated POST set %+v", s)
	}
	if r := e.do("GET", "/ui/static/console.css", "", nil); r.code != 200 {
		t.Errorf("the sign-in page's stylesheet = %d", r.code)
	}
	// The health endpoints beside it stay open.
	if r, err := http.Get("http://" + e.svc.Addrs.HTTP + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Errorf("/healthz = %v, %v", r, err)
	}
}

// Signing in with the token gives an HttpOnly, SameSite=Strict session cookie; signing out
// ends it. Bearer and basic auth work on each request without a session.
func TestConsoleSignInAndOut(t *testing.T) {
	t.Parallel()
	e := start(t)
	if r := e.do("POST", "/ui/login", "", url.Values{"token": {"nope"}, "next": {"/ui/brakes"}}); r.code != http.StatusUnauthorized || strings.Contains(r.header.Get("Set-Cookie"), "remediator_console=") {
		t.Errorf("wrong token: %d, cookie %q", r.code, r.header.Get("Set-Cookie"))
	}
	r := e.do("POST", "/ui/login", "", url.Values{"token": {"servicetest-console-token"}, "next": {"//evil.example/x"}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
		t.Fatalf("sign in = %d to %q, want 303 to /ui/ (never off the console)", r.code, r.header.Get("Location"))
	}
	ck := (&http.Response{Header: r.header}).Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/ui/" {
		t.Fatalf("session cookie = %+v", ck)
	}
	if ck[0].Secure {
		t.Error("the cookie is Secure over plain HTTP to 127.0.0.1: the browser would drop it")
	}
	if r := e.do("POST", "/ui/login", "", url.Values{"token": {"servicetest-console-token"}}, "X-Forwarded-Proto", "https"); !strings.Contains(strings.ToLower(r.header.Get("Set-Cookie")), "secure") {
		t.Errorf("behind a TLS proxy the cookie is not Secure: %q", r.header.Get("Set-Cookie"))
	}
	sess := "cookie:" + ck[0].Value
	for _, auth := range []string{sess, "bearer", "basic"} {
		if r := e.do("GET", "/ui/", auth, nil); r.code != 200 || !strings.Contains(r.body, flow) {
			t.Errorf("overview with %s = %d", auth, r.code)
		}
	}
	if r := e.do("GET", "/ui/", "basic", nil); !strings.Contains(r.body, "alice/console-admin") {
		t.Error("basic auth's user name is not shown as who is signed in")
	}
	if r := e.do("POST", "/ui/logout", sess, url.Values{"csrf": {e.csrf(sess)}}); r.code != http.StatusSeeOther {
		t.Errorf("sign out = %d", r.code)
	}
	if r := e.do("GET", "/ui/", sess, nil); r.code != http.StatusUnauthorized {
		t.Errorf("after sign-out the session still works: %d", r.code)
	}
	// Guessing is paced: a burst of wrong tokens is soon answered 429.
	limited := false
	for range 30 {
		if r := e.do("POST", "/ui/login", "", url.Values{"token": {"guess"}}); r.code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("30 wrong sign-ins in a row were all let through")
	}
}

// Every change needs the page's CSRF token and a same-origin request; refused, it changes
// nothing. With them, the brake is set and audited with who did it through the console.
func TestConsoleBrakesNeedCSRFAndAreAudited(t *testing.T) {
	t.Parallel()
	e := start(t)
	form := url.Values{"flow": {flow}, "kind": {"pause"}, "on": {"true"}, "confirm": {"yes"}, "reason": {"flow broken"}}
	for name, tc := range map[string]struct {
		csrf string
		hdr  []string
	}{
		"no token":     {},
		"wrong token":  {csrf: "forged"},
		"cross-origin": {csrf: e.csrf("bearer"), hdr: []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if tc.csrf != "" {
			f.Set("csrf", tc.csrf)
		}
		if r := e.do("POST", "/ui/brakes", "bearer", f, tc.hdr...); r.code != http.StatusForbidden {
			t.Errorf("%s: POST = %d, want 403", name, r.code)
		}
		if s := e.switches(); len(s) != 0 {
			t.Fatalf("%s: the refused POST set %+v", name, s)
		}
	}
	// Unconfirmed: refused too.
	f := url.Values{"csrf": {e.csrf("bearer")}, "flow": {flow}, "kind": {"pause"}, "on": {"true"}}
	if r := e.do("POST", "/ui/brakes", "bearer", f); r.code != http.StatusBadRequest || len(e.switches()) != 0 {
		t.Errorf("unconfirmed pause = %d, switches %+v", r.code, e.switches())
	}
	form.Set("csrf", e.csrf("bearer"))
	if r := e.do("POST", "/ui/brakes", "bearer", form); r.code != http.StatusSeeOther {
		t.Fatalf("pause = %d: %.300s", r.code, r.body)
	}
	s := e.switches()
	if len(s) != 1 || s[0].Kind != ops.Pause || s[0].Flow != flow || s[0].By != "console-admin" || s[0].Reason != "flow broken" {
		t.Fatalf("switches = %+v", s)
	}
	a := e.audits("flows.pause")
	if len(a) != 1 || a[0]["user"] != "console-admin" || a[0]["via"] != "console" || a[0]["flow"] != flow {
		t.Errorf("audit = %+v", a)
	}
	if r := e.do("GET", "/ui/brakes", "bearer", nil); !strings.Contains(r.body, "paused") {
		t.Error("the brakes page does not show the pause")
	}
	if r := e.do("GET", "/ui/live", "bearer", nil); r.code != 200 || strings.Contains(r.body, "<html") || !strings.Contains(r.body, "paused") {
		t.Errorf("live fragment = %d, want the fragment alone showing the pause:\n%.300s", r.code, r.body)
	}
	// Every flow at once, and back.
	all := url.Values{"csrf": {e.csrf("bearer")}, "flow": {ops.AllFlows}, "kind": {"dryrun"}, "on": {"true"}, "confirm": {"yes"}}
	if r := e.do("POST", "/ui/brakes", "bearer", all); r.code != http.StatusSeeOther || len(e.switches()) != 2 {
		t.Errorf("dry-run every flow = %d, switches %+v", r.code, e.switches())
	}
	for _, bad := range []url.Values{
		{"flow": {"no-such-flow"}, "kind": {"pause"}, "on": {"true"}, "confirm": {"yes"}},
		{"flow": {flow}, "kind": {"explode"}, "on": {"true"}, "confirm": {"yes"}},
	} {
		bad.Set("csrf", e.csrf("bearer"))
		if r := e.do("POST", "/ui/brakes", "bearer", bad); r.code != http.StatusBadRequest {
			t.Errorf("POST %v = %d, want 400", bad, r.code)
		}
	}
}

// A principal that may only view a flow may neither switch its brakes nor replay or purge its
// dead letters: the resource sets decide, as they do for events.
func TestConsoleChangesNeedRunPermission(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *config.Config) {
		c.Console.Principal = "auditor"
		c.ResourceSets = append(c.ResourceSets, config.ResourceSet{Name: "auditors", Flows: []string{flow}, Users: []string{"auditor"}, Permissions: []string{"view"}})
	})
	e.setFaults(flow, `{"status":400}`)
	e.publish(event("perm-1", nil), nil)
	e.waitOutcome("perm-1", status.Failed)
	seqs := e.deadLetters("perm-1")
	if len(seqs) != 1 {
		t.Fatalf("dead letters = %v", seqs)
	}
	seq := strconv.FormatUint(seqs[0], 10)
	if r := e.do("GET", "/ui/brakes", "bearer", nil); !strings.Contains(r.body, "you may not run this flow") {
		t.Error("the brakes page offers changes the principal may not make")
	}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/ui/brakes", url.Values{"flow": {flow}, "kind": {"pause"}, "on": {"true"}, "confirm": {"yes"}}},
		{"/ui/brakes", url.Values{"flow": {ops.AllFlows}, "kind": {"pause"}, "on": {"true"}, "confirm": {"yes"}}},
		{"/ui/dlq/replay", url.Values{"seq": {seq}}},
		{"/ui/dlq/replay", url.Values{"seq": {seq}, "confirm": {"yes"}}},
		{"/ui/dlq/replay", url.Values{"scope": {"filter"}, "confirm": {"yes"}}},
		{"/ui/dlq/purge", url.Values{"seq": {seq}, "confirm": {"yes"}}},
	} {
		tc.form.Set("csrf", e.csrf("bearer"))
		if r := e.do("POST", tc.path, "bearer", tc.form); r.code != http.StatusForbidden || !strings.Contains(r.body, "may not run flow") {
			t.Errorf("POST %s %v = %d, want 403 naming the flow:\n%.300s", tc.path, tc.form, r.code, r.body)
		}
	}
	if len(e.switches()) != 0 || len(e.deadLetters("perm-1")) != 1 || len(e.audits(">")) != 0 {
		t.Errorf("a refused change changed something: switches %+v, letters %v, audit %v", e.switches(), e.deadLetters("perm-1"), e.audits(">"))
	}
}

// A dead letter's page shows its attempts and original event with secrets redacted; replay
// shows a preview that changes nothing, then replays once, audited with who; purge likewise.
func TestConsoleDeadLetters(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.setFaults(flow, `{"status":400}`)
	e.publish(event("dl-1", nil), map[string][]string{"X-Api-Token": {"header-secret-value"}})
	e.publish(event("dl-2", map[string]any{"issueId": nil, "clientSecret": "payload-secret-value"}), nil) // invalid: rejected at intake
	e.waitOutcome("dl-1", status.Failed)
	e.waitOutcome("dl-2", status.Rejected)
	seq := strconv.FormatUint(e.deadLetters("dl-1")[0], 10)
	bad := strconv.FormatUint(e.deadLetters("dl-2")[0], 10)

	list := e.do("GET", "/ui/dlq?flow="+flow, "bearer", nil)
	if list.code != 200 || !strings.Contains(list.body, "dl-1") || strings.Contains(list.body, "dl-2") {
		t.Errorf("filtered list = %d:\n%.500s", list.code, list.body)
	}
	if r := e.do("GET", "/ui/dlq?reason=schema_violation", "bearer", nil); !strings.Contains(r.body, "dl-2") || strings.Contains(r.body, "dl-1") {
		t.Error("the reason filter does not select by reason")
	}
	if r := e.do("GET", "/ui/dlq?reason=bogus", "bearer", nil); r.code != http.StatusBadRequest {
		t.Errorf("unknown reason = %d, want 400", r.code)
	}
	for _, s := range []string{seq, bad} {
		r := e.do("GET", "/ui/dlq/"+s, "bearer", nil)
		if r.code != 200 || strings.Contains(r.body, "header-secret-value") || strings.Contains(r.body, "payload-secret-value") {
			t.Errorf("letter %s = %d, or shows a secret:\n%s", s, r.code, r.body)
		}
	}
	if r := e.do("GET", "/ui/dlq/"+bad, "bearer", nil); !strings.Contains(r.body, "clientSecret") || !strings.Contains(r.body, ops.Redacted) {
		t.Error("the redacted field is not shown as redacted")
	}
	if r := e.do("GET", "/ui/dlq/"+seq, "bearer", nil); !strings.Contains(r.body, `id="attempts"`) || !strings.Contains(r.body, "john.smith@okta.com") {
		t.Error("the letter's page lacks its attempts or payload")
	}
	if r := e.do("GET", "/ui/dlq/999999", "bearer", nil); r.code != http.StatusNotFound {
		t.Errorf("missing letter = %d, want 404", r.code)
	}
	if r := e.do("GET", "/ui/dlq/abc", "bearer", nil); r.code != http.StatusBadRequest {
		t.Errorf("bad sequence = %d, want 400", r.code)
	}

	// Preview first: nothing changes.
	preview := e.do("POST", "/ui/dlq/replay", "bearer", url.Values{"csrf": {e.csrf("bearer")}, "seq": {seq}})
	if preview.code != 200 || !strings.Contains(preview.body, "would be replayed") || !strings.Contains(preview.body, "10 per second") {
		t.Fatalf("preview = %d:\n%.800s", preview.code, preview.body)
	}
	if len(e.deadLetters("dl-1")) != 1 || len(e.audits("dlq.replay")) != 0 {
		t.Fatal("the preview replayed")
	}
	e.setFaults(flow, `{}`)
	r := e.do("POST", "/ui/dlq/replay", "bearer", url.Values{"csrf": {e.csrf("bearer")}, "seq": {seq}, "confirm": {"yes"}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/ui/dlq" || !strings.Contains(r.header.Get("Set-Cookie"), "Replayed") {
		t.Fatalf("replay = %d %q:\n%.500s", r.code, r.header.Get("Location"), r.body)
	}
	e.waitOutcome("dl-1", status.Succeeded)
	if n := e.outcomes("dl-1")[status.Succeeded]; n != 1 {
		t.Errorf("dl-1 succeeded %d times, want once", n)
	}
	if a := e.audits("dlq.replay"); len(a) != 1 || a[0]["user"] != "console-admin" {
		t.Errorf("replay audit = %+v", a)
	}

	// Purge the rejected one: preview, then confirmed.
	if r := e.do("POST", "/ui/dlq/purge", "bearer", url.Values{"csrf": {e.csrf("bearer")}, "seq": {bad}}); r.code != 200 || !strings.Contains(r.body, "deleted for good") || len(e.deadLetters("dl-2")) != 1 {
		t.Fatalf("purge preview = %d, letters %v", r.code, e.deadLetters("dl-2"))
	}
	if r := e.do("POST", "/ui/dlq/purge", "bearer", url.Values{"csrf": {e.csrf("bearer")}, "scope": {"filter"}, "reason": {"schema_violation"}, "confirm": {"yes"}}); r.code != http.StatusSeeOther {
		t.Fatalf("purge = %d", r.code)
	}
	if n := len(e.deadLetters("dl-2")); n != 0 {
		t.Errorf("after purge %d letters left", n)
	}
	if a := e.audits("dlq.purge"); len(a) != 1 || a[0]["user"] != "console-admin" {
		t.Errorf("purge audit = %+v", a)
	}
	if r := e.do("POST", "/ui/dlq/replay", "bearer", url.Values{"csrf": {e.csrf("bearer")}}); r.code != http.StatusBadRequest {
		t.Errorf("replay of nothing = %d, want 400", r.code)
	}
}

// Events are found by id, user login, issue id and flow; an event's page shows its journey,
// links its trace in Jaeger, and shows a dry run's inputs with secrets redacted.
func TestConsoleEventsAndJourney(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.publish(event("ev-find-me", nil), nil)
	e.waitOutcome("ev-find-me", status.Succeeded)
	for _, q := range []string{"q=ev-find-me", "q=JOHN.SMITH@okta.com", "q=Alert_V32uL3CHijlQYHq", "flow=" + flow} {
		r := e.do("GET", "/ui/events?"+q, "bearer", nil)
		if r.code != 200 || !strings.Contains(r.body, `href="/ui/events/ev-find-me"`) {
			t.Errorf("search %s = %d, does not find the event:\n%.400s", q, r.code, r.body)
		}
	}
	if r := e.do("GET", "/ui/events?q=nobody-at-all", "bearer", nil); !strings.Contains(r.body, "No event matches") {
		t.Error("a search that finds nothing does not say so")
	}
	if r := e.do("GET", "/ui/events?q=x&since=yesterday-ish", "bearer", nil); r.code != http.StatusBadRequest {
		t.Errorf("bad since = %d, want 400", r.code)
	}
	j := e.do("GET", "/ui/events/ev-find-me", "bearer", nil)
	if j.code != 200 || !strings.Contains(j.body, "succeeded") || !strings.Contains(j.body, jaegerURL+"/trace/") {
		t.Errorf("journey = %d, want the succeeded step and a Jaeger link:\n%.800s", j.code, j.body)
	}
	if !strings.Contains(j.body, "Inputs its flows receive") || !strings.Contains(j.body, "john.smith@okta.com") {
		t.Errorf("the journey does not show what the flow receives:\n%s", j.body)
	}
	if r := e.do("GET", "/ui/events/never-seen", "bearer", nil); r.code != http.StatusNotFound {
		t.Errorf("unknown event = %d, want 404", r.code)
	}
	// A dry run records the inputs the flow would have received.
	form := url.Values{"csrf": {e.csrf("bearer")}, "flow": {flow}, "kind": {"dryrun"}, "on": {"true"}, "confirm": {"yes"}}
	if r := e.do("POST", "/ui/brakes", "bearer", form); r.code != http.StatusSeeOther {
		t.Fatalf("dry-run on = %d", r.code)
	}
	e.publish(event("ev-dry", nil), nil)
	e.waitOutcome("ev-dry", status.DryRun)
	if r := e.do("GET", "/ui/events/ev-dry", "bearer", nil); !strings.Contains(r.body, "Inputs the flow received") || !strings.Contains(r.body, "john.smith@okta.com") {
		t.Errorf("the dry run's inputs are not shown:\n%.1500s", r.body)
	}
	if r := e.do("GET", "/ui/", "bearer", nil); r.code != 200 || !strings.Contains(r.body, "<svg") || !strings.Contains(r.body, "dry-run") {
		t.Errorf("overview = %d, want the chart and the dry-run tag", r.code)
	}
}
