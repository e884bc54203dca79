package okta_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/remediator/remediator/okta"
)

// FuzzParseKey: arbitrary bytes never panic, and an error never quotes the input.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`), "k")
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"), "")
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\n\n-----END EC PRIVATE KEY-----"), "k")
	f.Fuzz(func(t *testing.T, data []byte, kid string) {
		_, err := okta.ParseKey(data, kid)
		if err != nil && len(data) >= 16 && bytes.Contains([]byte(err.Error()), data) {
			t.Errorf("error %q quotes the key material", err)
		}
	})
}

// FuzzResponseError: any error body and WWW-Authenticate header give an *okta.Error
// without panicking.
func FuzzResponseError(f *testing.F) {
	f.Add(403, `{"errorCode":"E0000006","errorSummary":"no","errorCauses":[{"errorSummary":"x"}]}`,
		`Bearer realm="IdpMyAccountAPI", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", scope="okta.users.read"`)
	f.Add(401, `{"error":"invalid_dpop_proof"}`, `Bearer error="`)
	f.Add(429, ``, `DPoP ,,,=`)
	f.Fuzz(func(t *testing.T, status int, body, challenge string) {
		if status < 300 || status > 599 {
			return
		}
		h := http.Header{}
		h.Set("WWW-Authenticate", challenge)
		err := okta.ResponseError("GET /x", &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewBufferString(body))})
		if err == nil || err.Error() == "" {
			t.Fatalf("ResponseError(%d) = %v", status, err)
		}
	})
}
