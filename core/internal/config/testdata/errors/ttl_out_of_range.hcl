notifier "ios" {
  plugin = "apns"
  ttl    = "11m"
}

notifier "android" {
  plugin = "fcm"
  ttl    = "0s"
}

route "all" {
  notify = ["ios", "android"]
}
