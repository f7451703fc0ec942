# The config the route tests of this folder and the explain tests run
# against: webhook notifiers only, some with a device kind; ios is enabled
# only when RINGSIDE_TEST_UNSET_KEY_ID is set, which the tests never do,
# and pager never.
directory "embedded" {
  path = "devices.db"
}

notifier "desk" {
  plugin  = "webhook"
  devices = "console"
  url     = "http://127.0.0.1:9/desk"
  payload = {
    video  = call.type == "V"
    caller = upper(call.from_user_id)
  }
}

notifier "vip" {
  plugin  = "webhook"
  devices = "console"
  url     = "http://127.0.0.1:9/vip"
  payload = {
    tier = call.extra["tier"]
    rank = 1
  }
}

notifier "ios" {
  plugin  = "webhook"
  devices = "apns"
  enabled = env("RINGSIDE_TEST_UNSET_KEY_ID") != ""
  url     = "http://127.0.0.1:9/ios"
}

notifier "pager" {
  plugin  = "webhook"
  enabled = false
  url     = "http://127.0.0.1:9/pager"
}

notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
}

route "video" {
  when     = call.type == "V"
  notify   = ["desk"]
  fallback = ["hook"]
  continue = true
}

route "gold" {
  when     = call.from_service_id == "gold"
  notify   = ["vip", "ios"]
  fallback = ["pager"]
}

route "all" {
  when   = call.to_service_id != "nobody"
  notify = ["hook"]
}
