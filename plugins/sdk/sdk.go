// Package sdk is the one package a ringside delivery plugin imports.
//
// A plugin is one type with two methods, Configure and Deliver, and one typed
// configuration struct whose `ringside` field tags declare the notifier
// attributes the plugin accepts; the SDK derives the plugin's schema from that
// struct. A plugin's main function is one call:
//
//	func main() {
//		sdk.Serve(sdk.Info{Name: "console", Version: "0.1.0", DeviceKind: "console"}, &Console{})
//	}
//
// The host (ringside) evaluates all HCL, launches the plugin as a separate
// process over hashicorp/go-plugin gRPC, calls Configure once, owns retries,
// and calls Deliver once per device of the callee (or once per callback when
// the plugin has no device kind). Configure returns Diagnostics, errors and
// warnings each pointing at an attribute: an error refuses the notifier, a
// warning is printed and the plugin is configured. Deliver reports what
// happened with its error: nil means delivered; wrap a failure with
// Permanent, RetryAfter or Gone to classify it. An unclassified error is a
// transient failure the host may retry until the delivery's deadline.
//
// Log with Logger: its JSON lines go to the process's standard error, where
// the host picks them up and logs them under the notifier's name (a plugin's
// stdout belongs to go-plugin). Make provider requests with HTTPClient or
// Transport, so each one is a span of the host's trace, without the URL's
// path or query (which may hold a device token).
//
// The SDK never imports ringside's core.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Info describes a plugin.
type Info struct {
	// Name is the plugin's name, e.g. "webhook".
	Name string
	// Version is the plugin's own version.
	Version string
	// DeviceKind is the kind of device the plugin delivers to by default
	// ("apns", "fcm", "phone", …). Empty means the plugin needs no device:
	// Deliver is then called once per callback with a zero Device.
	DeviceKind string
	// MaxPayloadBytes is the largest rendered payload (Delivery.PayloadJSON)
	// the provider takes; 0 means no limit. The host refuses at load a
	// notifier whose payload is over it even for the smallest callback.
	MaxPayloadBytes int
}

// Plugin is what a plugin author implements. C is the plugin's configuration
// struct; its exported fields carry `ringside:"name[,required][,template][,path][,sensitive]"`
// tags and an optional `help:"…"` tag. Supported field types: string, bool,
// int, int64, float64, time.Duration (a Go duration string in HCL),
// []string and map[string]string. A template field is a string expression
// over `call` that the host renders for each callback: it is left empty at
// Configure (TemplateSet tells whether the block sets it) and read with
// Delivery.Template.
type Plugin[C any] interface {
	// Configure receives the notifier block's decoded attributes once, before
	// any delivery, and returns what is wrong with them, each finding
	// pointing at its attribute (see Diagnostics). With no error among
	// them (warnings only, or nothing) the plugin is configured. Its ctx
	// tells which template attributes the block sets (TemplateSet).
	Configure(ctx context.Context, cfg C) Diagnostics
	// Deliver makes one attempt to deliver d to dev and returns the
	// provider's message id on success. It may be called concurrently.
	Deliver(ctx context.Context, d *Delivery, dev Device) (providerID string, err error)
}

// HealthChecker may be implemented by a plugin to answer readiness; a plugin
// without it is ready once configured.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Call is the LINE Planet callback being delivered.
type Call struct {
	SID           string
	FromServiceID string
	FromUserID    string
	ToServiceID   string
	ToUserID      string
	// Type is "A" (audio) or "V" (video).
	Type string
	// Param is the callback's param, byte for byte; push it as cc_param.
	Param string
	// AppSvrData is app_svr_data (or stid when it is absent); may be empty.
	AppSvrData string
	// Extra holds the callback's keys ringside does not know.
	Extra map[string]string
}

// Device is one device of the callee.
type Device struct {
	Kind      string
	Token     string
	UpdatedAt time.Time
	// IdempotencyID identifies the delivery of this call through this
	// notifier to this device: the same on every attempt, after a plugin
	// restart and after a ringside restart (it is derived from the call as
	// ringside journaled it). Give it to a provider that deduplicates, or
	// deduplicate on it yourself. Empty for a plugin without a device kind:
	// use Delivery.ID.
	IdempotencyID string
}

// Delivery is one attempt to deliver a call through one notifier.
type Delivery struct {
	// ID identifies the delivery of this call through this notifier: the
	// same on every attempt, after a plugin restart and after a ringside
	// restart (it is derived from the call as ringside journaled it and
	// the notifier's name). The webhook plugin sends it as webhook-id.
	ID string
	// Attempt counts from 1.
	Attempt int
	// Route is the name of the route that chose the notifier.
	Route string
	Call  Call
	// PayloadJSON is the rendered payload: a JSON object with cc_param, sid,
	// the app_* keys and the notifier's payload keys, JSON types kept.
	PayloadJSON []byte
	// Templates holds the rendered template attributes by attribute name.
	Templates map[string]string
	// Deadline is the time after which nothing may be sent; ctx carries it too.
	Deadline time.Time
}

// Template returns the rendered value of the template attribute name.
func (d *Delivery) Template(name string) string { return d.Templates[name] }

