notifier "ios" {
  plugin = "apnz"
}

route "all" {
  notify = ["ios"]
}
