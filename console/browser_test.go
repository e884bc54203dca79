package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/status"
)

// One headless Chromium for the package, started by the first browser test and closed by
// TestMain; each test opens its own tab.
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel []context.CancelFunc
	err    error
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab opens a browser tab for the test. Without Chromium the test is skipped, except on CI
// (CI set), where .ci/run installs it and its absence is a failure.
func tab(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed, and CI is set: .ci/run installs it (apt-get install chromium)")
		}
		t.Skip("browser tests skipped: chromium is not installed (apt-get install chromium) and CI is unset")
	}
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.WindowSize(1360, 900), chromedp.Flag("disable-dev-shm-usage", true))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelBrowser := chromedp.NewContext(alloc)
		browser.ctx, browser.cancel = ctx, []context.CancelFunc{cancelBrowser, cancelAlloc}
		browser.err = chromedp.Do(ctx) // starts the browser, with no timeout: it lives as long as ctx
	})
	if browser.err != nil {
		t.Fatalf("start chromium (%s): %v", path, browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatal(err)
	}
	return ctx
}

func closeBrowser() {
	for _, c := range browser.cancel {
		c()
	}
}

// artifacts is where screenshots go: $REMEDIATOR_ARTIFACTS, else testdata/artifacts in this
// package (ignored by git).
func artifacts(t *testing.T) string {
	dir := os.Getenv("REMEDIATOR_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(artifacts(t), name+".png"), png, 0o644)
	})
}

// do runs browser actions, bounded: a step that waits on the page waits at most this long.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*testwait.DefaultTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*testwait.DefaultTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// until waits until the JavaScript expression is true in the page.
func until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(testwait.DefaultTimeout))(ctx, tg)
		return err
	})
}

