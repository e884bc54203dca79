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

// HeaderMsgID is the JetStream de-duplication header; set it with
// [PublishOptions.MsgID].
const HeaderMsgID = "Nats-Msg-Id"

// Storage types accepted by [StreamsConfig.Storage] and [KVConfig.Storage].
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// StreamsConfig configures the five streams. The zero value of each field
// means its documented default.
type StreamsConfig struct {
	// MaxAge is how long every stream keeps a message. Default 7 days.
	MaxAge time.Duration
	// Replicas is the number of copies of each stream. Default 1; use 3 on a
	// NATS cluster.
	Replicas int
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id to drop a
	// duplicate publish, on all five streams. Default 2m; at most MaxAge.
	DuplicateWindow time.Duration
	// MaxBytes caps each stream's size; the oldest messages are dropped
	// beyond it. Default -1: unlimited.
	MaxBytes int64
	// Storage is "file" (default) or "memory". It cannot be changed on an
	// existing stream.
	Storage string
}

func (c *StreamsConfig) setDefaults() {
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.Storage == "" {
		c.Storage = StorageFile
	}
}

func (c *StreamsConfig) validate() error {
	var errs []error
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("streams.maxAge %s must be positive", c.MaxAge))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("streams.replicas %d must be between 1 and 5", c.Replicas))
	}
	if c.DuplicateWindow < 0 || c.DuplicateWindow > c.MaxAge {
		errs = append(errs, fmt.Errorf("streams.duplicateWindow %s must be positive and at most streams.maxAge %s", c.DuplicateWindow, c.MaxAge))
	}
	if c.MaxBytes < -1 {
		errs = append(errs, fmt.Errorf("streams.maxBytes %d must be positive, or -1 for unlimited", c.MaxBytes))
	}
	if _, err := storageType(c.Storage); err != nil {
		errs = append(errs, fmt.Errorf("streams.storage: %w", err))
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

// wantedStreams returns the five stream configurations for cfg (defaults set).
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
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("provision streams: %w", err)
	}
	wanted := wantedStreams(cfg)

	// Plan: read every stream and refuse before changing anything.
	existing := make([]*jetstream.StreamConfig, len(wanted))
	var conflicts []error
	for i, want := range wanted {
		s, err := b.js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return streamErr("provision: read", want.Name, err)
		}
		have := s.CachedInfo().Config
		existing[i] = &have
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
			if _, err := b.js.CreateStream(ctx, want); err != nil {
				return provisionErr("create", want, err)
			}
			b.logger.InfoContext(ctx, "stream created", "stream", want.Name, "subjects", want.Subjects,
				"storage", storageName(want.Storage), "retention", retentionName(want.Retention),
				"max_age", want.MaxAge, "replicas", want.Replicas, "duplicate_window", want.Duplicates, "max_bytes", want.MaxBytes)
			continue
		}
		update, diffs := mergeMutable(*have, want)
		if len(diffs) == 0 {
			b.logger.InfoContext(ctx, "stream unchanged", "stream", want.Name)
			continue
		}
		if _, err := b.js.UpdateStream(ctx, update); err != nil {
			return provisionErr("update", want, fmt.Errorf("%w (changing %s)", err, strings.Join(diffs, "; ")))
		}
		b.logger.InfoContext(ctx, "stream updated", "stream", want.Name, "changes", strings.Join(diffs, "; "))
	}
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
	case contains(err, "overlap"):
		return fmt.Errorf("provision: %s stream %s: its subjects %v overlap another stream's — find it with `nats stream ls` and remove or change it: %w",
			op, want.Name, want.Subjects, err)
	case contains(err, "replicas") && want.Replicas > 1:
		return fmt.Errorf("provision: %s stream %s: %d replicas need a NATS cluster of at least %d servers — set streams.replicas to 1 on a single server: %w",
			op, want.Name, want.Replicas, want.Replicas, err)
	case contains(err, "insufficient resources"), contains(err, "resources exceeded"):
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
