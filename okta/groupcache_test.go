package okta_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/okta"
)

// countingTransport counts the group look-ups that reach the org.
type countingTransport struct {
	groups atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/groups") {
		c.groups.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func groupCache(t *testing.T, size int, ttl time.Duration) (*okta.GroupCache, *countingTransport) {
	t.Helper()
	k := newECKey(t)
	o := startOrg(t, publicJWK(k, kid))
	ct := &countingTransport{}
	c, err := okta.New(okta.Config{OrgURL: o.srv.URL, ClientID: clientID, Key: mustKey(t, pemPKCS8(t, k), kid), HTTPClient: &http.Client{Transport: ct}, Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := okta.NewGroupCache(c, size, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return gc, ct
}

func TestGroupCache(t *testing.T) {
	t.Parallel()
	gc, ct := groupCache(t, 10, time.Hour)
	for range 3 {
		ids, err := gc.UserGroupIDs(t.Context(), "00u-alice")
		if err != nil || !slices.Equal(ids, []string{"00g-admins", "00g-all"}) {
			t.Fatalf("alice: %v, %v", ids, err)
		}
	}
	if n := ct.groups.Load(); n != 1 {
		t.Errorf("%d look-ups for three questions about one user, want 1", n)
	}
	// A failure is an error, never "no groups", and it is not cached.
	for range 2 {
		if ids, err := gc.UserGroupIDs(t.Context(), "00u-nobody"); !errors.Is(err, okta.ErrNotFound) || ids != nil {
			t.Errorf("unknown user: %v, %v; want ErrNotFound", ids, err)
		}
	}
	if n := ct.groups.Load(); n != 3 {
		t.Errorf("%d look-ups, want the failure asked again (3)", n)
	}
}

func TestGroupCacheBounds(t *testing.T) {
	t.Parallel()
	gc, ct := groupCache(t, 1, time.Hour)
	for _, u := range []string{"00u-alice", "00u-bob", "00u-alice"} {
		if _, err := gc.UserGroupIDs(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	if n := ct.groups.Load(); n != 3 || gc.Len() != 1 {
		t.Errorf("size 1: %d look-ups, %d cached; want alice evicted by bob (3 look-ups, 1 cached)", n, gc.Len())
	}

	short, ct2 := groupCache(t, 10, 20*time.Millisecond)
	testwait.Until(t, "the entry to expire", func() bool {
		if _, err := short.UserGroupIDs(t.Context(), "00u-bob"); err != nil {
			t.Fatal(err)
		}
		return ct2.groups.Load() >= 2
	})
}
