//go:build !unix

package broker

// storeLock is not enforced on this platform: remediator's supported hosts
// are Unix. Do not run two embedded servers on one store directory.
type storeLock struct{}

func lockStore(dir string) (*storeLock, error) { return &storeLock{}, nil }
func (l *storeLock) describe(listen string)    {}
func (l *storeLock) release()                  {}
