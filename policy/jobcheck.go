package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
)

// ErrJobNotAllowed is wrapped by [Router.CheckJob]'s refusals.
var ErrJobNotAllowed = errors.New("the configuration does not allow this job")

// CheckJob checks a dispatch job against the configuration now, without its event: rule (a
// route for an ISPM issue, an active entity-risk rule for a risk trigger) still sends events
// of kind to flow, and principal (with groups) still holds the run permission on flow. It is
// dispatch's second look at what intake decided, so that a job — forged, or left from an
// older configuration — cannot run what intake would not allow today. An entity-risk job's
// principal must be its rule's ("rule:<name>"), as [Router.Principal] makes it.
func (r *Router) CheckJob(kind event.Kind, rule, flow, principal string, groups []string) error {
	switch kind {
	case event.KindISPMIssue:
		if !r.routeSends(rule, flow) {
			return fmt.Errorf("%w: no route %q sends ISPM issues to flow %q", ErrJobNotAllowed, rule, flow)
		}
		if strings.HasPrefix(principal, config.RulePrincipalPrefix) {
			return fmt.Errorf("%w: principal %q: the %s prefix is reserved for entity-risk rules", ErrJobNotAllowed, principal, config.RulePrincipalPrefix)
		}
	case event.KindEntityRisk:
		if !r.ruleSends(rule, flow) {
			return fmt.Errorf("%w: no active entity-risk rule %q runs flow %q", ErrJobNotAllowed, rule, flow)
		}
		if principal != RulePrincipal(rule) {
			return fmt.Errorf("%w: an entity-risk job's principal is its rule's, %q, not %q", ErrJobNotAllowed, RulePrincipal(rule), principal)
		}
	default:
		return fmt.Errorf("%w: unknown event kind %q", ErrJobNotAllowed, kind)
	}
	if principal == "" {
		return fmt.Errorf("%w: the job names no principal; nobody may run flow %q for it", ErrJobNotAllowed, flow)
	}
	if _, run, _ := r.Permissions(principal, groups, flow); !run {
		return fmt.Errorf("%w: principal %q may not run flow %q (missing permission %s)", ErrJobNotAllowed, principal, flow, config.PermissionRun)
	}
	return nil
}

func (r *Router) routeSends(route, flow string) bool {
	for _, rt := range r.routes {
		if rt.Name != route {
			continue
		}
		for _, f := range rt.Flows {
			if f == flow {
				return true
			}
		}
	}
	return false
}

// ruleSends reports whether the active rule named rule runs flow: the flow its routing
// decision names (see routeRisk).
func (r *Router) ruleSends(rule, flow string) bool {
	for _, rr := range r.rules {
		if rr.Name == rule && rr.Flow != "" && rr.Flow == flow {
			return true
		}
	}
	return false
}
