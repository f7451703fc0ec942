// Package callback turns a LINE Planet notify_cb request into a Call,
// enforcing every rule of the callback contract, and answers it over HTTP.
package callback

import "time"

// Call is a valid notify_cb callback.
type Call struct {
	SID           string
	FromServiceID string
	FromUserID    string
	ToServiceID   string
	ToUserID      string
	// Type is "A" (audio) or "V" (video).
	Type string
	// Param is param after percent-decoding, byte for byte (still base64).
	Param string
	// Stid is the deprecated stid key, "" when absent.
	Stid string
	// AppSvrData is app_svr_data, or Stid when app_svr_data is absent.
	AppSvrData string
	// Extra holds the keys the contract does not name (never token).
	Extra map[string]string
	// Received is when the callback arrived; deadlines count from it.
	Received time.Time
}
