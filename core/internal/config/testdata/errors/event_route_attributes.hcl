notifier "ios" {
  plugin = "apns"
}

route "ring" {
  users  = { service_id = "s", user_id = "u" }
  notify = ["ios"]
}

route "cancel" {
  on     = "call_events"
  notify = ["ios"]
}

route "group" {
  on     = "group_call_event"
  rung   = true
  users  = "alice"
  notify = ["ios"]
}
