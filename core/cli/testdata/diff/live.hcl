# The live config of the diff tests: video calls ring the callee's desk
# phone (a console device), with the app server's webhook as fallback;
# every call goes to the webhook.
notifier "desk" {
  plugin  = "webhook"
  devices = "console"
  url     = "http://127.0.0.1:9/desk"
  payload = {
    title = "Call from ${call.from_user_id}"
  }
}

notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
}

route "video" {
  when     = call.type == "V"
  notify   = ["desk"]
  fallback = ["hook"]
}

route "all" {
  notify = ["hook"]
}
