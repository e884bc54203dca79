package policy

import (
	"context"
	"errors"
	"fmt"
)

// GroupLookup finds the Okta groups a user belongs to, for the people.groups conditions of
// entity-risk rules: Okta's user.risk.detect carries no membership, Okta evaluates groups
// itself. The service implements it over the org client (GET /api/v1/users/{id}/groups) with
// a short-lived cache.
type GroupLookup interface {
	// UserGroupIDs returns the ids of the user's groups; an empty list when the user is in
	// none. An error means the membership is unknown, never "in no group".
	UserGroupIDs(ctx context.Context, userID string) ([]string, error)
}

// ErrGroupLookup is matched (errors.Is) by a [*GroupLookupError].
var ErrGroupLookup = errors.New("group look-up failed")

// GroupLookupError says that the groups of an entity-risk event's user could not be looked
// up, so a rule with people.groups conditions cannot be decided. It is not a refusal: the
// intake retries the event later (and dead-letters it only when JetStream will not deliver it
// again), because guessing either way could run a remediation on a break-glass account or
// skip one on an attacker.
type GroupLookupError struct {
	UserID string
	Err    error
}

func (e *GroupLookupError) Error() string {
	return fmt.Sprintf("looking up the groups of user %q failed, so the rule cannot be decided (the event is retried): %v", e.UserID, e.Err)
}

func (e *GroupLookupError) Unwrap() error { return e.Err }

// Is matches ErrGroupLookup.
func (e *GroupLookupError) Is(target error) bool { return target == ErrGroupLookup }
