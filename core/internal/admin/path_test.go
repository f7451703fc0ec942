package admin

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseDevicePath(t *testing.T) {
	cases := []struct {
		name    string
		path    string
		want    devicePath
		wantErr string // field name, or "route" for errNoRoute
	}{
		{"user", "/v1/devices/s/u", devicePath{ServiceID: "s", UserID: "u"}, ""},
		{"device", "/v1/devices/s/u/apns/t", devicePath{true, "s", "u", "apns", "t"}, ""},
		{"encoded", "/v1/devices/a%2Fb/c%20d/fcm/e%2Ff%25", devicePath{true, "a/b", "c d", "fcm", "e/f%"}, ""},
		{"plus is literal", "/v1/devices/s/u/phone/+81", devicePath{true, "s", "u", "phone", "+81"}, ""},
		{"bad escape", "/v1/devices/s/u%zz", devicePath{}, "user_id"},
		{"bad escape in token", "/v1/devices/s/u/k/%4", devicePath{Device: true}, "token"},
		{"three segments", "/v1/devices/s/u/k", devicePath{}, "route"},
		{"no prefix", "/v1/device/s/u", devicePath{}, "route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDevicePath(tc.path, 256)
			var fe *fieldError
			switch {
			case tc.wantErr == "route":
				if !errors.Is(err, errNoRoute) {
					t.Fatalf("got %v; want errNoRoute", err)
				}
			case tc.wantErr != "":
				if !errors.As(err, &fe) || fe.Field != tc.wantErr {
					t.Fatalf("got %v; want a %s error", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("got %v; want nil", err)
			}
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func FuzzDevicePath(f *testing.F) {
	for _, s := range []string{
		"/v1/devices/s/u",
		"/v1/devices/planetkit/2809/apns/abc123",
		"/v1/devices/a%2Fb/c/fcm/d%2Fe",
		"/v1/devices/s/u/APNS/t",
		"/v1/devices/s/u/apns/" + strings.Repeat("x", 513),
		"/v1/devices/s/u%zz",
		"/v1/devices//u/k/t",
		"/v1/devices/s/u/k/t/",
		"/v1/devices/s/%FF",
		"/v1/devices/s/u/k/%00",
		"/healthz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		p, err := parseDevicePath(path, 256)
		if err != nil {
			var fe *fieldError
			if !errors.Is(err, errNoRoute) && !errors.As(err, &fe) {
				t.Fatalf("got error %T %v; want errNoRoute or *fieldError", err, err)
			}
			if fe != nil && strings.Contains(fe.Error(), "%") && !strings.Contains(fe.Msg, "%-escape") {
				t.Errorf("message %q may echo the path", fe.Error())
			}
			return
		}
		for _, id := range []string{p.ServiceID, p.UserID} {
			if !validText(id, 256) {
				t.Errorf("accepted id %q", id)
			}
		}
		if !p.Device {
			if p.Kind != "" || p.Token != "" {
				t.Errorf("user path %q got kind %q, token %q", path, p.Kind, p.Token)
			}
			return
		}
		if checkKind(p.Kind) != nil || len(p.Kind) > 32 || strings.Trim(p.Kind, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			t.Errorf("accepted kind %q", p.Kind)
		}
		if !validText(p.Token, 512) {
			t.Errorf("accepted token %q", p.Token)
		}
		// The parts, escaped again, parse back to themselves.
		again := devicesPrefix + url.PathEscape(p.ServiceID) + "/" + url.PathEscape(p.UserID) + "/" +
			url.PathEscape(p.Kind) + "/" + url.PathEscape(p.Token)
		if p2, err := parseDevicePath(again, 256); err != nil || p2 != p {
			t.Errorf("round trip of %q: got %+v, %v; want %+v", path, p2, err, p)
		}
	})
}

func validText(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}
