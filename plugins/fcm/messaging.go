package fcm

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// newMessaging builds a messaging.Client the way firebase.App.Messaging
// does, without importing the firebase root package: that package imports
// every Firebase service (Firestore, Cloud Storage with its gRPC xDS
// stack, …), which doubled the ringside binary and the memory each process
// of it maps — every plugin process is the same binary. messaging.NewClient
// takes an *internal.MessagingConfig that code outside the firebase module
// cannot name, so its exported fields are set through reflection; a field
// missing after an upgrade is an error here, and the FCM tests fail.
//
// firebase.NewApp adds its OAuth scopes as an option; they do not apply
// here, as the HTTP client in opts is authorised already.
func newMessaging(ctx context.Context, project string, opts ...option.ClientOption) (*messaging.Client, error) {
	fn := reflect.ValueOf(messaging.NewClient)
	ct := fn.Type().In(1)
	if ct.Kind() != reflect.Pointer || ct.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("firebase messaging.NewClient takes %s, not a config struct", ct)
	}
	conf := reflect.New(ct.Elem())
	for name, v := range map[string]any{"ProjectID": project, "Opts": opts, "Version": firebaseVersion} {
		f := conf.Elem().FieldByName(name)
		if !f.IsValid() || !f.CanSet() || !reflect.TypeOf(v).AssignableTo(f.Type()) {
			return nil, fmt.Errorf("firebase %s has no settable field %s of type %T", ct, name, v)
		}
		f.Set(reflect.ValueOf(v))
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

// firebaseVersion is the linked firebase-admin-go version as firebase.Version
// spells it (it goes into the X-Firebase-Client header); a test holds it to
// go.mod.
const firebaseVersion = "4.19.0"
