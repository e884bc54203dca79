package service

import (
	"fmt"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/policy"
)

// This file wires what issue 10 adds on top of the org client: people.groups look-ups for the
// entity-risk rules, and the System Log poller (backfill.go).

var _ policy.GroupLookup = (*okta.GroupCache)(nil)

// RouterOptions are the policy options for cfg: with the okta block, the users' groups are
// looked up in the org (okta.groupCache bounds the cache); without it, an event whose rule
// needs groups it does not carry is refused (policy.ErrGroupMembershipUnknown), as before.
func RouterOptions(cfg *config.Config, oc *okta.Client) ([]policy.Option, error) {
	if oc == nil || !cfg.UsesGroups() {
		return nil, nil
	}
	gc, err := okta.NewGroupCache(oc, cfg.Okta.GroupCache.Size, cfg.Okta.GroupCache.TTL)
	if err != nil {
		return nil, fmt.Errorf("okta.groupCache: %w", err)
	}
	return []policy.Option{policy.WithGroupLookup(gc)}, nil
}
