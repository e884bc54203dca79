package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/seal"
)

// ControlsBucket is the JetStream KV bucket holding operator switches. Every replica watches it,
// so a switch takes effect everywhere within moments, without a restart.
const ControlsBucket = "remediation_controls"

// AllFlows is the flow name that stands for every flow in a control key.
const AllFlows = "_all"

// Control keys: PauseKey(flow) holds a flow's dispatching (events wait in JetStream);
// DryRunKey(flow) makes its invocations recorded, not made.
func PauseKey(flow string) string  { return "pause." + flow }
func DryRunKey(flow string) string { return "dryrun." + flow }

// Control is the value of a control key: who set it, when and why.
type Control struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// controls is this replica's view of the controls bucket, kept current by a watch. Only
// values sealed with a record key (see [EncodeControl]) count; a delete turns a switch off.
type controls struct {
	keys *seal.Keyring
	mu   sync.RWMutex
	set  map[string]Control
}

func newControls(keys *seal.Keyring) *controls {
	return &controls{keys: keys, set: map[string]Control{}}
}

// controlChange is what one entry of the controls bucket changed, for the audit.
type controlChange struct {
	Key      string
	Old, New *Control // nil: off
	Deleted  bool
	// Err is set when the value does not verify: it was ignored (New == Old).
	Err error
	// Raw is the ignored value, for the audit.
	Raw []byte
}

func (c *controls) apply(key string, value []byte, deleted bool) controlChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := controlChange{Key: key, Deleted: deleted}
	if old, ok := c.set[key]; ok {
		ch.Old = &old
	}
	if deleted {
		delete(c.set, key)
		return ch
	}
	ctl, err := DecodeControl(c.keys, key, value)
	if err != nil { // not written by remediator: ignored, the switch stays as it was
		ch.Err, ch.Raw, ch.New = err, value, ch.Old
		return ch
	}
	c.set[key] = ctl
	ch.New = &ctl
	return ch
}

func (c *controls) get(key string) (Control, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ctl, ok := c.set[key]
	return ctl, ok
}

// paused reports whether the flow (or every flow) is paused, and by whom.
func (c *controls) paused(flow string) (Control, bool) {
	if ctl, ok := c.get(PauseKey(AllFlows)); ok {
		return ctl, true
	}
	return c.get(PauseKey(flow))
}

func (c *controls) dryRun(flow string) bool {
	_, all := c.get(DryRunKey(AllFlows))
	_, one := c.get(DryRunKey(flow))
	return all || one
}

// entryWatcher is a bucket whose watch gives each entry's revision (*broker.KV).
type entryWatcher interface {
	WatchEntries(ctx context.Context, key string, fn func(broker.KVEntry), ready func()) error
}

// watch keeps c current until ctx ends; ready is closed once the current values are in.
// Every change after that, and every value found at start that does not verify, goes to
// changed (the audit).
func (c *controls) watch(ctx context.Context, kv Bucket, log *slog.Logger, ready chan<- struct{}, changed func(controlChange, broker.KVEntry, bool)) {
	var once sync.Once
	isReady := false
	markReady := func() { once.Do(func() { isReady = true; close(ready) }) }
	defer markReady()
	fn := func(e broker.KVEntry) {
		ch := c.apply(e.Key, e.Value, e.Deleted)
		if strings.HasPrefix(e.Key, "pause.") && ch.Err == nil {
			if e.Deleted {
				log.Info("dispatching resumed by operator", slog.String("control", e.Key))
			} else {
				log.Warn("dispatching paused by operator; events wait in JetStream", slog.String("control", e.Key))
			}
		}
		if isReady || ch.Err != nil {
			changed(ch, e, !isReady)
		}
	}
	for ctx.Err() == nil {
		var err error
		if ew, ok := kv.(entryWatcher); ok {
			err = ew.WatchEntries(ctx, "", fn, markReady)
		} else {
			err = kv.Watch(ctx, "", func(key string, value []byte, deleted bool) {
				fn(broker.KVEntry{Key: key, Value: value, Deleted: deleted})
			}, markReady)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("controls watch failed; retrying", slog.Any("error", err))
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
}

// SetSignedControl turns a switch on (value, sealed with the primary record key: see
// [EncodeControl]) or off (value nil: the key is deleted) in the controls bucket.
func SetSignedControl(ctx context.Context, kv *broker.KV, keys *seal.Keyring, key string, value *Control) error {
	if value == nil {
		return SetControl(ctx, kv, key, nil)
	}
	b, err := EncodeControl(keys, key, *value)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, key, b)
	return err
}

// SetControl turns a switch on (value) or off (value nil) in the controls bucket.
//
// Deprecated: the value it stores is not sealed, so workers ignore it (and audit it as from
// an unknown writer); turning a switch off still works. Use [SetSignedControl].
func SetControl(ctx context.Context, kv *broker.KV, key string, value *Control) error {
	if value == nil {
		if err := kv.Delete(ctx, key); err != nil && !errors.Is(err, broker.ErrKeyNotFound) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(value)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, key, b)
	return err
}

// blastCap bounds how many invocations of a flow may be made in a sliding window, across
// replicas: the timestamps of recent invocations live in one KV key, updated by
// compare-and-swap. Beyond the cap, jobs are held in JetStream and a held status says why.
type blastCap struct {
	kv     KV
	key    string
	max    int
	window time.Duration

	mu      sync.Mutex
	blocked time.Time // until when this replica knows the cap is full
}

func newBlastCap(kv KV, flow string, max int, window time.Duration) *blastCap {
	if max <= 0 || window <= 0 {
		return nil
	}
	return &blastCap{kv: kv, key: "blast." + flow, max: max, window: window}
}

// full reports whether the cap was full when last seen, and until when.
func (b *blastCap) full(now time.Time) (time.Time, bool) {
	if b == nil {
		return time.Time{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked, now.Before(b.blocked)
}

// take counts one invocation, or refuses and says when the window will have room.
func (b *blastCap) take(ctx context.Context) (ok bool, until time.Time, err error) {
	if b == nil {
		return true, time.Time{}, nil
	}
	for range budgetCASAttempts {
		data, rev, err := b.kv.Get(ctx, b.key)
		if err != nil && !errors.Is(err, broker.ErrKeyNotFound) {
			return false, time.Time{}, err
		}
		var times []int64
		if len(data) > 0 {
			_ = json.Unmarshal(data, &times)
		}
		now := time.Now()
		cut := now.Add(-b.window).UnixNano()
		kept := times[:0]
		for _, t := range times {
			if t > cut {
				kept = append(kept, t)
			}
		}
		if len(kept) >= b.max {
			until := time.Unix(0, kept[0]).Add(b.window)
			b.mu.Lock()
			b.blocked = until
			b.mu.Unlock()
			return false, until, nil
		}
		next, _ := json.Marshal(append(kept, now.UnixNano()))
		if rev == 0 {
			_, err = b.kv.Create(ctx, b.key, next)
		} else {
			_, err = b.kv.Update(ctx, b.key, next, rev)
		}
		if err == nil {
			return true, time.Time{}, nil
		}
		if !errors.Is(err, broker.ErrRevisionMismatch) && !errors.Is(err, broker.ErrKeyExists) {
			return false, time.Time{}, fmt.Errorf("blast-radius cap for %s: %w", b.key, err)
		}
	}
	return false, time.Time{}, fmt.Errorf("blast-radius cap for %s: too much contention", b.key)
}
