package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// StoredMessage is a message as stored in a stream, read without a consumer
// or through a read-only one.
type StoredMessage struct {
	Stream   string
	Sequence uint64
	Subject  string
	Data     []byte
	Header   map[string][]string // never nil
	Time     time.Time           // when the stream stored it
}

// StreamInfo summarises a stream.
type StreamInfo struct {
	Name              string
	Messages, Bytes   uint64
	FirstSeq, LastSeq uint64
	// Subjects counts messages per subject; filled only when asked for.
	Subjects  map[string]uint64
	Consumers int
}

// ConsumerInfo summarises one consumer of a stream.
type ConsumerInfo struct {
	Stream, Name   string
	NumPending     uint64 // in the stream, not yet delivered
	NumAckPending  uint64 // delivered, awaiting ack
	NumRedelivered uint64 // delivered more than once, awaiting ack
	NumWaiting     int    // pull requests waiting for messages
}

// Ordered consumers created by Scan and Tail are read-only and removed when
// done; the threshold only matters if the process dies mid-read.
const readerInactiveThreshold = 30 * time.Second

// scanIdle is how long Scan waits for the next message before asking the
// server whether any is still to come (normally it knows from the message
// metadata and never waits this long).
const scanIdle = 2 * time.Second

func (b *Broker) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if name == "" {
		return nil, errors.New("stream name is empty")
	}
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return nil, streamErr("open stream", name, err)
	}
	return s, nil
}

// GetMessage reads the message with sequence seq from stream. Errors wrap
// [ErrStreamNotFound] or [ErrMessageNotFound].
//
// The stream's handle is kept after the first read (the dispatch hot path reads
// each job's event); a read that finds the stream gone drops it.
func (b *Broker) GetMessage(ctx context.Context, stream string, seq uint64) (*StoredMessage, error) {
	var s jetstream.Stream
	if h, ok := b.getStreams.Load(stream); ok {
		s = h.(jetstream.Stream)
	} else {
		var err error
		if s, err = b.stream(ctx, stream); err != nil {
			return nil, err
		}
		b.getStreams.Store(stream, s)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			b.getStreams.Delete(stream)
		}
		return nil, streamErr(fmt.Sprintf("get message #%d", seq), stream, err)
	}
	return &StoredMessage{
		Stream:   stream,
		Sequence: raw.Sequence,
		Subject:  raw.Subject,
		Data:     raw.Data,
		Header:   copyHeader(raw.Header),
		Time:     raw.Time,
	}, nil
}

// DeleteMessage removes the message with sequence seq from stream (its
// storage is released, not overwritten). Errors wrap [ErrStreamNotFound] or
// [ErrMessageNotFound].
func (b *Broker) DeleteMessage(ctx context.Context, stream string, seq uint64) error {
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		// The server reports a missing message as a generic failed delete
		// (code 10057, the reason only in its text, which nats.go does not
		// even wrap), so ask whether the message is there: not-found is then
		// known by its code.
		if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) || hasCode(err, codeMsgDeleteFailed) {
			if _, getErr := s.GetMsg(ctx, seq); errors.Is(getErr, jetstream.ErrMsgNotFound) {
				err = getErr
			}
		}
		return streamErr(fmt.Sprintf("delete message #%d", seq), stream, err)
	}
	return nil
}

// Scan calls fn for each message of stream whose subject matches
// subjectFilter ("" = all; wildcards allowed), in stream order, starting at
// startTime when it is non-zero, else at sequence startSeq (0 = the first).
// It stops when fn returns false or at the last message stored when Scan was
// called; it never waits for new messages. If ctx ends first it returns
// ctx's error. It reads through a short-lived ordered consumer without
// acknowledging, so it does not affect workers.
func (b *Broker) Scan(ctx context.Context, stream, subjectFilter string, startSeq uint64, startTime time.Time, fn func(*StoredMessage) bool) error {
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	state := s.CachedInfo().State
	last := state.LastSeq
	if state.Msgs == 0 || (startTime.IsZero() && startSeq > last) {
		return nil
	}
	cfg := readerConfig(subjectFilter)
	switch {
	case !startTime.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &startTime
	case startSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = startSeq
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	oc, it, err := b.openReader(ctx, s, stream, cfg)
	if err != nil {
		return err
	}
	defer b.closeReader(stream, oc, it)
	if info := oc.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil // nothing matches from the start point
	}

	for {
		nctx, cancel := context.WithTimeout(ctx, scanIdle)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				return streamErr("scan", stream, err)
			}
			// Idle: finished unless the server still has matching messages
			// for us (e.g. the reader was being reset).
			info, err := oc.Info(ctx)
			if err != nil {
				return streamErr("scan", stream, err)
			}
			if info.NumPending == 0 {
				return nil
			}
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			return streamErr("scan", stream, err)
		}
		if md.Sequence.Stream > last {
			return nil // written after Scan was called
		}
		if !fn(storedFrom(stream, msg, md)) {
			return nil
		}
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			return nil
		}
	}
}

