package callexpr

import (
	"slices"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
)

// A field of call in routes of one callback kind.
type field struct {
	name string
	ty   cty.Type
}

// The fields of call in call_event routes: notify's, without param, plus
// the end of the call. Times are RFC 3339 strings in UTC ("" when LINE
// sent 0 or nothing), so formatdate and timeadd work on them; counts and
// codes are numbers.
var callEventFields = []field{
	{"sid", cty.String}, {"from_service_id", cty.String}, {"from_user_id", cty.String},
	{"to_service_id", cty.String}, {"to_user_id", cty.String}, {"type", cty.String},
	{"stid", cty.String}, {"app_svr_data", cty.String},
	{"outcome", cty.String},
	{"setup_time", cty.String}, {"start_time", cty.String}, {"end_time", cty.String},
	{"duration", cty.Number}, {"terminate", cty.Number}, {"rel_code", cty.Number},
	{"rel_code_str", cty.String}, {"user_rel_code", cty.String}, {"billing_sec", cty.Number},
	{"disconnect_reason", cty.String}, {"releaser_type", cty.Number},
	{"srcip", cty.String}, {"dstip", cty.String},
}

// The fields of call in group_call_event routes.
var groupEventFields = []field{
	{"sid", cty.String}, {"svc_id", cty.String}, {"id", cty.String},
	{"user_svc_id", cty.String}, {"user_id", cty.String},
	{"host_svc_id", cty.String}, {"host_id", cty.String},
	{"sc", cty.String}, {"msc", cty.String}, {"media_type", cty.String},
	{"online", cty.Number}, {"ts", cty.String},
	{"setup_time", cty.String}, {"start_time", cty.String}, {"end_time", cty.String},
	{"rel_code", cty.Number}, {"rel_code_str", cty.String},
	{"ue_type", cty.String}, {"display_name", cty.String},
	{"stid", cty.String}, {"app_svr_data", cty.String},
}

func objectType(fields []field) cty.Type {
	types := make(map[string]cty.Type, len(fields)+1)
	for _, f := range fields {
		types[f.name] = f.ty
	}
	types["extra"] = cty.Map(cty.String)
	return cty.Object(types)
}

var (
	callEventType  = objectType(callEventFields)
	groupEventType = objectType(groupEventFields)
)

// TypeOf is the type of call in routes of the given kind.
func TypeOf(kind callback.Kind) cty.Type {
	switch kind {
	case callback.KindCallEvent:
		return callEventType
	case callback.KindGroupCallEvent:
		return groupEventType
	}
	return callType
}

// FieldsOf returns the names of call's attributes in routes of the given
// kind, in the order TypeOf lists them (extra, the map, is not among them).
func FieldsOf(kind callback.Kind) []string {
	var fs []field
	switch kind {
	case callback.KindCallEvent:
		fs = callEventFields
	case callback.KindGroupCallEvent:
		fs = groupEventFields
	default:
		return slices.Clone(callFields)
	}
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// timeVal is t as call shows it: RFC 3339 in UTC, "" for the zero time.
func timeVal(t time.Time, layout string) cty.Value {
	if t.IsZero() {
		return cty.StringVal("")
	}
	return cty.StringVal(t.UTC().Format(layout))
}

func extraVal(extra map[string]string) cty.Value {
	if len(extra) == 0 {
		return emptyExtra
	}
	m := make(map[string]cty.Value, len(extra))
	for k, v := range extra {
		m[k] = cty.StringVal(v)
	}
	return cty.MapVal(m)
}

// eventValue is c, a Call Event or a Group Call Event, as a value of
// TypeOf(c.Kind).
func eventValue(c *callback.Call) cty.Value {
	s := cty.StringVal
	n := func(i int64) cty.Value { return cty.NumberIntVal(i) }
	if c.Kind == callback.KindGroupCallEvent {
		g := c.Group
		if g == nil {
			g = &callback.GroupEvent{}
		}
		return cty.ObjectVal(map[string]cty.Value{
			"sid": s(c.SID), "svc_id": s(g.SvcID), "id": s(g.ID),
			"user_svc_id": s(g.UserSvcID), "user_id": s(g.UserID),
			"host_svc_id": s(g.HostSvcID), "host_id": s(g.HostID),
			"sc": s(g.SC), "msc": s(g.MSC), "media_type": s(g.MediaType),
			"online": n(g.Online), "ts": timeVal(g.TS, "2006-01-02T15:04:05.000Z07:00"),
			"setup_time": timeVal(g.SetupTime, time.RFC3339), "start_time": timeVal(g.StartTime, time.RFC3339),
			"end_time": timeVal(g.EndTime, time.RFC3339),
			"rel_code": n(g.RelCode), "rel_code_str": s(g.RelCodeStr),
			"ue_type": s(g.UEType), "display_name": s(g.DisplayName),
			"stid": s(c.Stid), "app_svr_data": s(c.AppSvrData),
			"extra": extraVal(c.Extra),
		})
	}
	e := c.End
	if e == nil {
		e = &callback.CallEnd{}
	}
	return cty.ObjectVal(map[string]cty.Value{
		"sid": s(c.SID), "from_service_id": s(c.FromServiceID), "from_user_id": s(c.FromUserID),
		"to_service_id": s(c.ToServiceID), "to_user_id": s(c.ToUserID), "type": s(c.Type),
		"stid": s(c.Stid), "app_svr_data": s(c.AppSvrData),
		"outcome":    s(e.Outcome()),
		"setup_time": timeVal(e.SetupTime, time.RFC3339), "start_time": timeVal(e.StartTime, time.RFC3339),
		"end_time": timeVal(e.EndTime, time.RFC3339),
		"duration": n(e.Duration), "terminate": n(int64(e.Terminate)), "rel_code": n(e.RelCode),
		"rel_code_str": s(e.RelCodeStr), "user_rel_code": s(e.UserRelCode), "billing_sec": n(e.BillingSec),
		"disconnect_reason": s(e.DisconnectReason), "releaser_type": n(int64(e.ReleaserType)),
		"srcip": s(e.SrcIP), "dstip": s(e.DstIP),
		"extra": extraVal(c.Extra),
	})
}
