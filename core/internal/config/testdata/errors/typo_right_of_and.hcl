notifier "ios" {
  plugin = "apns"
}

route "video" {
  when   = call.to_service_id == "planetkit" && call.tpye == "V"
  notify = ["ios"]
}
