package service

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// storeLockFile is the lock file `run` takes in the embedded server's store directory. It
// holds a line naming the holder, for the error a second instance shows. It is not the
// embedded server's own lock (broker.StartEmbedded locks "remediator.lock" in the same
// directory, from the broker branch): on Linux one process taking flock twice on one file
// through two descriptors conflicts with itself, so the two locks use two files. This one is
// taken earlier, before any listener is bound.
const storeLockFile = "remediator-run.lock"

// storeLock is the embedded store directory, held by this process until Release.
type storeLock interface {
	Release() error
}

// lockStore takes dir for this process or says who holds it. It is the first thing `run` does
// with an embedded server, before it binds any listener or opens the store, so that a second
// instance on the same data directory, with the same ports or not, stops without touching the
// store. The embedded server's own lock (broker) still guards the store for any other user of
// broker.StartEmbedded; a variable so that it could be pointed at a broker function later.
var lockStore = lockStoreDir

// holderLine describes this process for the lock file.
func holderLine(cfg storeHolder) string {
	host, _ := os.Hostname()
	return strings.Join([]string{
		fmt.Sprintf("pid %d on %s", os.Getpid(), host),
		"since " + time.Now().UTC().Format(time.RFC3339),
		"nats port " + cfg.natsPort,
		"http " + cfg.httpAddr,
	}, ", ")
}

type storeHolder struct{ natsPort, httpAddr string }

// errStoreLocked is returned when another process holds the store directory.
type errStoreLocked struct {
	dir, holder string
}

func (e *errStoreLocked) Error() string {
	holder := e.holder
	if holder == "" {
		holder = "a process that has not said who it is"
	}
	return fmt.Sprintf("data directory %s is in use by another remediator (%s) — two instances on one store lose data; stop that one, or give this one another --data-dir (nats.embedded.storeDir)", e.dir, holder)
}
