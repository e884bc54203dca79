package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The streams of the public contract (ARCHITECTURE.md) and the subjects each
// one captures.
const (
	StreamEvents   = "REMEDIATION_EVENTS"
	SubjectsEvents = "remediation.events.>"

	// StreamDispatch has work-queue retention: an acked job is removed.
	StreamDispatch   = "REMEDIATION_DISPATCH"
	SubjectsDispatch = "remediation.dispatch.>"

	StreamStatus   = "REMEDIATION_STATUS"
	SubjectsStatus = "remediation.status.>"

	StreamDLQ   = "REMEDIATION_DLQ"
	SubjectsDLQ = "remediation.dlq.>"

	// StreamAudit holds the operator audit trail: who replayed or purged
	// which dead letters, and when.
	StreamAudit   = "REMEDIATION_AUDIT"
	SubjectsAudit = "remediation.audit.>"
)

// KVBackfill is the key-value bucket of the System Log poller (package backfill): its cursor
// (where the next poll starts) and its lease (which replica polls), shared by every replica
// and kept across restarts.
const KVBackfill = "remediation_backfill"

// HeaderMsgID is the JetStream de-duplication header; set it with
// [PublishOptions.MsgID].
const HeaderMsgID = "Nats-Msg-Id"

// Storage types accepted by [StreamsConfig.Storage] and [KVConfig.Storage].
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// StreamsConfig configures the five streams. MaxAge, Replicas,
// DuplicateWindow and MaxBytes have no defaults: [Broker.Provision] refuses a
// zero value with an error naming the field (the service's defaults live in
// package config).
type StreamsConfig struct {
	// MaxAge is how long every stream keeps a message. Required (positive);
	// the service uses 7 days.
	MaxAge time.Duration
	// Replicas is the number of copies of each stream, 1 to 5 (3 on a
	// three-node cluster). Required.
	Replicas int
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id to drop a
	// duplicate publish, on all five streams. Required: positive and at most
	// MaxAge; the service uses 2m.
	DuplicateWindow time.Duration
	// MaxBytes caps each stream's size; the oldest messages are dropped
	// beyond it. Required: a positive size, or -1 for unlimited.
	MaxBytes int64
	// Storage is "file" or "memory"; empty means "file". It cannot be
	// changed on an existing stream.
	Storage string
}

func (c *StreamsConfig) validate() error {
	var errs []error
	if c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("MaxAge %s must be positive", c.MaxAge))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("Replicas %d must be between 1 and 5", c.Replicas))
	}
	if c.DuplicateWindow <= 0 || c.DuplicateWindow > c.MaxAge {
		errs = append(errs, fmt.Errorf("DuplicateWindow %s must be positive and at most MaxAge %s", c.DuplicateWindow, c.MaxAge))
	}
	if c.MaxBytes == 0 || c.MaxBytes < -1 {
		errs = append(errs, fmt.Errorf("MaxBytes %d must be positive, or -1 for unlimited", c.MaxBytes))
	}
	if _, err := storageType(c.Storage); err != nil {
		errs = append(errs, fmt.Errorf("Storage: %w", err))
	}
	return errors.Join(errs...)
}

func storageType(s string) (jetstream.StorageType, error) {
	switch strings.ToLower(s) {
	case "", StorageFile:
		return jetstream.FileStorage, nil
	case StorageMemory:
		return jetstream.MemoryStorage, nil
	default:
		return 0, fmt.Errorf("unknown storage %q: want %q or %q", s, StorageFile, StorageMemory)
	}
}

func storageName(t jetstream.StorageType) string { return strings.ToLower(t.String()) }

func retentionName(r jetstream.RetentionPolicy) string {
	switch r {
	case jetstream.LimitsPolicy:
		return "limits"
	case jetstream.WorkQueuePolicy:
		return "workqueue"
	case jetstream.InterestPolicy:
		return "interest"
	default:
		return r.String()
	}
}