// Payload decodes PayloadJSON, keeping numbers as json.Number.
func (d *Delivery) Payload() (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(d.PayloadJSON))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	return m, nil
}

// Class is how a delivery failure is classified.
type Class int

// The classes of a delivery failure.
const (
	// ClassRetry is a transient failure; the host may retry it.
	ClassRetry Class = iota
	// ClassPermanent will fail again; the host does not retry it.
	ClassPermanent
	// ClassGone means the device token is no longer valid.
	ClassGone
)

func (c Class) String() string {
	switch c {
	case ClassPermanent:
		return "permanent"
	case ClassGone:
		return "gone"
	default:
		return "retry"
	}
}

// DeliveryError is a classified delivery failure. Build one with Permanent,
// Retry, RetryAfter or Gone.
type DeliveryError struct {
	Class Class
	// After is the provider's Retry-After for ClassRetry, 0 if none.
	After time.Duration
	// At is when the provider saw the token become invalid (ClassGone), zero
	// if unknown.
	At  time.Time
	Err error
}

func (e *DeliveryError) Error() string {
	if e.Err == nil {
		return e.Class.String()
	}
	return e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Permanent marks err as a failure that will happen again: not retried.
func Permanent(err error) error { return &DeliveryError{Class: ClassPermanent, Err: err} }

// Retry marks err as transient. Unclassified errors are transient too.
func Retry(err error) error { return &DeliveryError{Class: ClassRetry, Err: err} }

// RetryAfter marks err as transient, retried no sooner than after.
func RetryAfter(err error, after time.Duration) error {
	return &DeliveryError{Class: ClassRetry, After: after, Err: err}
}

// Gone marks the device token as no longer valid since at (zero if unknown);
// the host may remove it from the directory.
func Gone(err error, at time.Time) error {
	return &DeliveryError{Class: ClassGone, At: at, Err: err}
}

// Classify returns the classification of a Deliver error: nil is not a
// failure (ok false); an error without a DeliveryError in its chain is
// ClassRetry.
func Classify(err error) (de DeliveryError, ok bool) {
	if err == nil {
		return DeliveryError{}, false
	}
	var e *DeliveryError
	if errors.As(err, &e) {
		return DeliveryError{Class: e.Class, After: e.After, At: e.At, Err: err}, true
	}
	return DeliveryError{Class: ClassRetry, Err: err}, true
}

// Block is what the host tells Configure about the notifier block beyond
// its plugin attributes. Configure reads it from its ctx with TemplateSet,
// PayloadKeySet, TemplatesKnown and CheckOnly.
type Block struct {
	// Templates names the template attributes the block sets (their values
	// are rendered per call, and Configure's cfg leaves them empty).
	Templates []string
	// PayloadKeys names the keys written in the block's payload (the keys
	// ringside puts in every payload are listed only when the block
	// overrides one).
	PayloadKeys []string
	// CheckOnly: the process was started only to check the block (see
	// CheckOnly).
	CheckOnly bool
}

// blockKey is the context key of the Block Configure's ctx carries.
type blockKey struct{}

// ContextWithBlock returns ctx carrying b, as the ctx the SDK passes to
// Configure when the host described the block: for tests that call a
// plugin's Configure in-process (sdktest's Configure helpers take the
// same description as options).
func ContextWithBlock(ctx context.Context, b Block) context.Context {
	return context.WithValue(ctx, blockKey{}, b)
}

// TemplatesKnown reports whether Configure's ctx says which template
// attributes and payload keys the notifier block sets. A ringside host
// older than the protocol's ConfigureRequest.templates tells nothing, and
// TemplateSet and PayloadKeySet are then false for every name: a check
// that an attribute is set belongs in Configure only when TemplatesKnown,
// and in Deliver (on Delivery.Templates) either way.
func TemplatesKnown(ctx context.Context) bool {
	_, ok := ctx.Value(blockKey{}).(Block)
	return ok
}

// TemplateSet reports whether the notifier block sets the template
// attribute name. Call it with Configure's ctx, e.g. to refuse a block
// without a template its other attributes need, or to warn about one they
// make useless; see TemplatesKnown for hosts that do not tell.
func TemplateSet(ctx context.Context, name string) bool {
	b, _ := ctx.Value(blockKey{}).(Block)
	return slices.Contains(b.Templates, name)
}

// CheckOnly reports whether Configure's ctx says the host started this
// process only to check the notifier block (`ringside validate`,
// `explain`, `test` and `diff`) and will deliver nothing through it.
// Configure then checks the attributes as always, but opens no connection
// to the provider and starts no background work, such as warming a
// connection ahead of the first push.
func CheckOnly(ctx context.Context) bool {
	b, _ := ctx.Value(blockKey{}).(Block)
	return b.CheckOnly
}

// PayloadKeySet reports whether the notifier block's payload sets the key
// key. Call it with Configure's ctx; see TemplatesKnown for hosts that do
// not tell.
func PayloadKeySet(ctx context.Context, key string) bool {
	b, _ := ctx.Value(blockKey{}).(Block)
	return slices.Contains(b.PayloadKeys, key)
}
