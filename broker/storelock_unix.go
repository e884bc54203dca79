//go:build unix

package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// storeLockName is the file in EmbeddedConfig.StoreDir whose OS lock marks
// the directory as in use.
const storeLockName = "remediator.lock"

// storeLock is an exclusive advisory lock (flock) on StoreDir's lock file,
// held for as long as an embedded server uses the directory. Two servers on
// one JetStream store corrupt each other's files; the lock makes the second
// one fail before it opens anything in the store. The OS drops the lock when
// the process dies, so a crash never leaves a stale lock behind; the file's
// text (pid, listen address) only says who holds it.
type storeLock struct {
	f *os.File
}

// lockStore takes the lock or fails at once, naming the holder.
func lockStore(dir string) (*storeLock, error) {
	path := filepath.Join(dir, storeLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open the store lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process (it has not written its pid yet)"
			}
			return nil, fmt.Errorf("the JetStream store directory %s is in use by %s — stop that instance, or give this one another data directory", dir, who)
		}
		return nil, fmt.Errorf("cannot lock the store directory %s: %w", dir, err)
	}
	return &storeLock{f: f}, nil
}

// describe records who holds the lock, for the error another start shows.
func (l *storeLock) describe(listen string) {
	if l == nil {
		return
	}
	text := fmt.Sprintf("pid %d (listening on %s)\n", os.Getpid(), listen)
	if err := l.f.Truncate(0); err == nil {
		_, _ = l.f.WriteAt([]byte(text), 0)
	}
}

// release drops the lock. The file stays: removing it would let a third
// process lock a new file of the same name while a second still waits on the
// old one.
func (l *storeLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
