// Package publish is how a detector written in Go hands an event to remediator: it picks the
// subject from the document when asked to, sets the event id as the de-duplication id
// (Nats-Msg-Id), and starts a producer span whose W3C trace context travels in the message
// headers, so that the worker's spans join the detector's trace.
//
// The remediator CLI (`remediator publish`) and the HTTP ingress use it too.
package publish
