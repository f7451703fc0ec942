// Package fakes holds fake provider peers that speak the real wire
// protocols, for tests and the load test: APNs (HTTP/2 over TLS, ES256
// provider tokens), FCM v1 with its OAuth token endpoint, Twilio's
// Messages API, a Standard Webhooks receiver and an OTLP/HTTP trace
// receiver, and LINE Planet's side of a call, its documented callback. It
// is not a plugin.
//
// Each fake checks a request as strictly as its provider does and answers
// a malformed one as the provider would; it records what it received and
// answers a well-formed request as the test scripts it (success when the
// script is nil). A fake is an http.Handler (New…, to be served by another
// server, such as a conformance suite's peer) or runs on loopback until
// Close (Start…).
package fakes
