package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/remediator/remediator/config"
)

// The profiler is on the admin listener only when http.pprof asks for it; it is off by default.
func TestPprofOnTheAdminListenerOnlyWhenSwitchedOn(t *testing.T) {
	t.Parallel()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Pprof {
		t.Error("http.pprof is on by default")
	}
	for _, on := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		stop := serveHTTP(ln, &health{}, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler), on)
		resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if want := map[bool]int{false: 404, true: 200}[on]; resp.StatusCode != want {
			t.Errorf("http.pprof %v: /debug/pprof/cmdline answered %d, want %d", on, resp.StatusCode, want)
		}
		if err := stop(context.Background()); err != nil {
			t.Error(err)
		}
	}
}
