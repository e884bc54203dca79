package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// Redacted replaces secret values in logs.
const Redacted = "[REDACTED]"

// secretKeyParts are the fragments of an attribute key or header name that mark its value as
// secret. Keys are compared lower-cased, with '-' and '.' read as '_'.
var secretKeyParts = []string{"token", "authorization", "password", "passwd", "secret", "private_key", "privatekey", "api_key", "apikey", "cookie", "credential"}

// SecretKey reports whether an attribute key or header name looks like it holds a secret:
// client_token, Authorization, X-Api-Client-Token, password, private_key, …
func SecretKey(key string) bool {
	k := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(key))
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// RedactHandler wraps h so that the value of every attribute whose key looks secret (see
// [SecretKey]) is logged as "[REDACTED]", in groups too, and so that header maps
// (http.Header, map[string][]string, map[string]string) are logged with their secret
// headers' values redacted. It is a safety net: code must still not log secrets, and a
// secret inside a message or under an innocent key is not caught.
func RedactHandler(h slog.Handler) slog.Handler { return redactHandler{h} }

type redactHandler struct{ slog.Handler }

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.Handler.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactHandler{r.Handler.WithAttrs(red)}
}

func (r redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{r.Handler.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	if SecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		as := v.Group()
		red := make([]slog.Attr, len(as))
		for i, g := range as {
			red[i] = redactAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		switch h := v.Any().(type) {
		case http.Header:
			return slog.Any(a.Key, redactMultiMap(h))
		case map[string][]string:
			return slog.Any(a.Key, redactMultiMap(h))
		case map[string]string:
			out := make(map[string]string, len(h))
			for k, val := range h {
				if SecretKey(k) {
					val = Redacted
				}
				out[k] = val
			}
			return slog.Any(a.Key, out)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func redactMultiMap(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		if SecretKey(k) {
			vs = []string{Redacted}
		}
		out[k] = vs
	}
	return out
}
