package callback

import (
	"strconv"
	"strings"
	"time"
)

// Kind is which LINE callback a Call came from.
type Kind uint8

// The callback kinds.
const (
	// KindNotify is notify_cb: a caller starts a 1-to-1 call.
	KindNotify Kind = iota
	// KindCallEvent is on_call_evt_cb: a 1-to-1 call ended.
	KindCallEvent
	// KindGroupCallEvent is on_gcall_evt_cb: a participant of a group
	// call joined, left or changed media.
	KindGroupCallEvent
)

var kindNames = [...]string{
	KindNotify:         "notify",
	KindCallEvent:      "call_event",
	KindGroupCallEvent: "group_call_event",
}

// String returns "notify", "call_event" or "group_call_event" ("Kind(n)"
// for any other value).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the Kind whose String is s, and false when there is
// none.
func ParseKind(s string) (Kind, bool) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), true
		}
	}
	return 0, false
}

// CallEnd is how a 1-to-1 call ended, as a Call Event reports it. Times
// are UTC and zero when LINE sent 0 or nothing; numbers are 0 when absent.
type CallEnd struct {
	SetupTime, StartTime, EndTime time.Time
	// Duration is the call's length in seconds, 0 when it was never
	// answered.
	Duration int64
	// Terminate is the Q.850-style cause: 16 normal, 17 busy, 18 no
	// answer, 21 rejected, 77 canceled, 127 other (others possible).
	Terminate        int
	RelCode          int64
	RelCodeStr       string
	UserRelCode      string
	BillingSec       int64
	DisconnectReason string
	// ReleaserType is who ended the call: 1 callee, 2 caller,
	// 3 participant, 4 cloud, 5 app server; 0 when absent.
	ReleaserType int
	SrcIP, DstIP string
}

// Outcomes of a 1-to-1 call, for the callee.
const (
	OutcomeAnswered = "answered"
	OutcomeMissed   = "missed"
	OutcomeRejected = "rejected"
	OutcomeCanceled = "canceled"
	OutcomeBusy     = "busy"
	OutcomeFailed   = "failed"
)

// Q.850-style causes that Outcome tells apart.
const (
	terminateNormal   = 16
	terminateBusy     = 17
	terminateNoAnswer = 18
	terminateRejected = 21
	terminateCanceled = 77
)

// Outcome is how the call ended for the callee: OutcomeAnswered when it
// lasted (Duration > 0) or started (StartTime set); otherwise by
// Terminate: 17 OutcomeBusy, 21 OutcomeRejected, 77 OutcomeCanceled,
// 16 or 18 OutcomeMissed, anything else OutcomeFailed.
func (e *CallEnd) Outcome() string {
	if e.Duration > 0 || !e.StartTime.IsZero() {
		return OutcomeAnswered
	}
	switch e.Terminate {
	case terminateBusy:
		return OutcomeBusy
	case terminateRejected:
		return OutcomeRejected
	case terminateCanceled:
		return OutcomeCanceled
	case terminateNormal, terminateNoAnswer:
		return OutcomeMissed
	}
	return OutcomeFailed
}

// GroupEvent is a participant change in a group call, as a Group Call
// Event reports it. Times are UTC and zero when LINE sent 0 or nothing;
// optional strings are "" and numbers 0 when absent.
type GroupEvent struct {
	// SvcID and ID name the room.
	SvcID, ID string
	// UserSvcID and UserID name the participant.
	UserSvcID, UserID string
	// HostSvcID and HostID name the room's host.
	HostSvcID, HostID string
	// SC is the room's state: "S" started, "C" changed, "E" ended.
	SC string
	// MSC is the participant's change: "C" connected, "D" disconnected,
	// "T" timed out, "M" media changed, or "".
	MSC string
	// MediaType is "A", "V" or "".
	MediaType string
	// Online is how many participants are connected.
	Online int64
	// TS is when the change happened, to the millisecond.
	TS                            time.Time
	SetupTime, StartTime, EndTime time.Time
	RelCode                       int64
	RelCodeStr                    string
	// UEType is the participant's device (ANDROID, IOS, DESKTOPMAC,
	// DESKTOPWIN, BROWSER, SIP_TERMINAL, …), kept as sent.
	UEType      string
	DisplayName string
}

// DedupKey identifies the event a Call reports, so a repeated GET is
// recognised: for a Call Event "call_event", sid; for a Group Call Event
// "group_call_event", sid, user_svc_id, user_id, sc, msc and ts in
// milliseconds ("" when 0 or absent); for notify_cb "notify", sid, to_service_id
// and to_user_id. The parts are joined with NUL bytes, which no part holds
// (ids forbid control characters; sid, sc, msc and ts are fixed alphabets).
func (c *Call) DedupKey() string {
	switch c.Kind {
	case KindCallEvent:
		return KindCallEvent.String() + "\x00" + c.SID
	case KindGroupCallEvent:
		g := c.Group
		if g == nil {
			g = &GroupEvent{}
		}
		ts := ""
		if !g.TS.IsZero() {
			ts = strconv.FormatInt(g.TS.UnixMilli(), 10)
		}
		return strings.Join([]string{KindGroupCallEvent.String(), c.SID, g.UserSvcID, g.UserID, g.SC, g.MSC, ts}, "\x00")
	}
	return strings.Join([]string{c.Kind.String(), c.SID, c.ToServiceID, c.ToUserID}, "\x00")
}
