notifier "ios" {
  plugin = "apns"
}

route "vip" {
  when   = startswith(call.to_user_id, "vip-") || contans(["1", "2"], call.to_user_id)
  notify = ["ios"]
}
