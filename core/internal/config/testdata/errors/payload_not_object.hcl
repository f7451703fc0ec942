notifier "ios" {
  plugin  = "apns"
  payload = merge({ caller = call.from_user_id }, { video = call.type == "V" })
}

notifier "android" {
  plugin  = "fcm"
  payload = {
    (call.type) = "x"
    caller      = call.from_usr_id
  }
}

route "all" {
  notify = ["ios", "android"]
}
