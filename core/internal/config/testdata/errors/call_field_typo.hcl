notifier "ios" {
  plugin = "apns"
}

route "planetkit" {
  when   = call.to_servce_id == "planetkit"
  notify = ["ios"]
}
