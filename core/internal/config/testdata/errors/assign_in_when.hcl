notifier "ios" {
  plugin = "apns"
}

route "video" {
  when   = call.type = "V"
  notify = ["ios"]
}