// wantedStreams returns the five stream configurations for cfg (validated).
func wantedStreams(cfg StreamsConfig) []jetstream.StreamConfig {
	storage, _ := storageType(cfg.Storage)
	mk := func(name, subjects string, retention jetstream.RetentionPolicy, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subjects},
			Retention:   retention,
			Storage:     storage,
			MaxAge:      cfg.MaxAge,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.DuplicateWindow,
			MaxBytes:    cfg.MaxBytes,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardOld,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamEvents, SubjectsEvents, jetstream.LimitsPolicy, "remediator: incoming security findings"),
		mk(StreamDispatch, SubjectsDispatch, jetstream.WorkQueuePolicy, "remediator: one dispatch job per (event, flow)"),
		mk(StreamStatus, SubjectsStatus, jetstream.LimitsPolicy, "remediator: outcome records"),
		mk(StreamDLQ, SubjectsDLQ, jetstream.LimitsPolicy, "remediator: dead-letter records"),
		mk(StreamAudit, SubjectsAudit, jetstream.LimitsPolicy, "remediator: operator audit records (dead-letter replays and purges)"),
	}
}

// Provision creates the five streams, or updates an existing one in place
// when a setting JetStream can change (subjects, max age, replicas, duplicate
// window, max bytes) differs; settings remediator does not manage are left as
// they are. It first checks all five: if any exists with a different storage
// type or retention policy, it changes nothing and returns the
// [*ProvisionError]s (joined; match with [errors.As]). Each stream is logged
// at Info as created, updated (with the differences) or unchanged. Provision
// is idempotent.
func (b *Broker) Provision(ctx context.Context, cfg StreamsConfig) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("provision streams: %w", err)
	}
	wanted := wantedStreams(cfg)

	// Plan: read every stream and refuse before changing anything.
	existing := make([]*jetstream.StreamConfig, len(wanted))
	var conflicts []error
	for i, want := range wanted {
		have, err := b.readStreamConfig(ctx, want.Name)
		if err != nil {
			return streamErr("provision: read", want.Name, err)
		}
		if have == nil {
			continue
		}
		existing[i] = have
		if have.Storage != want.Storage {
			conflicts = append(conflicts, &ProvisionError{
				Stream: want.Name, Setting: "storage",
				Current: storageName(have.Storage), Wanted: storageName(want.Storage),
				Fix: fmt.Sprintf("delete the stream with `nats stream rm %s` after draining it, or set streams.storage to %q to match",
					want.Name, storageName(have.Storage)),
			})
		}
		if have.Retention != want.Retention {
			conflicts = append(conflicts, &ProvisionError{
				Stream: want.Name, Setting: "retention",
				Current: retentionName(have.Retention), Wanted: retentionName(want.Retention),
				Fix: fmt.Sprintf("delete the stream with `nats stream rm %s` after draining it; remediator recreates it with %s retention",
					want.Name, retentionName(want.Retention)),
			})
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("provision streams: %w", errors.Join(conflicts...))
	}

	for i, want := range wanted {
		have := existing[i]
		if have == nil {
			created, err := b.createStream(ctx, want)
			if err != nil {
				return provisionErr("create", want, err)
			}
			if created == nil { // another replica created it first: update it if needed
				have, err = b.readStreamConfig(ctx, want.Name)
				if err != nil {
					return streamErr("provision: read", want.Name, err)
				}
				if have == nil {
					return fmt.Errorf("provision: stream %s was reported as existing, then as missing — is something else deleting it?", want.Name)
				}
				if err := b.updateStream(ctx, *have, want); err != nil {
					return err
				}
				continue
			}
			b.logger.InfoContext(ctx, "stream created", "stream", want.Name, "subjects", want.Subjects,
				"storage", storageName(want.Storage), "retention", retentionName(want.Retention),
				"max_age", want.MaxAge, "replicas", want.Replicas, "duplicate_window", want.Duplicates, "max_bytes", want.MaxBytes)
			continue
		}
		if err := b.updateStream(ctx, *have, want); err != nil {
			return err
		}
	}
	return nil
}

// readStreamConfig returns the stream's configuration, or nil when it does
// not exist; transient failures are retried.
func (b *Broker) readStreamConfig(ctx context.Context, name string) (*jetstream.StreamConfig, error) {
	return retryTransient(ctx, b.logger, "read stream "+name, func(ctx context.Context) (*jetstream.StreamConfig, error) {
		s, err := b.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		have := s.CachedInfo().Config
		return &have, nil
	})
}

