notifier "ios" {
  plugin  = "apns"
  payload = {
    caller   = call.from_user_id
    cc_param = call.param
  }
}

route "all" {
  notify = ["ios"]
}
