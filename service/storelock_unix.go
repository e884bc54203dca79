//go:build unix

package service

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

type flockStore struct{ f *os.File }

// lockStoreDir takes an exclusive flock on dir/remediator-run.lock. The kernel drops the lock when
// the process dies, so a crash never leaves a stale lock behind.
func lockStoreDir(dir, holder string) (storeLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create the data directory: %w", err)
	}
	path := filepath.Join(dir, storeLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open the data directory's lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := io.ReadAll(io.LimitReader(f, 1024))
			return nil, &errStoreLocked{dir: dir, holder: string(bytes.TrimSpace(b))}
		}
		return nil, fmt.Errorf("cannot lock the data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(holder+"\n"), 0)
	}
	return flockStore{f}, nil
}

func (l flockStore) Release() error {
	_ = l.f.Truncate(0)
	return l.f.Close() // closing the only descriptor releases the flock
}
