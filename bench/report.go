package bench

import (
	"math"
	"slices"
	"time"
)

// Report is everything one [Run] measured. Durations are in milliseconds and sizes in bytes
// so that the JSON form reads without units.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	// Raw is JetStream alone: publish, then consume and ack the same messages two ways.
	Raw RawResult `json:"raw"`
	// Plain is the simplest correct pipeline over the same events (plain.go).
	Plain Measurement `json:"plain"`
	// Full is remediator with Settings.Flows flows and one replica: the row the ratios use.
	Full Measurement `json:"full"`
	// FlowsSweep is remediator with each of Settings.FlowsSweep flows, one replica.
	FlowsSweep []Measurement `json:"flowsSweep"`
	// Replicas is remediator with Settings.Flows flows and each of Settings.Replicas worker
	// replicas (in-process services on one server).
	Replicas []Measurement `json:"replicas"`
	// Latency is remediator with Settings.Flows flows, one replica, events published at
	// Settings.LatencyRate: publish → succeeded per priority.
	Latency Measurement `json:"latency"`
	// Backlog is remediator with Settings.Backlog jobs waiting; nil when the row was skipped.
	Backlog *Backlog `json:"backlog,omitempty"`
	Ratios  Ratios   `json:"ratios"`
}

// Machine says where the figures come from.
type Machine struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"goVersion"`
	// NATS is "embedded" (a fresh in-process server per measurement) or the external URL.
	NATS string `json:"nats"`
	// PeakRSSPerMeasurement is false where the peak cannot be reset (not Linux): each RSS
	// figure is then the process's peak so far.
	PeakRSSPerMeasurement bool `json:"peakRssPerMeasurement"`
	// LoadAtStart and LoadAtEnd are the system's load averages (1, 5, 15 minutes) when the run
	// started and ended: a load above the number of CPUs means other work shared them.
	LoadAtStart string `json:"loadAtStart,omitempty"`
	LoadAtEnd   string `json:"loadAtEnd,omitempty"`
}

// Settings are the sizes of the run (see [Config]).
type Settings struct {
	Events         int     `json:"events"`
	EventBytes     int     `json:"eventBytes"`
	Flows          int     `json:"flows"`
	FlowsSweep     []int   `json:"flowsSweep"`
	Replicas       []int   `json:"replicas"`
	LatencyRate    float64 `json:"latencyRate"`
	LatencyEvents  int     `json:"latencyEvents"`
	Backlog        int     `json:"backlog"`
	IdleWindowMS   float64 `json:"idleWindowMs"`
	FlowRateLimit  float64 `json:"flowRateLimit"`
	Publishers     int     `json:"publishers"`
	PlainWorkers   int     `json:"plainWorkers"`
	ServiceLogging string  `json:"serviceLogging"`
}

// RawResult is the JetStream baseline.
type RawResult struct {
	Publish           Phase `json:"publish"`
	ConsumeAck        Phase `json:"consumeAck"`
	FetchOneDoubleAck Phase `json:"fetchOneDoubleAck"`
}

// Phase is one raw JetStream operation over Messages messages.
type Phase struct {
	Messages      int     `json:"messages"`
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"perSecond"`
	CPUPerMessage float64 `json:"cpuPerMessageMs"`
	PeakRSSBytes  int64   `json:"peakRssBytes"`
	CPUCoresBusy  float64 `json:"cpuCoresBusy"`
}

// Measurement is one pipeline run: Events events published (as fast as the publishers go,
// or at PublishRate), each expected to end in one terminal status.
type Measurement struct {
	Name     string `json:"name"`
	Flows    int    `json:"flows"`
	Replicas int    `json:"replicas"`
	Events   int    `json:"events"`
	// PublishRate is the fixed publish rate in events/s; 0: as fast as the publishers go.
	PublishRate float64 `json:"publishRate"`
	// Seconds runs from the first publish to the last terminal status stored.
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// PublishedPerSecond is how fast the events went in; when it is close to
	// EventsPerSecond, the publishers, not the pipeline, set the rate.
	PublishedPerSecond float64 `json:"publishedPerSecond"`
	CPUPerEvent        float64 `json:"cpuPerEventMs"`
	// CPUCoresBusy is CPU time over wall time while the events went through.
	CPUCoresBusy float64 `json:"cpuCoresBusy"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
	// IdleCPUCores is the CPU used while nothing arrives, after the events, as a fraction of
	// one core (the process: the server and every replica).
	IdleCPUCores float64 `json:"idleCpuCores"`
	// Accounting: every event must end in exactly one terminal status.
	Succeeded      int `json:"succeeded"`
	OtherTerminal  int `json:"otherTerminal"`
	Missing        int `json:"missing"`
	ExtraTerminals int `json:"extraTerminals"`
	// FlowCalls is what the no-op flow server received (retries included).
	FlowCalls int64 `json:"flowCalls"`
	// Latency is publish → succeeded, over all events and per priority (high: Critical and
	// High issues, normal: Medium, low: Low).
	Latency    Percentiles            `json:"latency"`
	ByPriority map[string]Percentiles `json:"byPriority"`
}

// Percentiles of publish → succeeded, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

// Ratios compare the full pipeline (Report.Full) with the baselines measured in the same
// run: how many times slower, and how many times the CPU per event.
type Ratios struct {
	// PlainOverFull is the plain pipeline's events/s over remediator's.
	PlainOverFull float64 `json:"plainOverFull"`
	// RawOverFull is raw consume+ack messages/s over remediator's events/s.
	RawOverFull float64 `json:"rawOverFull"`
	// CPUFullOverPlain is remediator's CPU per event over the plain pipeline's.
	CPUFullOverPlain float64 `json:"cpuFullOverPlain"`
	// CPUFullOverRaw is remediator's CPU per event over raw publish+consume+ack per message.
	CPUFullOverRaw float64 `json:"cpuFullOverRaw"`
	// Flows200Over40 style: the last sweep point's events/s over Report.Full's.
	LastSweepOverFull float64 `json:"lastSweepOverFull"`
}

// percentiles summarises latencies (nearest-rank).
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	return Percentiles{Count: len(s), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// ratios fills r from the report's rows.
func (r *Report) ratios() {
	full := r.Full
	r.Ratios.PlainOverFull = ratio(r.Plain.EventsPerSecond, full.EventsPerSecond)
	r.Ratios.RawOverFull = ratio(r.Raw.ConsumeAck.PerSecond, full.EventsPerSecond)
	r.Ratios.CPUFullOverPlain = ratio(full.CPUPerEvent, r.Plain.CPUPerEvent)
	r.Ratios.CPUFullOverRaw = ratio(full.CPUPerEvent, r.Raw.Publish.CPUPerMessage+r.Raw.ConsumeAck.CPUPerMessage)
	if n := len(r.FlowsSweep); n > 0 {
		r.Ratios.LastSweepOverFull = ratio(r.FlowsSweep[n-1].EventsPerSecond, full.EventsPerSecond)
	}
}
