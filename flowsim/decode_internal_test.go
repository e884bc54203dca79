package flowsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"a":"b","n":1,"t":true,"z":null}`, `{"a":[1]}`, `{"a":{"b":1}}`, `[]`, `"x"`,
		`{"idempotencyKey":"k"}`, `{"idempotencyKey":1}`, `{"a":1}{}`, `{"a":1e999}`, "\xff", `{"a":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs, key, err := decodeBody(data)
		if err != nil {
			return
		}
		if raw, ok := inputs[fieldIdempotencyKey]; ok && raw != key {
			t.Fatalf("body idempotencyKey %v, returned key %q", raw, key)
		}
		for k, v := range inputs {
			switch v.(type) {
			case string, json.Number, bool, nil:
			default:
				t.Fatalf("input %q has non-scalar %T", k, v)
			}
		}
	})
}

// FuzzInvoke sends arbitrary bodies through the whole handler: it must answer 200 or 400.
func FuzzInvoke(f *testing.F) {
	f.Add([]byte(`{"a":"b"}`), "k")
	f.Add([]byte(`{"a":["b"]}`), "")
	f.Add([]byte("\x00"), "\xff")
	sim, err := New(Config{Seed: 1, Flows: []Flow{{Alias: "a", RateLimit: 1e9}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		r := httptest.NewRequest(http.MethodPost, "/api/flo/a/invoke", strings.NewReader(string(body)))
		if key != "" && !strings.ContainsAny(key, "\r\n\x00") {
			r.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", w.Body)
		}
	})
}

func FuzzFaultsJSON(f *testing.F) {
	f.Add([]byte(`{"errorRate":0.5,"latency":"250ms","hang":"1m"}`))
	f.Add([]byte(`{"status":400}`))
	f.Add([]byte(`{"latency":5}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fl Faults
		if err := json.Unmarshal(data, &fl); err != nil {
			return
		}
		if fl.Validate() != nil {
			return
		}
		b, err := json.Marshal(fl)
		if err != nil {
			t.Fatalf("Marshal(%+v) = %v", fl, err)
		}
		var again Faults
		if err := json.Unmarshal(b, &again); err != nil || again != fl {
			t.Fatalf("round trip %s: %+v, %v; want %+v", b, again, err, fl)
		}
	})
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := Faults{ErrorRate: 0.25, TimeoutRate: 0.1, RateLimitRate: 0.05, Latency: 250 * time.Millisecond,
		LatencyJitter: 50 * time.Millisecond, Status: 0, Hang: 2 * time.Second}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"errorRate":0.25,"timeoutRate":0.1,"rateLimitRate":0.05,"latency":"250ms","latencyJitter":"50ms","status":0,"hang":"2s"}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out Faults
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("Unmarshal = %+v, %v; want %+v", out, err, in)
	}
}
