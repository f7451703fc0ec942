# The config the route tests of this folder run against: webhook
# notifiers only, one with a device kind.
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
  notify   = ["vip"]
  fallback = ["pager"]
}

route "all" {
  when   = call.to_service_id != "nobody"
  notify = ["hook"]
}
