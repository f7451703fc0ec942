package fcm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"

	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// The Firebase Admin SDK has one public way to a messaging.Client:
// firebase.NewApp(…).Messaging. Its root package imports every Firebase
// service (Firestore, Cloud Storage with its gRPC xDS stack, …), which
// doubled the ringside binary and the memory each process of it maps —
// every plugin process is the same binary. So the plugin calls
// messaging.NewClient itself, as App.Messaging does. NewClient takes an
// *internal.MessagingConfig, which code outside the firebase module cannot
// name: its fields are set through reflection. That depends on
// firebase.google.com/go/v4 as linked; messagingReady checks it at process
// start and at Configure, so a firebase upgrade that changed it refuses
// the notifier at load, naming the version this code was written for,
// never at the first push.

// firebaseVersion is the firebase-admin-go version this code was written
// for, as firebase.Version spells it (it goes into the X-Firebase-Client
// header); a test holds it to go.mod.
const firebaseVersion = "4.19.0"

// firebaseModule is the module of the Firebase Admin SDK.
const firebaseModule = "firebase.google.com/go/v4"

// messagingNewClient is the constructor newMessaging calls.
var messagingNewClient any = messaging.NewClient

// messagingReady reports, once, whether messagingNewClient is what
// newMessaging expects.
var messagingReady = sync.OnceValue(func() error { return checkNewClient(messagingNewClient) })

var (
	ctxType    = reflect.TypeFor[context.Context]()
	clientType = reflect.TypeFor[*messaging.Client]()
	errorType  = reflect.TypeFor[error]()
	// configFields are the fields newMessaging sets, with their types.
	configFields = map[string]reflect.Type{
		"ProjectID": reflect.TypeFor[string](),
		"Opts":      reflect.TypeFor[[]option.ClientOption](),
		"Version":   reflect.TypeFor[string](),
	}
)

// checkNewClient returns an error naming the firebase version this code
// expects unless fn is func(context.Context, *T) (*messaging.Client,
// error), T a struct with settable fields ProjectID string, Opts
// []option.ClientOption and Version string.
func checkNewClient(fn any) error {
	fail := func(format string, args ...any) error {
		linked := ""
		if v := linkedFirebase(); v != "" && v != "v"+firebaseVersion {
			linked = ", but " + v + " is linked"
		}
		return fmt.Errorf("the fcm plugin was written for %s v%s%s: its messaging.NewClient %s; build ringside (or this plugin) with %s v%s",
			firebaseModule, firebaseVersion, linked, fmt.Sprintf(format, args...), firebaseModule, firebaseVersion)
	}
	t := reflect.TypeOf(fn)
	if t == nil || t.Kind() != reflect.Func || t.NumIn() != 2 || t.NumOut() != 2 || t.IsVariadic() {
		return fail("is %v, not func(context.Context, *MessagingConfig) (*messaging.Client, error)", t)
	}
	if t.In(0) != ctxType || t.Out(0) != clientType || t.Out(1) != errorType {
		return fail("is %v, not func(context.Context, *MessagingConfig) (*messaging.Client, error)", t)
	}
	ct := t.In(1)
	if ct.Kind() != reflect.Pointer || ct.Elem().Kind() != reflect.Struct {
		return fail("takes %v, not a pointer to a config struct", ct)
	}
	for name, ft := range configFields {
		f, ok := ct.Elem().FieldByName(name)
		if !ok || !f.IsExported() || len(f.Index) != 1 || f.Type != ft {
			return fail("takes %v, which has no field %s of type %v", ct, name, ft)
		}
	}
	return nil
}

// linkedFirebase is the version of the firebase module linked into this
// binary, "" if unknown.
func linkedFirebase() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == firebaseModule {
			if m.Replace != nil {
				m = m.Replace
			}
			return m.Version
		}
	}
	return ""
}

// newMessaging builds a messaging.Client the way firebase.App.Messaging
// does, without importing the firebase root package (see above).
// firebase.NewApp adds its OAuth scopes as an option; they do not apply
// here, as the HTTP client in opts is authorised already.
func newMessaging(ctx context.Context, project string, opts ...option.ClientOption) (*messaging.Client, error) {
	if err := messagingReady(); err != nil {
		return nil, err
	}
	fn := reflect.ValueOf(messagingNewClient)
	conf := reflect.New(fn.Type().In(1).Elem())
	for name, v := range map[string]any{"ProjectID": project, "Opts": opts, "Version": firebaseVersion} {
		conf.Elem().FieldByName(name).Set(reflect.ValueOf(v))
	}
	out := fn.Call([]reflect.Value{reflect.ValueOf(ctx), conf})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	c, _ := out[0].Interface().(*messaging.Client)
	if c == nil {
		return nil, errors.New("firebase messaging.NewClient returned no client")
	}
	return c, nil
}
