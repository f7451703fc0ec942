notifier "ios_missed" {
  plugin = "apns"
  payload = {
    answered_at = call.start_tme
  }
}

route "missed" {
  on     = "call_event"
  when   = call.outcom == "missed"
  notify = ["ios_missed"]
}
