notifier "ios" {
  plugin = "apns"
}

notifier "android" {
  plugin = "fcm"
}

route "all" {
  notify   = ["ios", "androd"]
  fallback = ["sms"]
}
