// Package ingress is remediator's public HTTP door: the Okta event hook, the ISPM webhook and
// a publish API for detectors. It authenticates each request, checks it, and stores what it
// accepts in JetStream (REMEDIATION_EVENTS) before it answers, so a 2xx always means durable.
//
// Endpoints:
//
//	GET  /hooks/okta          Okta's one-time verification: X-Okta-Verification-Challenge is
//	                          echoed as {"verification": "<value>"}. No secret (Okta sends none
//	                          it must prove); only the challenge is reflected, JSON-encoded.
//	POST /hooks/okta          a com.okta.event_hook delivery, Authorization = one of the
//	                          configured secrets. Every user.risk.detect / user.risk.change
//	                          LogEvent is published as it is to remediation.events.itp with
//	                          Nats-Msg-Id = its uuid; other types are skipped (metric, logged
//	                          once per type). 204 once all are acked; 503 if JetStream cannot
//	                          take them (Okta retries once on 5xx; the uuid de-duplicates).
//	POST /hooks/ispm          the ISPM issue.created envelope, API key in the configured header
//	                          or query parameter; published to remediation.events.ispm with
//	                          Nats-Msg-Id = the envelope id. 200 {"eventId": ...}.
//	POST /v1/events/ispm      one event, Authorization: Bearer <token>, validated with the
//	POST /v1/events/itp       worker's own schemas (400 with the dead-letter text); 202
//	                          {"eventId": ..., "duplicate": ...} once stored.
//
// At the door, in this order: method (405 with Allow), credentials (401, nothing read),
// Content-Type application/json (415), body size (413: [Config.MaxEventBytes] for single
// events, [Config.MaxHookBatchBytes] for an Okta delivery, whose LogEvents are each still held
// to MaxEventBytes), JSON that does not parse, has duplicate keys or invalid UTF-8 (400).
// Secrets are compared in constant time and never logged (nor is the query string). Every
// request gets a server span that continues a W3C traceparent the caller sent, and the publish
// headers carry it into the pipeline; requests are counted per source and status code. The
// Remediator-Principal header is set from the authenticated source (the token's or hook's
// configured principal); nothing the caller sends is copied into the message headers.
//
// Wiring (the service does this): build the handler with [New] and serve it on its own
// listener, ingress.addr (default 127.0.0.1:8081), apart from the admin listener:
//
//	secrets, err := cfg.ResolveIngressSecrets(configPath == "", nil, nil) // dev: generate
//	secrets.Announce(os.Stderr)
//	h, err := ingress.New(ingress.FromConfig(cfg.Ingress, secrets, cfg.Limits.MaxEventBytes, log, mp, tp),
//		ingress.Deps{Publisher: publish.New(b, tp), Connected: b.Connected,
//			Validator: validator, Decode: event.Decode,
//			Split: event.SplitHookDelivery, // with type HookEvent = event.HookEvent
//			CheckJSON: event.CheckJSON})
//	srv := ingress.NewHTTPServer(h)
//	// ListenAndServeTLS(cfg.Ingress.TLS.CertFile, KeyFile) when set, else ListenAndServe;
//	// Shutdown(ctx) in the staged shutdown before the NATS connection drains.
package ingress
