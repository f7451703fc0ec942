notifier "ios" {
  plugin  = "apns"
  devices = call.type == "V" ? "voip" : "apns"
  payload = {
    token = env("SECRET")
  }
}

route "all" {
  notfy = ["ios"]
}
