notifier "ios" {
  plugin = "apns"
}

route "video" {
  when   = call.type
  notify = ["ios"]
}
