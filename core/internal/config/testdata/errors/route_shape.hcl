notifier "ios" {
  plugin = "apns"
}

notifier "sms" {
  plugin = "sms"
}

route "no-notify" {
  when = call.type == "A"
}

route "twice" {
  notify   = ["ios", "sms", "ios"]
  fallback = ["sms"]
  continue = "maybe"
}
