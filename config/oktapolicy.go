package config

import (
	"strings"
	"time"

	"github.com/remediator/remediator/okta"
)

// GroupCacheConfig (okta.groupCache) bounds the cache of the users' groups remediator looks
// up in the org (GET /api/v1/users/{id}/groups, scope okta.users.read) to evaluate the
// people.groups conditions of entity-risk rules. Used only with the okta block; without it,
// an event that reaches a rule excluding groups is refused (policy.ErrGroupMembershipUnknown).
type GroupCacheConfig struct {
	// TTL is how long a user's groups are reused: a membership changed in Okta counts after
	// at most this long. Default 1m.
	TTL time.Duration `yaml:"ttl"`
	// Size is the most users kept; the least recently used go first. Default 10000.
	Size int `yaml:"size"`
}

// SystemLogConfig (okta.systemLog) reads the org's System Log.
type SystemLogConfig struct {
	// Backfill polls /api/v1/logs for risk events the event hook missed.
	Backfill BackfillConfig `yaml:"backfill"`
}

// BackfillConfig (okta.systemLog.backfill) is the System Log poller (package backfill): it
// publishes each risk LogEvent to remediation.events.itp with the hook's de-duplication id
// (its uuid), so an event the hook delivered, and one it missed while remediator or JetStream
// was down, are remediated exactly once. It can be the only ingress of an org that cannot
// reach remediator over HTTPS. Needs scope okta.logs.read.
type BackfillConfig struct {
	// Enabled turns the poller on. Default false.
	Enabled bool `yaml:"enabled"`
	// Interval between polls once caught up. Default 30s; at least 1s.
	Interval time.Duration `yaml:"interval"`
	// Filter is the System Log filter. Default
	// eventType eq "user.risk.detect" or eventType eq "user.risk.change".
	Filter string `yaml:"filter"`
	// Lookback is how far back the first poll reads when no cursor is stored yet. Default 1h;
	// at most streams.maxAge, for which the job records that stop a second run are kept.
	Lookback time.Duration `yaml:"lookback"`
	// PageSize is the limit of each request, 1–1000. Default 100.
	PageSize int `yaml:"pageSize"`
}

// UsesGroups reports whether an entity-risk rule has a people.groups condition.
func (c *Config) UsesGroups() bool {
	for _, r := range c.RiskRules {
		if g := r.Conditions.Groups; len(g.Include) > 0 || len(g.Exclude) > 0 {
			return true
		}
	}
	return false
}

// impliedOktaScopes are the scopes the configuration's own use of the org needs: group
// look-ups and the System Log poller.
func (c *Config) impliedOktaScopes() []string {
	if !c.Okta.Enabled() {
		return nil
	}
	var s []string
	if c.UsesGroups() {
		s = append(s, okta.ScopeUsersRead)
	}
	if c.Okta.SystemLog.Backfill.Enabled {
		s = append(s, okta.ScopeLogsRead)
	}
	return s
}

// validateOktaPolicy checks okta.groupCache and okta.systemLog.
func (c *Config) validateOktaPolicy(bad func(where, format string, args ...any)) {
	b := c.Okta.SystemLog.Backfill
	if !c.Okta.Enabled() {
		if b.Enabled {
			bad("okta.systemLog.backfill.enabled", "needs the okta block (okta.orgUrl, okta.clientId, okta.privateKey) naming the app that reads the System Log (scope okta.logs.read)")
		}
		return
	}
	if g := c.Okta.GroupCache; g.TTL <= 0 {
		bad("okta.groupCache.ttl", "%s must be above 0", g.TTL)
	} else if g.Size < 1 {
		bad("okta.groupCache.size", "%d must be at least 1", g.Size)
	}
	if !b.Enabled {
		return
	}
	if b.Interval < time.Second {
		bad("okta.systemLog.backfill.interval", "%s must be at least 1s (the System Log is rate limited)", b.Interval)
	}
	if strings.TrimSpace(b.Filter) == "" {
		bad("okta.systemLog.backfill.filter", "must not be empty (such as %s)", DefaultBackfillFilter)
	}
	if b.Lookback <= 0 {
		bad("okta.systemLog.backfill.lookback", "%s must be above 0", b.Lookback)
	} else if b.Lookback > c.Streams.MaxAge {
		bad("okta.systemLog.backfill.lookback", "%s is longer than streams.maxAge %s: an event older than that may have been remediated already, and its job record is gone, so it would run again; shorten the lookback or lengthen streams.maxAge", b.Lookback, c.Streams.MaxAge)
	}
	if b.PageSize < 1 || b.PageSize > 1000 {
		bad("okta.systemLog.backfill.pageSize", "%d must be 1 to 1000 (Okta's limit)", b.PageSize)
	}
}
