package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVConfig configures a key-value bucket. History and Replicas have no
// defaults: [Broker.KeyValue] refuses a zero value with an error naming the
// field.
type KVConfig struct {
	// Bucket is the bucket name (letters, digits, '-', '_'). Required.
	Bucket string
	// TTL expires every value this long after it was written. 0 = never.
	TTL time.Duration
	// History is how many revisions to keep per key, 1 to 64. Required.
	History int
	// Replicas is the number of copies, 1 to 5 (3 on a three-node cluster).
	// Required.
	Replicas int
	// Storage is "file" or "memory"; empty means "file".
	Storage string
}

func (cfg KVConfig) validate() error {
	var errs []error
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("Bucket is required"))
	}
	if cfg.History < 1 || cfg.History > 64 {
		errs = append(errs, fmt.Errorf("History %d must be between 1 and 64", cfg.History))
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		errs = append(errs, fmt.Errorf("Replicas %d must be between 1 and 5", cfg.Replicas))
	}
	if cfg.TTL < 0 {
		errs = append(errs, fmt.Errorf("TTL %s must not be negative (0 = never)", cfg.TTL))
	}
	if _, err := storageType(cfg.Storage); err != nil {
		errs = append(errs, fmt.Errorf("Storage: %w", err))
	}
	return errors.Join(errs...)
}

// KV is a JetStream key-value bucket. It is safe for concurrent use.
type KV struct {
	bucket string
	kv     jetstream.KeyValue
}

// KeyValue opens the bucket, creating it, or updating its settings when it
// exists with others. Transient JetStream failures (no leader yet on a fresh
// cluster, timeouts) and a replica creating the same bucket at the same
// moment are retried with backoff until ctx ends.
func (b *Broker) KeyValue(ctx context.Context, cfg KVConfig) (*KV, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kv %s: %w", cfg.Bucket, err)
	}
	storage, _ := storageType(cfg.Storage)
	kv, err := retryTransient(ctx, b.logger, "open kv bucket "+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   cfg.Bucket,
			TTL:      cfg.TTL,
			History:  uint8(cfg.History),
			Replicas: cfg.Replicas,
			Storage:  storage,
		})
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrInvalidBucketName) {
			return nil, fmt.Errorf("kv: invalid bucket name %q: use letters, digits, '-' and '_'", cfg.Bucket)
		}
		return nil, streamErr("open kv bucket", "KV_"+cfg.Bucket, err)
	}
	return &KV{bucket: cfg.Bucket, kv: kv}, nil
}

// OpenKeyValue binds to an existing bucket without changing its settings — for tools that act
// on a bucket a service owns. A missing bucket gives an error wrapping [ErrStreamNotFound].
func (b *Broker) OpenKeyValue(ctx context.Context, bucket string) (*KV, error) {
	kv, err := b.js.KeyValue(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("kv bucket %s does not exist — is remediator running against this NATS? it creates it at start: %w", bucket, ErrStreamNotFound)
		}
		return nil, streamErr("open kv bucket", "KV_"+bucket, err)
	}
	return &KV{bucket: bucket, kv: kv}, nil
}

// Get returns the latest value of key and its revision. A missing or deleted
// key gives an error wrapping [ErrKeyNotFound].
func (kv *KV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := kv.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, kvErr("get", kv.bucket, key, err)
	}
	return e.Value(), e.Revision(), nil
}

// Put writes value for key, whatever is there, and returns the new revision.
func (kv *KV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := kv.kv.Put(ctx, key, value)
	return rev, kvErr("put", kv.bucket, key, err)
}

// Create writes value only if key has no value (never set, or deleted), and
// returns the new revision; otherwise the error wraps [ErrKeyExists].
func (kv *KV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := kv.kv.Create(ctx, key, value)
	return rev, kvErr("create", kv.bucket, key, err)
}

// Update writes value only if key's latest revision is lastRevision, and
// returns the new revision; otherwise the error wraps [ErrRevisionMismatch].
func (kv *KV) Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error) {
	rev, err := kv.kv.Update(ctx, key, value, lastRevision)
	return rev, kvErr("update", kv.bucket, key, err)
}

// Delete marks key deleted (Get then reports [ErrKeyNotFound]). Deleting a
// missing key is not an error.
func (kv *KV) Delete(ctx context.Context, key string) error {
	return kvErr("delete", kv.bucket, key, kv.kv.Delete(ctx, key))
}

// Keys lists the keys that have a value, sorted; an empty slice when none.
func (kv *KV) Keys(ctx context.Context) ([]string, error) {
	keys, err := kv.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, kvErr("keys", kv.bucket, "", err)
	}
	return keys, nil
}

// Watch calls fn with the current value of every key matching key ("" =
// all keys; '*' and '>' wildcards allowed), then with every change, until
// ctx ends; it then returns nil. deleted reports a delete or purge (value is
// then empty). fn runs on one goroutine, in order. ready, when not nil, is
// called once every current value has been passed to fn (at once for an
// empty bucket). Watch returns an error if the watch cannot start or the
// connection is closed under it.
func (kv *KV) Watch(ctx context.Context, key string, fn func(key string, value []byte, deleted bool), ready func()) error {
	return kv.WatchEntries(ctx, key, func(e KVEntry) { fn(e.Key, e.Value, e.Deleted) }, ready)
}

// KVEntry is one value (or deletion) of a key, as a watch sees it.
type KVEntry struct {
	Key   string
	Value []byte
	// Revision is the entry's sequence in the bucket: the same for every watcher, so it
	// names one change (e.g. for de-duplicating what several replicas record of it).
	Revision uint64
	// Created is when the server stored the entry.
	Created time.Time
	// Deleted reports a delete or purge (Value is then empty).
	Deleted bool
}

// WatchEntries is [KV.Watch] with each entry's revision and time.
func (kv *KV) WatchEntries(ctx context.Context, key string, fn func(KVEntry), ready func()) error {
	var (
		w   jetstream.KeyWatcher
		err error
	)
	if key == "" {
		w, err = kv.kv.WatchAll(ctx)
	} else {
		w, err = kv.kv.Watch(ctx, key)
	}
	if err != nil {
		return kvErr("watch", kv.bucket, key, err)
	}
	defer stopWatcher(w)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("kv watch %s/%s: stopped by the server or a closed connection", kv.bucket, key)
			}
			if e == nil { // end of the initial values
				if ready != nil {
					ready()
					ready = nil
				}
				continue
			}
			op := e.Operation()
			fn(KVEntry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created(),
				Deleted: op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge})
		}
	}
}

// stopWatcher stops w and drains its channel: the watcher's delivery
// goroutine blocks on a full channel and only exits once it can send, then
// closes the channel. Bounded in case the connection is already gone.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-timeout.C:
			return
		}
	}
}
