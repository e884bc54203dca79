package service_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// Okta's event hook, replayed into the running pipeline over real HTTP: the verification
// GET, then a batched delivery with a HIGH user.risk.detect, a duplicate of it, a
// user.risk.change and an unrelated event type, delivered twice as Okta retries. Exactly the
// two risk events become entity-risk events, each once, and each runs its rule's flow once.
func TestOktaEventHookIntoThePipeline(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "event-hook-token")
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	base := "http://" + svc.Addrs.Ingress

	req, _ := http.NewRequest(http.MethodGet, base+"/hooks/okta", nil)
	req.Header.Set("X-Okta-Verification-Challenge", "challenge-123")
	code, body := do(t, req)
	if code != 200 || !bytes.Contains(body, []byte(`"verification":"challenge-123"`)) {
		t.Fatalf("verification GET = %d %s", code, body)
	}

	delivery := deliveryWithDuplicate(t, "../examples/okta-event-hook-delivery.json")
	for try := range 2 { // Okta's retry of the same delivery
		req, _ := http.NewRequest(http.MethodPost, base+"/hooks/okta", bytes.NewReader(delivery))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", servicetest.OktaHookSecret)
		if code, body := do(t, req); code/100 != 2 {
			t.Fatalf("delivery %d = %d %s", try+1, code, body)
		}
	}

	b := svc.Connect(t)
	testwait.Until(t, "both risk events remediated", func() bool { return countStatus(t, b, status.Succeeded) == 2 },
		testwait.WakeOn(servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)))
	info, err := b.StreamInfo(t.Context(), broker.StreamEvents, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Messages != 2 {
		t.Errorf("%s holds %d events, want the 2 risk events once each", broker.StreamEvents, info.Messages)
	}
	for flow, want := range map[string]int{"clear-sessions": 1, "notify-slack": 1} {
		req, _ := http.NewRequest(http.MethodGet, svc.Addrs.Simulator+"/_sim/flows/"+flow+"/invocations", nil)
		code, body := do(t, req)
		var invs []flowsim.Invocation
		if code != 200 || json.Unmarshal(body, &invs) != nil {
			t.Fatalf("invocations of %s = %d %s", flow, code, body)
		}
		if len(invs) != want {
			t.Errorf("flow %s invoked %d times, want %d", flow, len(invs), want)
		}
	}

	// A wrong secret stores nothing.
	req, _ = http.NewRequest(http.MethodPost, base+"/hooks/okta", bytes.NewReader(delivery))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "not-the-secret")
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("wrong secret = %d, want 401", code)
	}
}

// deliveryWithDuplicate returns the example delivery with its first LogEvent twice.
func deliveryWithDuplicate(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	data := doc["data"].(map[string]any)
	events := data["events"].([]any)
	data["events"] = append([]any{events[0]}, events...)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
