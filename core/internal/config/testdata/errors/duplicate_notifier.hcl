notifier "ios" {
  plugin = "apns"
}

notifier "ios" {
  plugin = "fcm"
}

route "all" {
  notify = ["ios"]
}
