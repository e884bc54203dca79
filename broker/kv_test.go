package broker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

func newKV(t *testing.T) *broker.KV {
	t.Helper()
	b := brokertest.Connect(t)
	kv, err := b.KeyValue(testCtx(t), broker.KVConfig{Bucket: "attempts", History: 5, Replicas: 1, TTL: time.Hour})
	if err != nil {
		t.Fatalf("KeyValue: %v", err)
	}
	return kv
}

func TestKVCreateGetUpdate(t *testing.T) {
	t.Parallel()
	kv := newKV(t)
	ctx := testCtx(t)

	if _, _, err := kv.Get(ctx, "evt-1"); !errors.Is(err, broker.ErrKeyNotFound) {
		t.Fatalf("Get of a missing key: err = %v, want ErrKeyNotFound", err)
	}
	rev, err := kv.Create(ctx, "evt-1", []byte("1"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := kv.Create(ctx, "evt-1", []byte("again")); !errors.Is(err, broker.ErrKeyExists) {
		t.Fatalf("second Create: err = %v, want ErrKeyExists", err)
	}
	val, gotRev, err := kv.Get(ctx, "evt-1")
	if err != nil || string(val) != "1" || gotRev != rev {
		t.Fatalf("Get = %q rev %d, %v; want 1 rev %d", val, gotRev, err, rev)
	}

	rev2, err := kv.Update(ctx, "evt-1", []byte("2"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("Update = rev %d, %v", rev2, err)
	}
	_, err = kv.Update(ctx, "evt-1", []byte("stale"), rev)
	if !errors.Is(err, broker.ErrRevisionMismatch) {
		t.Fatalf("Update with a stale revision: err = %v, want ErrRevisionMismatch", err)
	}
	if errors.Is(err, broker.ErrKeyExists) {
		t.Fatalf("a revision mismatch also matches ErrKeyExists: %v", err)
	}

	if _, err := kv.Put(ctx, "evt-1", []byte("3")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := kv.Delete(ctx, "evt-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := kv.Get(ctx, "evt-1"); !errors.Is(err, broker.ErrKeyNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Create(ctx, "evt-1", []byte("reborn")); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
}

func TestKVKeys(t *testing.T) {
	t.Parallel()
	kv := newKV(t)
	ctx := testCtx(t)

	keys, err := kv.Keys(ctx)
	if err != nil || keys == nil || len(keys) != 0 {
		t.Fatalf("Keys of an empty bucket = %#v, %v; want an empty slice", keys, err)
	}
	for _, k := range []string{"b", "a", "c"} {
		if _, err := kv.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	keys, err = kv.Keys(ctx)
	if err != nil || !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("Keys = %v, %v; want [a b]", keys, err)
	}
	if _, err := kv.Put(ctx, "bad key", nil); err == nil {
		t.Fatal("Put accepted a key with a space")
	}
}

func TestKVWatch(t *testing.T) {
	t.Parallel()
	kv := newKV(t)
	ctx := testCtx(t)
	if _, err := kv.Put(ctx, "kill.flow-a", []byte("on")); err != nil {
		t.Fatal(err)
	}

	type update struct {
		key, value string
		deleted    bool
	}
	updates := make(chan update, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	initialised := make(chan struct{})
	go func() {
		done <- kv.Watch(wctx, "kill.>", func(key string, value []byte, deleted bool) {
			updates <- update{key, string(value), deleted}
		}, func() { close(initialised) })
	}()
	next := func() update {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("no update from Watch")
			return update{}
		}
	}

	if u := next(); u != (update{"kill.flow-a", "on", false}) {
		t.Fatalf("initial value = %+v", u)
	}
	select {
	case <-initialised:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not report the end of the initial values")
	}
	if _, err := kv.Put(ctx, "other", []byte("x")); err != nil { // not watched
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "kill.flow-b", []byte("on")); err != nil {
		t.Fatal(err)
	}
	if u := next(); u != (update{"kill.flow-b", "on", false}) {
		t.Fatalf("update = %+v", u)
	}
	if err := kv.Delete(ctx, "kill.flow-a"); err != nil {
		t.Fatal(err)
	}
	if u := next(); u.key != "kill.flow-a" || !u.deleted {
		t.Fatalf("delete = %+v", u)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

func TestKeyValueValidates(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	for _, cfg := range []broker.KVConfig{
		{},
		{Bucket: "x", History: 65},
		{Bucket: "x", Storage: "tape"},
		{Bucket: "bad.name"},
	} {
		if _, err := b.KeyValue(ctx, cfg); err == nil {
			t.Errorf("KeyValue(%+v) succeeded", cfg)
		}
	}
	// Reopening with other settings updates the bucket.
	if _, err := b.KeyValue(ctx, broker.KVConfig{Bucket: "budgets", Storage: "memory", History: 1, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.KeyValue(ctx, broker.KVConfig{Bucket: "budgets", Storage: "memory", History: 3, Replicas: 1}); err != nil {
		t.Fatalf("KeyValue with more history: %v", err)
	}
}

func TestOpenKeyValueBindsToAnExistingBucket(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := context.Background()
	if _, err := b.OpenKeyValue(ctx, "nope"); !errors.Is(err, broker.ErrStreamNotFound) || !strings.Contains(err.Error(), "remediator running") {
		t.Fatalf("missing bucket: err = %v; want ErrStreamNotFound and a hint", err)
	}
	owned, err := b.KeyValue(ctx, broker.KVConfig{Bucket: "owned", History: 5, Replicas: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owned.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	kv, err := b.OpenKeyValue(ctx, "owned")
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := kv.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get through the bound bucket = %q, %v", v, err)
	}
}
