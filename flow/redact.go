package flow

import (
	"net/http"
	"slices"
	"strings"

	"github.com/remediator/remediator/telemetry"
)

// Bounds on the response headers a [Result] keeps, so that a record built from them stays
// small whatever the server sends.
const (
	maxResultHeaders     = 32
	maxResultHeaderValue = 512
)

// RedactHeader returns a copy of h fit to be stored: the values of headers whose name looks
// secret (Authorization, Set-Cookie, Cookie, anything naming a token, secret, password or
// credential: [telemetry.SecretKey]) become "[REDACTED]", each of secrets (the credentials the
// request carried) is cut out of the other values, values are cut at 512 bytes, and at most 32
// headers are kept (by name order). Nil for an empty header.
func RedactHeader(h http.Header, secrets []string) http.Header {
	if len(h) == 0 {
		return nil
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) > maxResultHeaders {
		names = names[:maxResultHeaders]
	}
	out := make(http.Header, len(names))
	for _, k := range names {
		if telemetry.SecretKey(k) {
			out[k] = []string{telemetry.Redacted}
			continue
		}
		vs := make([]string, 0, len(h[k]))
		for _, v := range h[k] {
			v = redact(v, secrets)
			if len(v) > maxResultHeaderValue {
				v = strings.ToValidUTF8(v[:maxResultHeaderValue], "")
			}
			vs = append(vs, v)
		}
		out[k] = vs
	}
	return out
}
