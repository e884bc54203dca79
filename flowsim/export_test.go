package flowsim

import "time"

// SetClock replaces the simulator's clock (rate bucket, Date and rate-limit headers,
// Invocation.At). Call it before serving.
func SetClock(s *Simulator, now func() time.Time) { s.now = now }
