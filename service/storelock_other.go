//go:build !unix

package service

type noStoreLock struct{}

func (noStoreLock) Release() error { return nil }

// lockStoreDir does not lock where flock is not available; the embedded server's own store
// lock (broker) still applies.
func lockStoreDir(dir, holder string) (storeLock, error) { return noStoreLock{}, nil }
