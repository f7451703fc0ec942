notifier "ios" {
  plugin = "apns"
}

route "missed" {
  on     = "call_event"
  when   = call.outcome == "missed" && call.param != ""
  notify = ["ios"]
}

route "joined" {
  on     = "group_call_event"
  when   = call.to_user_id == "alice"
  users  = { service_id = call.svc_id, user_id = call.user_id }
  notify = ["ios"]
}
