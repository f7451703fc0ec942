notifier "ios" {
  plugin = "apns"
  payload = {
    outcome = call.outcome
  }
}

route "ring" {
  notify = ["ios"]
}

route "cancel" {
  on     = "call_event"
  rung   = true
  notify = ["ios"]
}
