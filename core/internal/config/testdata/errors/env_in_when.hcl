notifier "ios" {
  plugin = "apns"
}

route "beta" {
  when   = call.to_user_id == env("BETA_USER")
  notify = ["ios"]
}
