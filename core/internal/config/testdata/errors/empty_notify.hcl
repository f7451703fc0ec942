notifier "ios" {
  plugin = "apns"
}

route "all" {
  notify = []
}