// acceptConfirm answers the page's confirmation dialogs yes, as the operator would.
var acceptConfirm = chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`)

// The console in a real browser: refused before sign-in; the overview's counts change without
// a reload while events flow; an event found by id and its journey; a dead letter opened,
// previewed, replayed and succeeding once; a flow paused (dispatch stops) and resumed; and a
// POST without the CSRF token changing nothing. Screenshots of each page go to artifacts.
func TestBrowserConsole(t *testing.T) {
	ctx := tab(t)
	e := start(t)
	cell := func(count string) string {
		return fmt.Sprintf(`document.querySelector('tr[data-flow=%q] td[data-count=%q]')`, flow, count)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Refused before sign-in.
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.base))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 401 {
		t.Errorf("unauthenticated overview = %d, want 401", resp.Status)
	}
	do(t, ctx, "sign-in page", chromedp.WaitVisible(css("#token")), screenshot(t, "login"))
	if get(t, ctx, "flows shown?", chromedp.Evaluate[bool](`document.querySelector('#flows') !== null`)) {
		t.Error("the sign-in page shows the flows")
	}

	// Sign in; counts change without a reload.
	do(t, ctx, "sign in", chromedp.SendKeys(css("#token"), "servicetest-console-token"),
		chromedp.Click(css("#signin")), chromedp.WaitVisible(css("#flows")),
		chromedp.Evaluate[chromedp.Void](`window.noReload = "still here"`))
	before := get(t, ctx, "read count", chromedp.Evaluate[string](cell("succeeded")+`.textContent.trim()`))
	for i := range 3 {
		e.publish(event(fmt.Sprintf("b-live-%d", i), nil), nil)
	}
	do(t, ctx, "live update", until(cell("succeeded")+`.textContent.trim() === "3"`), screenshot(t, "overview"))
	if marker := get(t, ctx, "marker", chromedp.Evaluate[string](`window.noReload`)); before != "0" || marker != "still here" {
		t.Errorf("succeeded count went from %q to 3 with marker %q: want from 0, without a reload", before, marker)
	}

	// Find an event by id and open its journey.
	do(t, ctx, "event search", chromedp.Navigate(e.base+"events"), chromedp.SendKeys(css("#q"), "b-live-1"),
		chromedp.Click(css("#search")), chromedp.WaitVisible(css("a.event-link")), screenshot(t, "events"),
		chromedp.Click(css("a.event-link")), chromedp.WaitVisible(css("#journey")), screenshot(t, "journey"))
	if journey := get(t, ctx, "journey", chromedp.Text(css("#journey"))); !strings.Contains(journey, "succeeded") {
		t.Errorf("journey of b-live-1:\n%s", journey)
	}

	// A dead letter: open it, preview the replay, replay it; the event succeeds once.
	e.setFaults(flow, `{"status":400}`)
	e.publish(event("b-dead", nil), nil)
	e.waitOutcome("b-dead", status.Failed)
	seq := strconv.FormatUint(e.deadLetters("b-dead")[0], 10)
	do(t, ctx, "dead letter", chromedp.Navigate(e.base+"dlq"), chromedp.WaitVisible(css("#letters")), screenshot(t, "dlq"),
		chromedp.Click(css(`a[href="/ui/dlq/`+seq+`"]`)), chromedp.WaitVisible(css("#payload")), screenshot(t, "letter"),
		chromedp.Click(css("#preview-replay")), chromedp.WaitVisible(css("#plan-summary")), screenshot(t, "replay-preview"))
	if n := len(e.deadLetters("b-dead")); n != 1 {
		t.Fatalf("after the preview %d dead letters, want the 1 untouched", n)
	}
	e.setFaults(flow, `{}`)
	do(t, ctx, "replay", chromedp.Click(css("#confirm-replay")), chromedp.WaitVisible(css("#flash")))
	e.waitOutcome("b-dead", status.Succeeded)
	if n := e.outcomes("b-dead")[status.Succeeded]; n != 1 {
		t.Errorf("b-dead succeeded %d times, want once", n)
	}

	// Pause: dispatch stops (the event waits as backlog); resume: it runs.
	pauseForm := fmt.Sprintf(`tr[data-flow=%q] form.brake`, flow)
	do(t, ctx, "pause", chromedp.Navigate(e.base+"brakes"), chromedp.WaitVisible(css("#brakes")), acceptConfirm,
		chromedp.Click(css(pauseForm+` input[name="confirm"]`)), chromedp.Click(css(pauseForm+` button.pause`)),
		chromedp.WaitVisible(css("#flash")), screenshot(t, "brakes"))
	if s := e.switches(); len(s) != 1 || s[0].Kind != ops.Pause {
		t.Fatalf("after pause, switches = %+v", s)
	}
	e.publish(event("b-paused", nil), nil)
	backlog := fmt.Sprintf(`document.querySelector('tr[data-flow=%q] td:last-child').textContent.replace(/\s/g, "")`, flow)
	do(t, ctx, "paused backlog", chromedp.Navigate(e.base), chromedp.WaitVisible(css("#flows")),
		until(backlog+` !== "0/0/0"`), screenshot(t, "overview-paused"))
	if n := e.outcomes("b-paused")[status.Succeeded]; n != 0 {
		t.Fatalf("a paused flow ran b-paused")
	}
	do(t, ctx, "resume", chromedp.Navigate(e.base+"brakes"), chromedp.WaitVisible(css("#brakes")), acceptConfirm,
		chromedp.Click(css(pauseForm+` input[name="confirm"]`)), chromedp.Click(css(pauseForm+` button.resume`)),
		chromedp.WaitVisible(css("#flash")))
	e.waitOutcome("b-paused", status.Succeeded)

	// A POST without the CSRF token, from the signed-in page itself, changes nothing.
	code := get(t, ctx, "CSRF-less POST", chromedp.Evaluate[int](fmt.Sprintf(`fetch("/ui/brakes", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "flow=%s&kind=pause&on=true&confirm=yes"}).then(r => r.status)`, flow),
		chromedp.EvalAwaitPromise))
	if code != 403 || len(e.switches()) != 0 {
		t.Errorf("CSRF-less POST = %d, switches %+v; want 403 and none", code, e.switches())
	}
}