// createStream creates want, retrying transient failures. It returns nil
// (and no error) when another client created the stream in the meantime
// with a different configuration; an identical concurrent create succeeds.
func (b *Broker) createStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := retryTransient(ctx, b.logger, "create stream "+want.Name, func(ctx context.Context) (jetstream.Stream, error) {
		s, err := b.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, nil // someone else's: the caller reads and updates it
		}
		return s, err
	})
	return s, err
}

// updateStream brings the settings remediator manages of an existing stream
// to want's, retrying transient failures, and logs what it did.
func (b *Broker) updateStream(ctx context.Context, have, want jetstream.StreamConfig) error {
	update, diffs := mergeMutable(have, want)
	if len(diffs) == 0 {
		b.logger.InfoContext(ctx, "stream unchanged", "stream", want.Name)
		return nil
	}
	_, err := retryTransient(ctx, b.logger, "update stream "+want.Name, func(ctx context.Context) (jetstream.Stream, error) {
		return b.js.UpdateStream(ctx, update)
	})
	if err != nil {
		return provisionErr("update", want, fmt.Errorf("%w (changing %s)", err, strings.Join(diffs, "; ")))
	}
	b.logger.InfoContext(ctx, "stream updated", "stream", want.Name, "changes", strings.Join(diffs, "; "))
	return nil
}

// mergeMutable returns have with the settings remediator manages replaced by
// want's, and a description of each difference.
func mergeMutable(have, want jetstream.StreamConfig) (jetstream.StreamConfig, []string) {
	var diffs []string
	diff := func(name string, from, to any) {
		diffs = append(diffs, fmt.Sprintf("%s %v → %v", name, from, to))
	}
	if !sameSet(have.Subjects, want.Subjects) {
		diff("subjects", have.Subjects, want.Subjects)
		have.Subjects = want.Subjects
	}
	if have.MaxAge != want.MaxAge {
		diff("max_age", have.MaxAge, want.MaxAge)
		have.MaxAge = want.MaxAge
	}
	if have.Replicas != want.Replicas {
		diff("replicas", have.Replicas, want.Replicas)
		have.Replicas = want.Replicas
	}
	if have.Duplicates != want.Duplicates {
		diff("duplicate_window", have.Duplicates, want.Duplicates)
		have.Duplicates = want.Duplicates
	}
	if have.MaxBytes != want.MaxBytes {
		diff("max_bytes", have.MaxBytes, want.MaxBytes)
		have.MaxBytes = want.MaxBytes
	}
	return have, diffs
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func provisionErr(op string, want jetstream.StreamConfig, err error) error {
	switch {
	case hasCode(err, codeStreamSubjectOverlap):
		return fmt.Errorf("provision: %s stream %s: its subjects %v overlap another stream's — find it with `nats stream ls` and remove or change it: %w",
			op, want.Name, want.Subjects, err)
	case hasCode(err, codeReplicasNotSupported, codeInsufficientResources, codeClusterNoPeers) && want.Replicas > 1:
		return fmt.Errorf("provision: %s stream %s: %d replicas need a NATS cluster of at least %d servers — set streams.replicas to 1 on a single server: %w",
			op, want.Name, want.Replicas, want.Replicas, err)
	case hasCode(err, codeInsufficientResources, codeAccountResources, codeStorageResources, codeMemoryResources):
		return fmt.Errorf("provision: %s stream %s: the server or account lacks JetStream storage for it — lower streams.maxBytes or raise the server's max_file_store/max_mem_store: %w",
			op, want.Name, err)
	default:
		return streamErr("provision: "+op, want.Name, err)
	}
}

// StreamsPresent returns nil when all five streams exist, for readiness
// checks; otherwise an error naming the missing ones (wrapping
// [ErrStreamNotFound]) or the failure to ask.
func (b *Broker) StreamsPresent(ctx context.Context) error {
	var missing []string
	for _, name := range []string{StreamEvents, StreamDispatch, StreamStatus, StreamDLQ, StreamAudit} {
		_, err := b.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return streamErr("check stream", name, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s missing — they are created by `remediator run` (broker.Provision) at start-up",
			ErrStreamNotFound, strings.Join(missing, ", "))
	}
	return nil
}
