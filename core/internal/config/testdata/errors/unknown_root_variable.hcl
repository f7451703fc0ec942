notifier "ios" {
  plugin = "apns"
}

route "video" {
  when   = foo.bar == "V"
  notify = ["ios"]
}
