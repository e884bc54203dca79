package flowsim

import (
	"encoding/json"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// FlowInfo is one element of GET /_sim/flows. It never carries the token.
type FlowInfo struct {
	Alias      string `json:"alias"`
	Name       string `json:"name"`
	InvokePath string `json:"invokePath"`
	// RateLimit is invocations per second; null when unlimited.
	RateLimit     *float64 `json:"rateLimit"`
	TokenRequired bool     `json:"tokenRequired"`
	// OAuth: the flow takes an OAuth 2.0 Bearer token instead of a client token.
	OAuth  bool   `json:"oauth"`
	Faults Faults `json:"faults"`
	Stats  Stats  `json:"stats"`
}

// Flows describes every flow, in configuration order.
func (s *Simulator) Flows() []FlowInfo {
	out := make([]FlowInfo, 0, len(s.order))
	for _, alias := range s.order {
		fs := s.flows[alias]
		info := FlowInfo{
			Alias:         alias,
			Name:          fs.name,
			InvokePath:    "/api/flo/" + alias + "/invoke",
			TokenRequired: fs.token != "",
			OAuth:         fs.oauth,
		}
		if !math.IsInf(fs.rateLimit, 1) {
			rl := fs.rateLimit
			info.RateLimit = &rl
		}
		fs.mu.Lock()
		info.Faults, info.Stats = fs.faults, fs.stats
		fs.mu.Unlock()
		out = append(out, info)
	}
	return out
}

type adminError struct {
	Error string `json:"error"`
}

// methods dispatches on the request method, answering 405 for the others. (A method-less
// catch-all "/" would otherwise turn every wrong method into a 404.)
func (s *Simulator) methods(h map[string]http.HandlerFunc) http.HandlerFunc {
	allow := slices.Sorted(maps.Keys(h))
	return func(w http.ResponseWriter, r *http.Request) {
		if f, ok := h[r.Method]; ok {
			f(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeJSON(w, http.StatusMethodNotAllowed, adminError{"method " + r.Method + " is not allowed"})
	}
}

func (s *Simulator) handleListFlows(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, s.Flows())
}

// adminFlow finds the flow named in the path or answers 404.
func (s *Simulator) adminFlow(w http.ResponseWriter, r *http.Request) (*flowState, bool) {
	fs, ok := s.flows[r.PathValue("alias")]
	if !ok {
		s.writeJSON(w, http.StatusNotFound, adminError{"unknown flow " + strconv.Quote(r.PathValue("alias"))})
	}
	return fs, ok
}

func (s *Simulator) handleInvocations(w http.ResponseWriter, r *http.Request) {
	fs, ok := s.adminFlow(w, r)
	if !ok {
		return
	}
	n := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			s.writeJSON(w, http.StatusBadRequest, adminError{"limit must be a positive integer"})
			return
		}
	}
	fs.mu.Lock()
	invs := fs.invocations(n)
	fs.mu.Unlock()
	s.writeJSON(w, http.StatusOK, invs)
}

func (s *Simulator) handleReset(w http.ResponseWriter, r *http.Request) {
	fs, ok := s.adminFlow(w, r)
	if !ok {
		return
	}
	s.Reset(fs.alias)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	fs, ok := s.adminFlow(w, r)
	if !ok {
		return
	}
	s.writeJSON(w, http.StatusOK, s.Faults(fs.alias))
}

func (s *Simulator) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	fs, ok := s.adminFlow(w, r)
	if !ok {
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		s.writeJSON(w, http.StatusBadRequest, adminError{"body could not be read"})
		return
	}
	var f Faults
	if err := json.Unmarshal(data, &f); err != nil {
		s.writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	if err := s.SetFaults(fs.alias, f); err != nil {
		s.writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	s.writeJSON(w, http.StatusOK, f)
}
