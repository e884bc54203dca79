package flow

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryAfterHeaders(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		h      http.Header
		want   time.Duration
	}{
		{"delta", 503, http.Header{"Retry-After": {"5"}}, 5 * time.Second},
		{"delta zero", 503, http.Header{"Retry-After": {"0"}}, 0},
		{"negative delta", 503, http.Header{"Retry-After": {"-5"}}, 0},
		{"date vs now", 503, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"date vs Date header", 503, http.Header{
			"Date":        {now.Add(-time.Hour).Format(http.TimeFormat)},
			"Retry-After": {now.Add(-time.Hour + 10*time.Second).Format(http.TimeFormat)},
		}, 10 * time.Second},
		{"reset vs now", 429, http.Header{"X-Rate-Limit-Reset": {"1893456060"}}, time.Minute}, // 2030-01-01T00:01:00Z
		{"reset on 500 ignored", 500, http.Header{"X-Rate-Limit-Reset": {"1893456060"}}, 0},
		{"bad Date falls back to now", 429, http.Header{"Date": {"yesterday"}, "X-Rate-Limit-Reset": {"1893456005"}}, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.status, tt.h, now); got != tt.want {
			t.Errorf("%s: retryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "1e9", " 3 ", ""} {
		f.Add(s, s)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, reset string) {
		h := http.Header{"Retry-After": {ra}, "X-Rate-Limit-Reset": {reset}, "Date": {ra}}
		d := retryAfter(http.StatusTooManyRequests, h, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("retryAfter(%q, %q) = %v, out of [0, %v]", ra, reset, d, maxRetryAfter)
		}
	})
}

func FuzzEncodeBody(f *testing.F) {
	f.Add("eventId", "evt-1", int64(3), 1.5, true, "k")
	f.Add("", "", int64(-1), 0.0, false, "")
	f.Add("idempotencyKey", "\xff\x00<>&", int64(1<<62), 1e308, true, "\u2028")
	f.Fuzz(func(t *testing.T, key, s string, i int64, fl float64, b bool, idem string) {
		body, err := encodeBody(Request{
			Inputs:         map[string]any{key: s, key + "_i": i, key + "_f": fl, key + "_b": b},
			IdempotencyKey: idem,
		})
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v does not wrap ErrInvalidInput", err)
			}
			return
		}
		if !utf8.Valid(body) || !strings.HasPrefix(string(body), "{") {
			t.Fatalf("body %q is not a UTF-8 JSON object", body)
		}
	})
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	got := snippet([]byte("a\x00b\n\n  c tok-secret \xff"), 200, []string{"tok-secret"})
	if want := "a b c [REDACTED]"; got != want {
		t.Errorf("snippet = %q, want %q", got, want)
	}
}

func TestSnippetRedactsASecretStraddlingTheCut(t *testing.T) {
	t.Parallel()
	secret := "tok-SECRET-8c1f"
	body := []byte(strings.Repeat("x", 195) + secret + " trailing")
	got := snippet(body, 200, []string{secret})
	if strings.Contains(got, "tok-SEC") {
		t.Errorf("snippet %q shows the start of the secret", got)
	}
}
