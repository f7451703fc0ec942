notifier "ios" {
  plugin = "apns"
}

route "video" {
  when   = call.to_service_id == "my-svc" && call.extra["kind"] = "x"
  notify = ["ios"]
}