// Tail calls fn for each new message of stream matching subjectFilter ("" =
// all), until ctx ends; it then returns nil. With last > 0 it first delivers
// the last `last` matching messages already stored. It reads through a
// short-lived ordered consumer without acknowledging, so it does not affect
// workers.
func (b *Broker) Tail(ctx context.Context, stream, subjectFilter string, last int, fn func(*StoredMessage)) error {
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	cfg := readerConfig(subjectFilter)
	cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	if last > 0 {
		start, all, err := b.lastNStart(ctx, s, stream, subjectFilter, uint64(last))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case all:
			cfg.DeliverPolicy = jetstream.DeliverAllPolicy
		case start > 0:
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = start
		}
	}
	oc, it, err := b.openReader(ctx, s, stream, cfg)
	if ctx.Err() != nil {
		if err == nil {
			b.closeReader(stream, oc, it)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer b.closeReader(stream, oc, it)
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return streamErr("tail", stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return streamErr("tail", stream, err)
		}
		fn(storedFrom(stream, msg, md))
	}
}

// lastNStart finds the sequence of the n-th last message matching filter.
// all is true when fewer than n match (start from the beginning). It
// binary-searches on the pending count of throw-away consumers: O(log
// stream length) cheap requests, no messages transferred.
func (b *Broker) lastNStart(ctx context.Context, s jetstream.Stream, stream, filter string, n uint64) (start uint64, all bool, err error) {
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return 0, true, nil
	}
	count := func(seq uint64) (uint64, error) {
		cfg := jetstream.ConsumerConfig{
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       seq,
			AckPolicy:         jetstream.AckNonePolicy,
			MemoryStorage:     true,
			InactiveThreshold: readerInactiveThreshold,
		}
		if filter != "" {
			cfg.FilterSubject = filter
		}
		c, err := s.CreateConsumer(ctx, cfg)
		if err != nil {
			return 0, streamErr("tail: count messages", stream, err)
		}
		info := c.CachedInfo()
		_ = s.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
		return info.NumPending, nil
	}
	lo, hi := state.FirstSeq, state.LastSeq
	total, err := count(lo)
	if err != nil {
		return 0, false, err
	}
	if total <= n {
		return 0, true, nil
	}
	// Invariant: count(lo) >= n. Find the largest such lo.
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		c, err := count(mid)
		if err != nil {
			return 0, false, err
		}
		if c >= n {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, false, nil
}

func readerConfig(filter string) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		InactiveThreshold: readerInactiveThreshold,
		NamePrefix:        "remediator-reader-" + nuid.Next(),
		// Recreating the consumer after a gap is retried with backoff; bound
		// it so a vanished stream fails the read instead of hanging it.
		MaxResetAttempts: 3,
	}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	return cfg
}

func (b *Broker) openReader(ctx context.Context, s jetstream.Stream, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, jetstream.MessagesContext, error) {
	oc, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, nil, streamErr("read", stream, err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, nil, streamErr("read", stream, err)
	}
	return oc, it, nil
}

// closeReader stops the iterator and deletes its consumer now rather than
// leaving it for the inactive threshold (it would show in stream info).
func (b *Broker) closeReader(stream string, oc jetstream.Consumer, it jetstream.MessagesContext) {
	it.Stop()
	if info := oc.CachedInfo(); info != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.js.DeleteConsumer(ctx, stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			b.logger.Debug("could not delete read-only consumer; the server removes it when inactive",
				"stream", stream, "consumer", info.Name, "error", err)
		}
	}
}

func storedFrom(stream string, msg jetstream.Msg, md *jetstream.MsgMetadata) *StoredMessage {
	return &StoredMessage{
		Stream:   stream,
		Sequence: md.Sequence.Stream,
		Subject:  msg.Subject(),
		Data:     msg.Data(),
		Header:   copyHeader(msg.Headers()),
		Time:     md.Timestamp,
	}
}

// StreamInfo describes stream. With subjectCounts, Subjects holds the number
// of messages per subject (costly on streams with very many subjects).
func (b *Broker) StreamInfo(ctx context.Context, stream string, subjectCounts bool) (*StreamInfo, error) {
	s, err := b.stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	var opts []jetstream.StreamInfoOpt
	if subjectCounts {
		opts = append(opts, jetstream.WithSubjectFilter(">"))
	}
	info, err := s.Info(ctx, opts...)
	if err != nil {
		return nil, streamErr("stream info", stream, err)
	}
	out := &StreamInfo{
		Name:      info.Config.Name,
		Messages:  info.State.Msgs,
		Bytes:     info.State.Bytes,
		FirstSeq:  info.State.FirstSeq,
		LastSeq:   info.State.LastSeq,
		Consumers: info.State.Consumers,
	}
	if subjectCounts {
		out.Subjects = make(map[string]uint64, len(info.State.Subjects))
		for k, v := range info.State.Subjects {
			out.Subjects[k] = v
		}
	}
	return out, nil
}

// ConsumerInfos lists the consumers of stream, sorted by name.
func (b *Broker) ConsumerInfos(ctx context.Context, stream string) ([]ConsumerInfo, error) {
	s, err := b.stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	lister := s.ListConsumers(ctx)
	out := []ConsumerInfo{}
	for ci := range lister.Info() {
		out = append(out, ConsumerInfo{
			Stream:         ci.Stream,
			Name:           ci.Name,
			NumPending:     ci.NumPending,
			NumAckPending:  uint64(max(ci.NumAckPending, 0)),
			NumRedelivered: uint64(max(ci.NumRedelivered, 0)),
			NumWaiting:     ci.NumWaiting,
		})
	}
	if err := lister.Err(); err != nil {
		return nil, streamErr("list consumers", stream, err)
	}
	slices.SortFunc(out, func(a, b ConsumerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
