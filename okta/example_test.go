package okta_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/remediator/remediator/okta"
)

func ExampleParseRateLimit() {
	h := http.Header{}
	h.Set("X-Rate-Limit-Limit", "120")
	h.Set("X-Rate-Limit-Remaining", "0")
	h.Set("X-Rate-Limit-Reset", "1893456030") // 2030-01-01T00:00:30Z
	h.Set("Date", "Tue, 01 Jan 2030 00:00:10 GMT")
	rl, ok := okta.ParseRateLimit(h)
	fmt.Println(ok, rl.Limit, rl.Remaining, rl.Wait(time.Now()))
	// Output: true 120 0 21s
}

func ExampleParseKey() {
	_, err := okta.ParseKey([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "kid-1")
	fmt.Println(err)
	// Output: PEM block is a public key; remediator needs the private key
}
