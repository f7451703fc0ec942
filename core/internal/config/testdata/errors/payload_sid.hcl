notifier "ios" {
  plugin  = "apns"
  payload = {
    "sid" = upper(call.sid)
  }
}

route "all" {
  notify = ["ios"]
}
