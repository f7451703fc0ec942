# The candidate of the diff tests: user 2809's video calls no longer ring
# the desk, and the desk's title changes.
notifier "desk" {
  plugin  = "webhook"
  devices = "console"
  url     = "http://127.0.0.1:9/desk"
  payload = {
    title = "Incoming call from ${call.from_user_id}"
  }
}

notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
}

route "video" {
  when     = call.type == "V" && call.to_user_id != "2809"
  notify   = ["desk"]
  fallback = ["hook"]
}

route "all" {
  notify = ["hook"]
}
