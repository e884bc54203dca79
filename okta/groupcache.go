package okta

import (
	"context"
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// DefaultGroupLookupTimeout bounds one GET /api/v1/users/{id}/groups made for a caller whose
// context has no deadline.
const DefaultGroupLookupTimeout = 10 * time.Second

// GroupCache answers which groups a user is in, from [Client.UserGroups], keeping each answer
// for a short TTL and at most Size users (least recently used out first), so a burst of risk
// events for one user costs one call, and a membership changed in Okta counts within the
// TTL. Failures are not cached: the next event asks again. Concurrent misses for one user
// share one request. It is safe for concurrent use.
type GroupCache struct {
	client *Client
	ttl    time.Duration
	now    func() time.Time
	// lru is the size-bounded cache (golang-lru's expirable variant starts a goroutine that
	// never ends, so the TTL is checked here on each read instead).
	lru    *lru.Cache[string, cachedGroups]
	flight singleflight.Group
}

type cachedGroups struct {
	ids     []string
	expires time.Time
}

// NewGroupCache returns a cache of size users, each kept for ttl.
func NewGroupCache(c *Client, size int, ttl time.Duration) (*GroupCache, error) {
	if c == nil || size < 1 || ttl <= 0 {
		return nil, errors.New("okta: a group cache needs a client, a size of at least 1 and a positive TTL")
	}
	cache, err := lru.New[string, cachedGroups](size)
	if err != nil {
		return nil, err
	}
	return &GroupCache{client: c, ttl: ttl, now: time.Now, lru: cache}, nil
}

// UserGroupIDs returns the ids of the user's groups (an empty list for none). An error is a
// failed look-up, an [*Error]: never read it as "in no group".
func (g *GroupCache) UserGroupIDs(ctx context.Context, userID string) ([]string, error) {
	if e, ok := g.lru.Get(userID); ok {
		if g.now().Before(e.expires) {
			return e.ids, nil
		}
		g.lru.Remove(userID)
	}
	v, err, _ := g.flight.Do(userID, func() (any, error) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultGroupLookupTimeout)
			defer cancel()
		}
		groups, err := g.client.UserGroups(ctx, userID)
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(groups))
		for _, gr := range groups {
			ids = append(ids, gr.ID)
		}
		g.lru.Add(userID, cachedGroups{ids: ids, expires: g.now().Add(g.ttl)})
		return ids, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// Len is the number of users cached.
func (g *GroupCache) Len() int { return g.lru.Len() }
