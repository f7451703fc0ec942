# Event routes for the route tests of this folder: a ring, a cancel to the
# devices rung, a missed-call notice and a group call's invitees.
directory "embedded" {
  path = "devices.db"
}

notifier "desk" {
  plugin  = "webhook"
  devices = "console"
  url     = "http://127.0.0.1:9/desk"
}

notifier "notice" {
  plugin  = "webhook"
  devices = "console"
  url     = "http://127.0.0.1:9/notice"
  payload = {
    text = "You missed a call from ${call.from_user_id}"
  }
}

route "ring" {
  notify = ["desk"]
}

route "cancel" {
  on       = "call_event"
  when     = call.outcome != "answered"
  rung     = true
  notify   = ["desk"]
  continue = true
}

route "missed" {
  on     = "call_event"
  when   = call.outcome == "missed" && call.duration == 0
  notify = ["notice"]
}

route "group" {
  on     = "group_call_event"
  when   = call.sc == "S"
  users  = { service_id = call.svc_id, user_id = call.host_id }
  notify = ["desk"]
}
