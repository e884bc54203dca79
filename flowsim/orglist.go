package flowsim

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// The list endpoints `remediator okta check` reads to prove okta.users.read and
// okta.groups.read (GET /api/v1/users?limit=1, GET /api/v1/groups?limit=1). They answer
// Okta's shapes in a reduced form (id, status, profile.login; id, type, profile.name), sorted
// by id, with limit honoured. Okta pages these lists with a Link rel="next" header; the
// simulator does not (a guess that is enough for a check that reads one entry).

type userJSON struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login string `json:"login"`
	} `json:"profile"`
}

// listLimit reads ?limit= (Okta's default for these lists is 200); a bad value is Okta's
// 400 E0000001.
func (s *Simulator) listLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 200, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		s.writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", []string{"limit: must be a positive integer"})
		return 0, false
	}
	return n, true
}

func (s *Simulator) handleListUsers(w http.ResponseWriter, r *http.Request, o *orgState) {
	limit, ok := s.listLimit(w, r)
	if !ok {
		return
	}
	out := firstByID(o.users, limit, func(u *User) userJSON {
		var uj userJSON
		uj.ID, uj.Status, uj.Profile.Login = u.ID, u.Status, u.Login
		return uj
	})
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) handleListGroups(w http.ResponseWriter, r *http.Request, o *orgState) {
	limit, ok := s.listLimit(w, r)
	if !ok {
		return
	}
	out := firstByID(o.groups, limit, func(g *Group) groupJSON {
		var gj groupJSON
		gj.ID, gj.Type, gj.Profile.Name = g.ID, g.Type, g.Name
		return gj
	})
	s.writeJSON(w, http.StatusOK, out)
}

// firstByID lists at most limit entries of m in id order, as Okta's list endpoints page.
func firstByID[V, J any](m map[string]V, limit int, render func(V) J) []J {
	ids := slices.Sorted(maps.Keys(m))
	ids = ids[:min(limit, len(ids))]
	out := make([]J, 0, len(ids))
	for _, id := range ids {
		out = append(out, render(m[id]))
	}
	return out
}
